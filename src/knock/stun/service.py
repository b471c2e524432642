"""The STUN server's decisions, sans IO: one datagram in, the reply and the events out.

Every datagram is answered fresh. Deployed CPEs reuse transaction ids, so a reply cached by id
would hand one device the address another was seen at.

No answer to a request whose MESSAGE-INTEGRITY was not verified is larger than the request: UDP
sources are forged at will, and a server that answers with more bytes than it got is a free
amplifier. Error reasons are cut to fit, a Binding Response leaves out the addresses of its own
(SOURCE-ADDRESS, CHANGED-ADDRESS, REFLECTED-FROM) that do not fit, and where even the smallest
answer would be larger (a bare 20-byte Binding Request, a TR-111 keep-alive always being larger)
nothing is sent and `withheld` counts it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from knock.stun.attributes import ERROR_REASONS, Address, AttributeType, canonical
from knock.stun.codec import (
    BadAttribute,
    Message,
    MessageType,
    StunError,
    UnknownAttributes,
    binding_error,
    binding_response,
    check_integrity,
    parse,
)
from knock.vocab import StunOutcome

PasswordLookup = Callable[[str], str | None]
"""The STUN password of a USERNAME, or None when the user is unknown."""


@dataclass(frozen=True, slots=True)
class BindingLearned:
    """A CPE asked (CONNECTION-REQUEST-BINDING) to be reached at the address it was seen at."""

    username: str
    address: Address
    changed: bool  # differs from the address held for this username, or none was held
    binding_change_flag: bool  # the CPE says its mapping changed (BINDING-CHANGE)
    authenticated: bool  # MESSAGE-INTEGRITY verified, so the address cannot be forged
    at: float


@dataclass(frozen=True, slots=True)
class LookupFailed:
    """The password lookup raised; the CPE was answered 500 so that it retries."""

    username: str
    error: str


@dataclass(frozen=True, slots=True)
class AuthFailed:
    """A Binding Request carrying USERNAME and MESSAGE-INTEGRITY was refused with 401: the CPE
    holds other STUN credentials than the ACS, and gets no UDP connection request until fixed."""

    username: str
    source: Address
    reason: StunOutcome  # UNKNOWN_USERNAME or BAD_INTEGRITY
    at: float


StunEvent = BindingLearned | LookupFailed | AuthFailed


@dataclass(frozen=True, slots=True)
class Handled:
    reply: bytes | None  # None: the datagram is dropped
    to: Address  # the source, or a RESPONSE-ADDRESS on the source's host
    events: tuple[StunEvent, ...] = ()


@dataclass(frozen=True, slots=True)
class Binding:
    address: Address
    last_seen: float


@dataclass(slots=True)
class Counters:
    requests: int = 0  # Binding Requests read, whatever the answer
    responses: int = 0  # Binding Responses sent
    bad_requests: int = 0  # 400
    unauthorized: int = 0  # 401
    unknown_attributes: int = 0  # 420
    server_errors: int = 0  # 500
    integrity_failures: int = 0  # MESSAGE-INTEGRITY present and wrong (each also a 401)
    malformed: int = 0  # dropped: not a STUN message that can be answered
    ignored: int = 0  # dropped: well formed, but no Binding Request
    withheld: int = 0  # not answered: the smallest unsigned answer was larger than the request

    def count_error(self, code: int) -> None:
        if code == 400:
            self.bad_requests += 1
        elif code == 401:
            self.unauthorized += 1
        elif code == 420:
            self.unknown_attributes += 1
        else:
            self.server_errors += 1


@dataclass(frozen=True, slots=True)
class StunSettings:
    require_auth: bool = False
    # Spoofed usernames must not grow the table without bound; the least recently seen go first.
    max_bindings: int = 1_000_000


def _no_passwords(_username: str) -> str | None:
    return None


class StunService:
    """Answers Binding Requests and keeps, per USERNAME, the address each CPE was last seen at.

    *address* is where the server is reached, named in SOURCE-ADDRESS and CHANGED-ADDRESS; None
    (a wildcard bind) leaves both out.
    """

    def __init__(
        self,
        passwords: PasswordLookup | None = None,
        settings: StunSettings | None = None,
        address: Address | None = None,
    ) -> None:
        self.settings = settings or StunSettings()
        if self.settings.require_auth and passwords is None:
            raise ValueError("requiring authentication needs a password lookup")
        self.address = address
        self.counters = Counters()
        self._passwords = passwords or _no_passwords
        self._bindings: OrderedDict[str, Binding] = OrderedDict()

    @property
    def bindings(self) -> Mapping[str, Binding]:
        return MappingProxyType(self._bindings)

    def handle(self, datagram: bytes, source: Address, now: float) -> Handled:
        source = canonical(source)
        unknown: tuple[int, ...] = ()
        try:
            message = parse(datagram)
        except UnknownAttributes as exc:
            message, unknown = exc.message, exc.unknown
        except BadAttribute as exc:
            if exc.kind is MessageType.BINDING_REQUEST:
                self.counters.requests += 1
                return self._error(
                    exc.txid, 400, source, len(datagram), f"Bad Request: {exc.reason}"
                )
            self.counters.malformed += 1
            return Handled(None, source)
        except StunError:
            self.counters.malformed += 1
            return Handled(None, source)
        if message.kind is not MessageType.BINDING_REQUEST:
            self.counters.ignored += 1
            return Handled(None, source)
        self.counters.requests += 1
        return self._answer(message, unknown, source, now)

    def _answer(
        self, message: Message, unknown: tuple[int, ...], source: Address, now: float
    ) -> Handled:
        limit = len(message.raw)
        code, password, events = self._authenticate(message, source, now)
        if code is not None:
            return self._error(message.txid, code, source, limit, events=events)
        # One socket cannot answer from another address, and answering from this one would make
        # the client believe its NAT is full cone.
        if message.change_request.requested:
            unknown += (AttributeType.CHANGE_REQUEST,)
        if unknown:
            return self._error(message.txid, 420, source, limit, unknown=unknown)
        to = message.address(AttributeType.RESPONSE_ADDRESS) or source
        if to[0] != source[0]:
            # Only the source's own host: TR-111's binding-timeout discovery asks for the reply
            # at another port of the same NAT, while any other host would make Knock a reflector.
            return self._error(
                message.txid, 400, source, limit, "Bad Request: RESPONSE-ADDRESS on another host"
            )
        reply = binding_response(
            message.txid,
            source,
            source=self.address,
            changed=self.address,
            reflected_from=source if to != source else None,
            password=password,
        )
        if password is None and len(reply) > limit:
            reply = binding_response(message.txid, source)
            if len(reply) > limit:
                self.counters.withheld += 1
                return Handled(None, source)
        self.counters.responses += 1
        learned = self._learn(message, source, now, authenticated=password is not None)
        return Handled(reply, to, learned)

    def _authenticate(
        self, message: Message, source: Address, now: float
    ) -> tuple[int | None, str | None, tuple[StunEvent, ...]]:
        """(error code or None, the password to sign the response with, events)."""
        unsigned = 401 if self.settings.require_auth else None
        username = message.username
        if message.integrity is None or username is None:
            return unsigned, None, ()
        try:
            password = self._passwords(username)
        except Exception as exc:  # the ACS's lookup failed, not the CPE: a 401 would mislead it
            return 500, None, (LookupFailed(username, repr(exc)),)
        if password is None:
            if unsigned is None:
                return None, None, ()
            return 401, None, (AuthFailed(username, source, StunOutcome.UNKNOWN_USERNAME, now),)
        if not check_integrity(message, password):
            self.counters.integrity_failures += 1
            return 401, None, (AuthFailed(username, source, StunOutcome.BAD_INTEGRITY, now),)
        return None, password, ()

    def _learn(
        self, message: Message, source: Address, now: float, *, authenticated: bool
    ) -> tuple[StunEvent, ...]:
        username = message.username
        if not message.connection_request_binding or username is None:
            return ()
        previous = self._bindings.pop(username, None)
        self._bindings[username] = Binding(source, now)
        if len(self._bindings) > self.settings.max_bindings:
            self._bindings.popitem(last=False)
        changed = previous is None or previous.address != source
        return (
            BindingLearned(username, source, changed, message.binding_change, authenticated, now),
        )

    def _error(
        self,
        txid: bytes,
        code: int,
        to: Address,
        limit: int,
        reason: str | None = None,
        unknown: tuple[int, ...] = (),
        events: tuple[StunEvent, ...] = (),
    ) -> Handled:
        """An error answer of at most *limit* bytes (the request's size), its reason cut to fit;
        none when even an empty reason would not fit. Errors are never signed."""
        self.counters.count_error(code)
        bare = len(binding_error(txid, code, "", unknown))
        if bare > limit:
            self.counters.withheld += 1
            return Handled(None, to, events)
        text = ERROR_REASONS.get(code, "") if reason is None else reason
        room = (limit - bare) // 4 * 4  # the reason is padded to a multiple of 4 bytes
        fitted = text.encode()[:room].decode(errors="ignore")
        return Handled(binding_error(txid, code, fitted, unknown), to, events)
