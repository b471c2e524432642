"""One client-to-server XMPP connection (RFC 6120), sans-IO.

Bytes the client sent go in through `receive`; every call returns a list of actions in the
order they must happen: bytes to write, and events the adapter acts on (switch to TLS, look
up an account, register or route by full JID, close). Time comes in as ``now``; `tick` is
called now and then to send keep-alive pings and to end silent connections.

Phases of a connection: stream header, STARTTLS, SASL, stream restart, resource binding, and
then stanzas. A client that skips a phase, or sends what the phase does not allow, gets a
stream error and the connection ends; nothing it sends can reach another connection before it
is bound, and everything it sends after carries its real full JID as `from`.
"""

from __future__ import annotations

import base64
import binascii
import enum
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final

from lxml import etree

from knock.xmpp import ns, services
from knock.xmpp.jid import Jid, JidError, domainpart, localpart, parse_jid, resourcepart
from knock.xmpp.limits import Guard, Limits, Shaper
from knock.xmpp.sasl import (
    Challenge,
    Failure,
    Mechanism,
    NeedCredentials,
    PlainServer,
    SaslCondition,
    ScramCredentials,
    ScramSha1Server,
    Step,
    Success,
)
from knock.xmpp.stanzas import (
    IQ,
    MESSAGE,
    PRESENCE,
    StanzaCondition,
    error_reply,
    payload,
    ping,
    reply,
)
from knock.xmpp.stream import (
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_STANZA,
    STREAM_CLOSE,
    Stanza,
    StreamClosed,
    StreamCondition,
    StreamEvent,
    StreamOpened,
    StreamParser,
    escape_text,
    serialize,
    stream_error,
    stream_header,
)


class Keepalive(enum.StrEnum):
    """What the server sends to a connection that has been silent for `ping_interval`."""

    PING = "ping"  # an XEP-0199 ping IQ, which a live client answers
    WHITESPACE = "whitespace"  # a space, for clients that keep themselves alive


def _random_id() -> str:
    return secrets.token_urlsafe(12)


@dataclass(frozen=True, slots=True)
class Policy:
    """Rules shared by every connection of one server."""

    domain: str
    require_tls: bool = False
    allow_plain_without_tls: bool = False
    ping_interval: float = 300.0
    ping_timeout: float = 60.0  # silent this long after a ping: the connection is dead
    keepalive: Keepalive = Keepalive.PING
    login_timeout: float = 60.0  # from connecting to a bound resource
    max_auth_failures: int = 3
    max_stanza: int = DEFAULT_MAX_STANZA
    max_depth: int = DEFAULT_MAX_DEPTH
    new_id: Callable[[], str] = _random_id  # stream ids, generated resources, SCRAM nonces
    # Login throttle, shaper, addressing rule and session cap (knock.xmpp.limits); None: none,
    # every account a peer of every other (a general server, as the tests and benches use).
    limits: Limits | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "domain", domainpart(self.domain))


# --- actions ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StartTls:
    """Write what came before, then run a TLS server handshake on the connection."""


@dataclass(frozen=True, slots=True)
class Authenticated:
    username: str


@dataclass(frozen=True, slots=True)
class AuthFailed:
    condition: SaslCondition


@dataclass(frozen=True, slots=True)
class Bound:
    """Register the connection under *jid*; a connection already there gets `close(CONFLICT)`."""

    jid: Jid


@dataclass(frozen=True, slots=True)
class PresenceChanged:
    jid: Jid
    available: bool


@dataclass(frozen=True, slots=True)
class Route:
    """Deliver *stanza* to the connection bound to *to*, or, if none is, pass it back to
    `undeliverable`."""

    to: Jid
    stanza: etree._Element


@dataclass(frozen=True, slots=True)
class Refused:
    """The server answered a stanza with an error (or dropped it, when errors must not be
    answered: presence, results, errors)."""

    condition: StanzaCondition


@dataclass(frozen=True, slots=True)
class Pause:
    """Stop reading the connection until *until* (the clock `receive` is given): it sent
    faster than its rate."""

    until: float


@dataclass(frozen=True, slots=True)
class Closed:
    """Close the connection after writing what came before. *condition* is the stream error
    sent, None for a clean close."""

    condition: StreamCondition | None


Action = (
    bytes
    | StartTls
    | NeedCredentials
    | Authenticated
    | AuthFailed
    | Bound
    | PresenceChanged
    | Route
    | Refused
    | Pause
    | Closed
)

_STREAM_ERROR: Final = ns.qname(ns.STREAMS, "error")
_STARTTLS: Final = ns.qname(ns.TLS, "starttls")
_AUTH: Final = ns.qname(ns.SASL, "auth")
_RESPONSE: Final = ns.qname(ns.SASL, "response")
_ABORT: Final = ns.qname(ns.SASL, "abort")
_BIND: Final = ns.qname(ns.BIND, "bind")
_RESOURCE: Final = ns.qname(ns.BIND, "resource")
_PING_ID: Final = "knock-ping"
_IQ_TYPES: Final = frozenset({"get", "set", "result", "error"})
_MECHANISMS: Final[dict[str, Callable[[Policy], Mechanism]]] = {
    ScramSha1Server.name: lambda policy: ScramSha1Server(policy.new_id()),
    PlainServer.name: lambda policy: PlainServer(),
}


class C2S:
    """The server side of one client connection."""

    __slots__ = (
        "_available",
        "_awaiting",
        "_checking",
        "_closed",
        "_deadline",
        "_failures",
        "_guard",
        "_header_sent",
        "_jid",
        "_last_rx",
        "_mechanism",
        "_out",
        "_parser",
        "_peer",
        "_pinged",
        "_policy",
        "_shaper",
        "_starttls",
        "_tls",
        "_username",
    )

    def __init__(
        self,
        policy: Policy,
        *,
        now: float,
        tls: bool = False,
        starttls: bool = False,
        peer: str = "",
        guard: Guard | None = None,
    ):
        """*tls*: the connection is TLS already (direct TLS); *starttls*: it can be upgraded.
        *peer*: the client's address, for the login throttle; *guard*: the state the server's
        connections share to enforce `policy.limits` (one of its own when not given)."""
        self._policy = policy
        limits = policy.limits
        self._guard = guard or (Guard(limits) if limits is not None else None)
        self._shaper = Shaper(limits, policy.max_stanza, now) if limits is not None else None
        self._peer = peer
        self._checking: str | None = None  # the user whose password is being checked
        self._parser = StreamParser(policy.max_stanza, policy.max_depth)
        self._tls = tls
        self._starttls = starttls and not tls
        self._header_sent = False
        self._mechanism: Mechanism | None = None
        self._awaiting = False  # an account lookup is in flight
        self._failures = 0
        self._username = ""
        self._jid: Jid | None = None
        self._available = False
        self._closed = False
        self._last_rx = now
        self._deadline = now + policy.login_timeout
        self._pinged = False
        self._out: list[Action] = []

    @property
    def jid(self) -> Jid | None:
        """The full JID once a resource is bound."""
        return self._jid

    @property
    def authenticated(self) -> bool:
        return bool(self._username)

    @property
    def available(self) -> bool:
        """Whether the client sent its initial presence (and has not gone unavailable)."""
        return self._available

    @property
    def closed(self) -> bool:
        return self._closed

    # --- calls from the adapter -----------------------------------------------------------

    def receive(self, data: bytes, now: float) -> list[Action]:
        if not self._closed:
            self._last_rx, self._pinged = now, False
            events = self._parser.feed(data)
            stanzas = 0 if self._awaiting else self._drain(events)
            shaper = self._shaper
            if shaper is not None and not self._closed:
                until = shaper.charge(len(data), stanzas, now)
                if until > now:
                    self._emit(Pause(until))
        return self._take()

    def credentials(self, found: ScramCredentials | None) -> list[Action]:
        """The answer to NeedCredentials: the account's credentials, None if it has none."""
        if self._awaiting and self._mechanism is not None and not self._closed:
            self._awaiting = False
            self._sasl_step(self._mechanism.credentials(found))
            if not self._awaiting and not self._closed:
                self._drain(self._parser.feed(b""))
        return self._take()

    def tick(self, now: float) -> list[Action]:
        policy = self._policy
        if self._closed:
            pass
        elif self._jid is None and now > self._deadline:
            self._fail(StreamCondition.CONNECTION_TIMEOUT, "no resource bound in time")
        elif now - self._last_rx > policy.ping_interval + policy.ping_timeout:
            self._fail(StreamCondition.CONNECTION_TIMEOUT, "silent for too long")
        elif now - self._last_rx > policy.ping_interval and self._header_sent and not self._pinged:
            self._pinged = True
            if policy.keepalive is Keepalive.PING and self._jid is not None:
                self._emit(serialize(ping(policy.domain, str(self._jid), _PING_ID)))
            else:
                self._emit(b" ")
        return self._take()

    def close(self, condition: StreamCondition, text: str = "") -> list[Action]:
        """End the stream from the server's side: conflict, shutdown, a client not reading."""
        if not self._closed:
            self._fail(condition, text)
        return self._take()

    def undeliverable(self, stanza: etree._Element) -> list[Action]:
        """A stanza this connection sent to a full JID that no connection is bound to."""
        if not self._closed:
            self._refuse(stanza, StanzaCondition.SERVICE_UNAVAILABLE)
        return self._take()

    # --- plumbing -------------------------------------------------------------------------

    def _take(self) -> list[Action]:
        out, self._out = self._out, []
        return out

    def _emit(self, action: Action) -> None:
        self._out.append(action)

    def _drain(self, events: Iterator[StreamEvent]) -> int:
        """Act on *events*; return how many stanzas there were, for the shaper."""
        parser = self._parser
        stanzas = 0
        for event in events:
            if isinstance(event, Stanza):
                stanzas += 1
                self._stanza(event.element)
            elif isinstance(event, StreamOpened):
                self._opened(event)
            elif isinstance(event, StreamClosed):
                self._end(b"", None)
            else:
                self._fail(event.condition, event.text)
            # STARTTLS replaces the parser: bytes after <starttls/> were sent in the clear and
            # are dropped, never read as if TLS had protected them.
            if self._closed or self._awaiting or self._parser is not parser:
                break
        return stanzas

    def _send_header(self, peer: str | None = None) -> None:
        self._header_sent = True
        self._emit(
            stream_header(from_=self._policy.domain, to=peer, stream_id=self._policy.new_id())
        )

    def _fail(self, condition: StreamCondition, text: str = "") -> None:
        if not self._header_sent:
            self._send_header()  # RFC 6120 §4.9.1.2: an error is sent inside a stream
        self._end(stream_error(condition, text), condition)

    def _end(self, last: bytes, condition: StreamCondition | None) -> None:
        self._emit(last + STREAM_CLOSE)
        self._closed = True
        self._emit(Closed(condition))

    def _restart(self) -> None:
        self._header_sent = False
        self._parser.restart()

    # --- stream header and features -------------------------------------------------------

    def _opened(self, event: StreamOpened) -> None:
        attrs = event.attrs
        if event.namespace != ns.CLIENT:
            return self._fail(StreamCondition.INVALID_NAMESPACE, "a client stream is jabber:client")
        try:
            ours = domainpart(attrs.get("to", "")) == self._policy.domain
        except JidError:
            ours = False
        if not ours:
            return self._fail(StreamCondition.HOST_UNKNOWN, f"this is {self._policy.domain}")
        major = attrs.get("version", "0").partition(".")[0]
        if not (major.isdigit() and int(major) >= 1):
            return self._fail(StreamCondition.UNSUPPORTED_VERSION, "XMPP 1.0 streams only")
        peer = attrs.get("from")
        try:
            peer = str(parse_jid(peer)) if peer else None
        except JidError:
            peer = None
        self._send_header(peer)
        self._emit(self._features())

    def _features(self) -> bytes:
        if self._username:
            return (
                f"<stream:features><bind xmlns='{ns.BIND}'/>"
                f"<session xmlns='{ns.SESSION}'><optional/></session></stream:features>"
            ).encode()
        features = ""
        if self._starttls and not self._tls:
            required = "<required/>" if self._policy.require_tls else ""
            features += f"<starttls xmlns='{ns.TLS}'>{required}</starttls>"
        if self._tls or not self._policy.require_tls:
            names = [ScramSha1Server.name] + ([PlainServer.name] if self._plain_allowed else [])
            listed = "".join(f"<mechanism>{name}</mechanism>" for name in names)
            features += f"<mechanisms xmlns='{ns.SASL}'>{listed}</mechanisms>"
        return f"<stream:features>{features}</stream:features>".encode()

    @property
    def _plain_allowed(self) -> bool:
        return self._tls or self._policy.allow_plain_without_tls

    # --- top-level elements ---------------------------------------------------------------

    def _stanza(self, element: etree._Element) -> None:
        tag = element.tag
        if tag == _STREAM_ERROR:
            self._end(b"", None)
        elif not self._username:
            self._negotiate(element, tag)
        elif self._jid is None:
            if tag == IQ and element.get("type") == "set" and _payload_tag(element) == _BIND:
                self._bind(element)
            else:
                self._fail(StreamCondition.NOT_AUTHORIZED, "bind a resource first")
        elif tag in (IQ, MESSAGE, PRESENCE):
            self._bound_stanza(element, tag)
        else:
            self._fail(StreamCondition.UNSUPPORTED_STANZA_TYPE, f"unknown element {tag}")

    def _negotiate(self, element: etree._Element, tag: object) -> None:
        if tag == _STARTTLS:
            self._start_tls()
        elif tag == _AUTH:
            self._auth(element)
        elif tag == _RESPONSE and self._mechanism is not None:
            data = self._sasl_data(element)
            if data is not None:
                self._sasl_step(self._mechanism.respond(data))
        elif tag == _ABORT and self._mechanism is not None:
            self._sasl_step(Failure(SaslCondition.ABORTED))
        else:
            self._fail(StreamCondition.NOT_AUTHORIZED, "authenticate first")

    def _start_tls(self) -> None:
        if not self._starttls or self._tls:
            # RFC 6120 §5.4.2.2: a <failure/>, then the stream ends.
            return self._end(f"<failure xmlns='{ns.TLS}'/>".encode(), None)
        self._emit(f"<proceed xmlns='{ns.TLS}'/>".encode())
        self._emit(StartTls())
        self._tls = True
        self._header_sent = False
        self._parser = StreamParser(self._policy.max_stanza, self._policy.max_depth)

    # --- SASL -----------------------------------------------------------------------------

    def _auth(self, element: etree._Element) -> None:
        name = element.get("mechanism", "")
        if self._policy.require_tls and not self._tls:
            return self._sasl_step(Failure(SaslCondition.ENCRYPTION_REQUIRED, "STARTTLS first"))
        if name == PlainServer.name and not self._plain_allowed:
            return self._sasl_step(Failure(SaslCondition.ENCRYPTION_REQUIRED, "PLAIN needs TLS"))
        factory = _MECHANISMS.get(name)
        if factory is None:
            return self._sasl_step(Failure(SaslCondition.INVALID_MECHANISM))
        data = self._sasl_data(element) if element.text else None
        if element.text and data is None:
            return
        self._mechanism = factory(self._policy)
        self._sasl_step(self._mechanism.start(data))

    def _sasl_data(self, element: etree._Element) -> bytes | None:
        """The base64 payload of an SASL element ("=" is empty); None after a failure."""
        text = (element.text or "").strip()
        try:
            return b"" if text in ("", "=") else base64.b64decode(text, validate=True)
        except binascii.Error:
            self._sasl_step(Failure(SaslCondition.INCORRECT_ENCODING))
            return None

    def _sasl_step(self, step: Step) -> None:
        if isinstance(step, NeedCredentials):
            try:
                username = localpart(step.username)
            except JidError:
                username = ""
            guard = self._guard
            if guard is not None and guard.logins.refused(username, self._peer, self._last_rx):
                # Decided before any lookup: the same answer whether the account exists or not.
                text = "too many failed logins; try again later"
                return self._sasl_step(Failure(SaslCondition.TEMPORARY_AUTH_FAILURE, text))
            self._checking = username
            if not username:
                # A name no account can have is looked up as an unknown one.
                assert self._mechanism is not None
                return self._sasl_step(self._mechanism.credentials(None))
            self._awaiting = True
            self._emit(NeedCredentials(username))
        elif isinstance(step, Challenge):
            self._emit(_sasl_element("challenge", step.data))
        elif isinstance(step, Success):
            self._mechanism = None
            self._checking = None
            self._username = localpart(step.username)
            own = (self._username, f"{self._username}@{self._policy.domain}")
            if step.authzid and step.authzid not in own:
                self._username = ""
                return self._sasl_step(Failure(SaslCondition.NOT_AUTHORIZED, "authzid refused"))
            if self._guard is not None:
                self._guard.logins.succeeded(self._username, self._peer)
                if self._guard.limits.is_service(self._username):
                    self._shaper = None
            self._emit(_sasl_element("success", step.data))
            self._emit(Authenticated(self._username))
            self._restart()
        else:
            self._mechanism = None
            self._failures += 1
            checked, self._checking = self._checking, None
            wrong = checked is not None and step.condition is SaslCondition.NOT_AUTHORIZED
            if wrong and self._guard is not None:
                self._guard.logins.failed(checked or "", self._peer, self._last_rx)
            text = f"<text>{escape_text(step.text)}</text>" if step.text else ""
            self._emit(f"<failure xmlns='{ns.SASL}'><{step.condition}/>{text}</failure>".encode())
            self._emit(AuthFailed(step.condition))
            if self._failures >= self._policy.max_auth_failures:
                self._fail(StreamCondition.POLICY_VIOLATION, "too many failed authentications")

    # --- after authentication -------------------------------------------------------------

    def _bind(self, element: etree._Element) -> None:
        if not _valid_iq(element):
            return self._refuse(element, StanzaCondition.BAD_REQUEST)
        asked = (element[0].findtext(_RESOURCE) or "").strip()
        try:
            resource = resourcepart(asked or self._policy.new_id())
        except JidError:
            return self._refuse(element, StanzaCondition.BAD_REQUEST)
        jid = Jid(self._username, self._policy.domain, resource)
        guard = self._guard
        if guard is not None and not self._admitted(guard, jid):
            return self._refuse(element, StanzaCondition.RESOURCE_CONSTRAINT)
        self._jid = jid
        answer = reply(element)
        bound = payload(answer, ns.BIND, "bind")
        etree.SubElement(bound, ns.qname(ns.BIND, "jid")).text = str(jid)
        self._emit(serialize(answer))
        self._emit(Bound(jid))

    def _admitted(self, guard: Guard, jid: Jid) -> bool:
        """The session cap: service accounts (one resource per ACS process) have none."""
        limits = guard.limits
        return limits.is_service(jid.local) or guard.sessions.admits(jid, limits.max_sessions)

    def _bound_stanza(self, element: etree._Element, tag: object) -> None:
        jid = self._jid
        assert jid is not None
        element.set("from", str(jid))  # never trust the client's own 'from'
        if tag == IQ and not _valid_iq(element):
            return self._refuse(element, StanzaCondition.BAD_REQUEST)
        to_text = element.get("to")
        try:
            to = parse_jid(to_text) if to_text else None
        except JidError:
            return self._refuse(element, StanzaCondition.JID_MALFORMED)
        domain = self._policy.domain
        if to is None or to == Jid("", domain) or (tag == IQ and to == jid.bare):
            self._for_server(element, tag, to is None)
        elif to.domain != domain:
            self._refuse(element, StanzaCondition.REMOTE_SERVER_NOT_FOUND)
        elif not self._may_address(to):
            self._refuse(element, StanzaCondition.NOT_ALLOWED)
        elif to.is_full:
            self._emit(Route(to, element))
        else:
            # No offline storage and no rosters: a bare JID reaches no one.
            self._refuse(element, StanzaCondition.SERVICE_UNAVAILABLE)

    def _may_address(self, to: Jid) -> bool:
        """A device account reaches the service accounts (the ACS) alone; others anyone."""
        guard = self._guard
        if guard is None:
            return True
        is_service = guard.limits.is_service
        return is_service(self._username) or is_service(to.local)

    def _for_server(self, element: etree._Element, tag: object, untargeted: bool) -> None:
        if tag == PRESENCE:
            if untargeted and element.get("type") in (None, "unavailable"):
                self._presence(element.get("type") is None)
            return
        if tag == IQ and _payload_tag(element) == _BIND:
            return self._refuse(element, StanzaCondition.NOT_ALLOWED)  # one resource per stream
        if tag == MESSAGE or element.get("type") in ("get", "set"):
            answer = services.answer(element) if tag == IQ else None
            if answer is None:
                return self._refuse(element, StanzaCondition.SERVICE_UNAVAILABLE)
            self._emit(serialize(answer))
        # An IQ result or error sent to the server answers its ping: being alive was the point.

    def _presence(self, available: bool) -> None:
        if available != self._available and self._jid is not None:
            self._available = available
            self._emit(PresenceChanged(self._jid, available))

    def _refuse(self, element: etree._Element, condition: StanzaCondition) -> None:
        # Errors are never answered to errors, results or presence (RFC 6120 §8.3.1 and
        # RFC 6121 §8.5.2): that is how two entities would bounce errors forever.
        answerable = element.get("type") != "error" and (
            element.tag == MESSAGE or (element.tag == IQ and element.get("type") in ("get", "set"))
        )
        if answerable:
            self._emit(serialize(error_reply(element, condition)))
        self._emit(Refused(condition))


def _payload_tag(element: etree._Element) -> object:
    return element[0].tag if len(element) else None


def _valid_iq(element: etree._Element) -> bool:
    """RFC 6120 §8.2.3: an id, a known type, and exactly one payload in a get or set."""
    kind = element.get("type")
    if element.get("id") is None or kind not in _IQ_TYPES:
        return False
    return kind not in ("get", "set") or len(element) == 1


def _sasl_element(name: str, data: bytes) -> bytes:
    payload = base64.b64encode(data).decode("ascii") if data else ""
    return f"<{name} xmlns='{ns.SASL}'>{payload}</{name}>".encode()
