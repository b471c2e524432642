"""The client side of one XMPP connection (RFC 6120), sans-IO.

The adapter calls `start` once the transport is up (after the handshake, for direct TLS), feeds
what the server sent to `receive`, calls `tick` at `due`, and carries out what every call returns
in order: bytes to write, and events (run a TLS client handshake, online, an IQ request to
answer, an IQ answer, the end of the stream).

Phases: stream header, features, STARTTLS as the policy says, SASL (SCRAM-SHA-1 before PLAIN,
PLAIN only over TLS unless allowed), stream restart, resource binding, session establishment
when the server still requires it, initial presence; then IQs both ways. Whatever the server
sends is reported, never raised: a stanza error's condition is read by hand and passed on as it
was spelled, since deployed CPEs answer with conditions no library knows (`not-autorized`).

Ten thousand of these run in a few processes for a simulated fleet, so a connection keeps only
its parser, a few scalars, and the ids of the IQs it is waiting for.
"""

from __future__ import annotations

import base64
import enum
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from lxml import etree

from knock.xmpp import ns
from knock.xmpp.jid import Jid, JidError, parse_jid
from knock.xmpp.sasl import ScramClient
from knock.xmpp.stanzas import IQ, payload, reply
from knock.xmpp.stream import (
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_STANZA,
    STREAM_CLOSE,
    Stanza,
    StreamClosed,
    StreamCondition,
    StreamOpened,
    StreamParser,
    escape_text,
    serialize,
    stream_error,
    stream_header,
)


class TlsPolicy(enum.StrEnum):
    REQUIRED = "required"  # TLS (direct or STARTTLS) or no login at all
    IF_OFFERED = "if-offered"  # STARTTLS when the server offers it
    NEVER = "never"  # never STARTTLS; a server that requires it is left


def _random_id() -> str:
    return secrets.token_urlsafe(9)


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """Rules shared by many connections (a whole simulated fleet uses one)."""

    tls: TlsPolicy = TlsPolicy.REQUIRED
    allow_plain_without_tls: bool = False
    keepalive_interval: float = 300.0  # a space this often once online; 0: none (TR-181)
    login_timeout: float = 30.0  # from `start` to online
    max_stanza: int = DEFAULT_MAX_STANZA
    max_depth: int = DEFAULT_MAX_DEPTH
    new_id: Callable[[], str] = _random_id  # IQ ids and SCRAM nonces


# --- events -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StartTls:
    """Write what came before, run a TLS client handshake, then call `tls_established`."""


@dataclass(frozen=True, slots=True)
class Online:
    """Resource bound and initial presence sent. *jid* is the full JID the server bound, which
    may differ from the one asked for (TR-181 JabberID)."""

    jid: str
    tls: bool


@dataclass(frozen=True, slots=True)
class StanzaError:
    """A stanza error (RFC 6120 §8.3) as the peer wrote it, valid or not.

    *condition* is the local name of the first child in the stanzas namespace other than
    `text`, spelled as sent ("" when there is none); *others* are the Clark names of any other
    children: application-specific conditions, or conditions in the wrong namespace.
    """

    type: str = "cancel"  # "" when the attribute is missing
    condition: str = ""
    text: str = ""
    by: str = ""
    others: tuple[str, ...] = ()

    @property
    def well_formed(self) -> bool:
        return bool(self.condition) and self.type in _ERROR_TYPES

    def describe(self) -> str:
        """One line with everything the peer sent, for logs and attempt details."""
        parts = [f"{self.type or '(no type)'}/{self.condition or '(no condition)'}"]
        if self.text:
            parts.append(f"text {self.text!r}")
        if self.others:
            parts.append(f"other children {', '.join(self.others)}")
        if self.by:
            parts.append(f"by {self.by}")
        return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class IqRequest:
    """A get or set IQ for the caller to answer with `answer` (pings are answered already)."""

    stanza: etree._Element

    @property
    def id(self) -> str:
        return self.stanza.get("id", "")

    @property
    def sender(self) -> str:
        return self.stanza.get("from", "")

    @property
    def payload(self) -> etree._Element:
        return self.stanza[0]


@dataclass(frozen=True, slots=True)
class IqResult:
    """The answer to an IQ this connection sent: a result (*error* None) or an error."""

    id: str
    sender: str  # its 'from', as sent ("" when missing)
    error: StanzaError | None
    payload: etree._Element | None

    @property
    def ok(self) -> bool:
        return self.error is None


class EndReason(enum.StrEnum):
    CLOSED = "closed"  # the server closed the stream
    LOCAL = "local"  # `close` was called
    STREAM_ERROR = "stream-error"  # the server sent <stream:error>
    PROTOCOL_ERROR = "protocol-error"  # the server broke a rule; this side sent a stream error
    TLS_UNAVAILABLE = "tls-unavailable"  # the policy and what the server offers disagree
    AUTH_FAILED = "auth-failed"
    BIND_FAILED = "bind-failed"
    TIMEOUT = "timeout"  # not online within login_timeout


@dataclass(frozen=True, slots=True)
class Ended:
    """The stream is over: write what came before, then close the transport."""

    reason: EndReason
    condition: str = ""  # the stream error's, SASL failure's or bind error's, as sent
    text: str = ""

    def describe(self) -> str:
        return ": ".join(part for part in (self.reason.value, self.condition, self.text) if part)


Output = bytes | StartTls | Online | IqRequest | IqResult | Ended


class NotOnline(RuntimeError):
    """An IQ was to be sent on a connection that is not (or no longer) online."""


# --- the connection ---------------------------------------------------------------------------

_ERROR_TYPES: Final = frozenset({"auth", "cancel", "continue", "modify", "wait"})
_FEATURES: Final = ns.qname(ns.STREAMS, "features")
_STREAM_ERROR: Final = ns.qname(ns.STREAMS, "error")
_STARTTLS: Final = ns.qname(ns.TLS, "starttls")
_TLS_REQUIRED: Final = ns.qname(ns.TLS, "required")
_PROCEED: Final = ns.qname(ns.TLS, "proceed")
_TLS_FAILURE: Final = ns.qname(ns.TLS, "failure")
_MECHANISM: Final = f"{{{ns.SASL}}}mechanisms/{{{ns.SASL}}}mechanism"
_CHALLENGE: Final = ns.qname(ns.SASL, "challenge")
_SUCCESS: Final = ns.qname(ns.SASL, "success")
_SASL_FAILURE: Final = ns.qname(ns.SASL, "failure")
_SASL_TEXT: Final = ns.qname(ns.SASL, "text")
_BIND: Final = ns.qname(ns.BIND, "bind")
_BOUND_JID: Final = f"{{{ns.BIND}}}bind/{{{ns.BIND}}}jid"
_SESSION: Final = ns.qname(ns.SESSION, "session")
_SESSION_OPTIONAL: Final = ns.qname(ns.SESSION, "optional")
_PING: Final = ns.qname(ns.PING, "ping")
_ERROR: Final = ns.qname(ns.CLIENT, "error")
_ERROR_TEXT: Final = ns.qname(ns.STANZA_ERRORS, "text")
_NSMAP: Final = ns.default(ns.CLIENT)
_SCRAM, _PLAIN = "SCRAM-SHA-1", "PLAIN"


class _Phase(enum.Enum):
    HEADER = enum.auto()  # waiting for the server's stream header and features
    STARTTLS = enum.auto()  # <starttls/> sent
    HANDSHAKE = enum.auto()  # the adapter runs TLS
    SASL = enum.auto()
    BIND = enum.auto()  # the bind IQ sent
    BIND_SESSION = enum.auto()  # the bind IQ sent, and the server requires a session after it
    SESSION = enum.auto()  # the session IQ sent
    ONLINE = enum.auto()
    ENDED = enum.auto()


class ClientConnection:
    """One client stream from the first header to its end; a new one for each connection."""

    __slots__ = (
        "_authenticated",
        "_config",
        "_due",
        "_jid",
        "_out",
        "_parser",
        "_password",
        "_pending",
        "_phase",
        "_scram",
        "_server_verified",
        "_step_id",
        "_tls",
    )

    def __init__(
        self, config: ClientConfig, jid: Jid, password: str, *, now: float, tls: bool = False
    ) -> None:
        """*jid*: the account, with the resource to ask for (empty: the server picks one);
        *tls*: the transport is TLS already (direct TLS)."""
        self._config = config
        self._jid = jid
        self._password = password
        self._tls = tls
        self._parser = StreamParser(config.max_stanza, config.max_depth)
        self._phase = _Phase.HEADER
        self._authenticated = False
        self._scram: ScramClient | None = None
        self._server_verified = False
        self._step_id = ""  # the id of the bind or session IQ being waited for
        self._pending: dict[str, str] | None = None  # IQ id -> where it went ("": the server)
        self._due: float | None = now + config.login_timeout  # the login deadline
        self._out: list[Output] = []

    @property
    def jid(self) -> Jid:
        """The full JID once online, the JID asked for before."""
        return self._jid

    @property
    def online(self) -> bool:
        return self._phase is _Phase.ONLINE

    @property
    def ended(self) -> bool:
        return self._phase is _Phase.ENDED

    @property
    def tls(self) -> bool:
        return self._tls

    @property
    def due(self) -> float | None:
        """When `tick` must be called next (the login deadline, then the next keep-alive)."""
        return self._due

    # --- calls from the adapter -----------------------------------------------------------

    def start(self) -> list[Output]:
        """The opening header; call once the transport (and direct TLS) is up."""
        self._send_header()
        return self._take()

    def tls_established(self) -> list[Output]:
        """The TLS handshake that StartTls asked for succeeded: the stream starts over."""
        if self._phase is _Phase.HANDSHAKE:
            self._tls = True
            self._phase = _Phase.HEADER
            self._send_header()
        return self._take()

    def receive(self, data: bytes, now: float) -> list[Output]:
        # During the TLS handshake nothing may reach the stream: it would be clear text.
        if self._phase not in (_Phase.ENDED, _Phase.HANDSHAKE):
            for event in self._parser.feed(data):
                if isinstance(event, Stanza):
                    self._stanza(event.element, now)
                elif isinstance(event, StreamOpened):
                    self._opened(event)
                elif isinstance(event, StreamClosed):
                    self._end(EndReason.CLOSED)
                else:
                    self._emit(stream_error(event.condition, event.text))
                    self._end(EndReason.PROTOCOL_ERROR, event.condition, event.text)
                # After <proceed/> the parser is replaced: what followed it in the clear is
                # dropped, never read as if TLS had protected it.
                if self._phase in (_Phase.ENDED, _Phase.HANDSHAKE):
                    break
        return self._take()

    def tick(self, now: float) -> list[Output]:
        due = self._due
        if due is None or now < due:
            pass
        elif self._phase is _Phase.ONLINE:
            # RFC 6120 §4.6.1: whitespace keeps NATs and the server's idle timers happy.
            self._emit(b" ")
            self._due = now + self._config.keepalive_interval
        else:
            self._end(EndReason.TIMEOUT, text=f"not online within {self._config.login_timeout} s")
        return self._take()

    def close(self) -> list[Output]:
        if self._phase is not _Phase.ENDED:
            self._end(EndReason.LOCAL)
        return self._take()

    # --- IQs once online ------------------------------------------------------------------

    def send_iq(
        self, to: str | None, content: etree._Element, type_: str = "get"
    ) -> tuple[str, bytes]:
        """An IQ carrying *content* (which becomes its child) to *to* (None: the server), and
        its id, which the IqResult will carry. Raises NotOnline, or JidError for a bad *to*."""
        if self._phase is not _Phase.ONLINE:
            raise NotOnline(f"{self._jid} is not online")
        target = str(parse_jid(to)) if to else ""
        iq_id = self._config.new_id()
        iq = etree.Element(IQ, {"type": type_, "id": iq_id}, nsmap=_NSMAP)
        if target:
            iq.set("to", target)
        iq.append(content)
        if self._pending is None:
            self._pending = {}
        self._pending[iq_id] = target
        return iq_id, serialize(iq)

    def forget(self, iq_id: str) -> None:
        """Stop waiting for the answer to *iq_id* (it timed out): a late one is dropped."""
        if self._pending is not None:
            self._pending.pop(iq_id, None)
            if not self._pending:
                self._pending = None

    def answer(self, request: IqRequest, error: StanzaError | None = None) -> bytes:
        """A result for *request*, or the error described (written as given, so that a
        simulated device can send a misspelled condition, or none)."""
        if self._phase is not _Phase.ONLINE:
            return b""
        if error is None:
            return serialize(reply(request.stanza))
        answer = reply(request.stanza, "error")
        element = etree.SubElement(answer, _ERROR)
        if error.type:
            element.set("type", error.type)
        if error.by:
            element.set("by", error.by)
        if error.condition:
            payload(element, ns.STANZA_ERRORS, error.condition)
        for other in error.others:
            etree.SubElement(element, other)
        if error.text:
            payload(element, ns.STANZA_ERRORS, "text").text = error.text
        return serialize(answer)

    # --- plumbing -------------------------------------------------------------------------

    def _take(self) -> list[Output]:
        out, self._out = self._out, []
        return out

    def _emit(self, output: Output) -> None:
        self._out.append(output)

    def _send_header(self) -> None:
        # RFC 6120 §4.7.1: the client names itself once the stream is protected.
        sender = _bare(self._jid) if self._tls else None
        self._emit(stream_header(to=self._jid.domain, from_=sender))

    def _end(self, reason: EndReason, condition: str = "", text: str = "") -> None:
        self._emit(STREAM_CLOSE)
        self._phase = _Phase.ENDED
        self._due = None
        self._pending = None
        self._scram = None
        self._password = ""
        self._emit(Ended(reason, condition, text))

    def _protocol_error(self, text: str) -> None:
        self._emit(stream_error(StreamCondition.UNSUPPORTED_STANZA_TYPE, text))
        self._end(EndReason.PROTOCOL_ERROR, StreamCondition.UNSUPPORTED_STANZA_TYPE, text)

    def _opened(self, event: StreamOpened) -> None:
        major = event.attrs.get("version", "0").partition(".")[0]
        if event.namespace != ns.CLIENT:
            self._emit(stream_error(StreamCondition.INVALID_NAMESPACE))
            self._end(EndReason.PROTOCOL_ERROR, StreamCondition.INVALID_NAMESPACE)
        elif not (major.isdigit() and int(major) >= 1):
            self._emit(stream_error(StreamCondition.UNSUPPORTED_VERSION))
            self._end(EndReason.PROTOCOL_ERROR, StreamCondition.UNSUPPORTED_VERSION)

    # --- top-level elements ---------------------------------------------------------------

    def _stanza(self, element: etree._Element, now: float) -> None:
        tag, phase = element.tag, self._phase
        if tag == _STREAM_ERROR:
            self._stream_error(element)
        elif phase is _Phase.ONLINE:
            if tag == IQ:
                self._iq(element)
            # Messages, presence and unknown elements mean nothing to a CPE or an ACS.
        elif phase is _Phase.HEADER and tag == _FEATURES:
            self._features(element)
        elif phase is _Phase.STARTTLS and tag == _PROCEED:
            self._phase = _Phase.HANDSHAKE
            self._parser = StreamParser(self._config.max_stanza, self._config.max_depth)
            self._emit(StartTls())
        elif phase is _Phase.STARTTLS and tag == _TLS_FAILURE:
            self._end(EndReason.TLS_UNAVAILABLE, text="the server refused STARTTLS")
        elif phase is _Phase.SASL and tag in (_CHALLENGE, _SUCCESS, _SASL_FAILURE):
            self._sasl(element, tag)
        elif phase in (_Phase.BIND, _Phase.BIND_SESSION, _Phase.SESSION) and tag == IQ:
            self._step_answer(element, now)
        else:
            self._protocol_error(f"{tag} is out of place here")

    def _stream_error(self, element: etree._Element) -> None:
        condition, text = "", ""
        for child in element:
            local = etree.QName(child).localname
            if local == "text":
                text = (child.text or "").strip()
            elif not condition:
                condition = local
        self._end(EndReason.STREAM_ERROR, condition, text)

    def _features(self, features: etree._Element) -> None:
        if self._authenticated:
            return self._bind(features)
        starttls = features.find(_STARTTLS)
        policy = self._config.tls
        if not self._tls and starttls is not None and policy is not TlsPolicy.NEVER:
            self._phase = _Phase.STARTTLS
            self._emit(f"<starttls xmlns='{ns.TLS}'/>".encode())
        elif not self._tls and policy is TlsPolicy.REQUIRED:
            self._end(EndReason.TLS_UNAVAILABLE, text="the server offers no STARTTLS")
        elif starttls is not None and starttls.find(_TLS_REQUIRED) is not None:
            self._end(EndReason.TLS_UNAVAILABLE, text="the server requires STARTTLS")
        else:
            self._authenticate([(m.text or "").strip() for m in features.iterfind(_MECHANISM)])

    def _authenticate(self, offered: list[str]) -> None:
        local, password = self._jid.local, self._password
        if _SCRAM in offered:
            try:
                scram = ScramClient(local, password, nonce=self._config.new_id())
            except ValueError as exc:  # SASLprep refuses the name
                return self._end(EndReason.AUTH_FAILED, text=str(exc))
            self._scram = scram
            mechanism, initial = _SCRAM, scram.first()
        elif _PLAIN in offered and (self._tls or self._config.allow_plain_without_tls):
            mechanism, initial = _PLAIN, f"\0{local}\0{password}".encode()
        else:
            listed = ", ".join(offered) or "none"
            return self._end(EndReason.AUTH_FAILED, text=f"no usable SASL mechanism ({listed})")
        self._phase = _Phase.SASL
        self._emit(_sasl_element("auth", initial, f" mechanism='{mechanism}'"))

    def _sasl(self, element: etree._Element, tag: object) -> None:
        if tag == _SASL_FAILURE:
            named = (etree.QName(c).localname for c in element if c.tag != _SASL_TEXT)
            condition = next(named, "")
            text = (element.findtext(_SASL_TEXT) or "").strip()
            return self._end(EndReason.AUTH_FAILED, condition, text)
        scram = self._scram
        try:
            encoded = (element.text or "").strip()
            data = b"" if encoded == "=" else base64.b64decode(encoded, validate=True)
            if tag == _SUCCESS:
                if scram is not None and (data or not self._server_verified):
                    scram.verify(data)
            elif scram is None:
                raise ValueError("a challenge to PLAIN")
            elif data.startswith(b"v="):  # RFC 6120 §6.3.10: old servers verify in a challenge
                scram.verify(data)
                self._server_verified = True
                return self._emit(f"<response xmlns='{ns.SASL}'/>".encode())
            else:
                return self._emit(_sasl_element("response", scram.final(data)))
        except ValueError as exc:  # bad base64, a bad server-first message, a wrong signature
            return self._end(EndReason.AUTH_FAILED, text=f"the server's SASL: {exc}")
        self._scram = None
        self._password = ""
        self._authenticated = True
        self._phase = _Phase.HEADER
        self._parser.restart()  # RFC 6120 §6.4.6: the stream starts over after <success/>
        self._send_header()

    def _bind(self, features: etree._Element) -> None:
        if features.find(_BIND) is None:
            return self._end(EndReason.BIND_FAILED, text="the server offers no resource binding")
        session = features.find(_SESSION)
        # RFC 6121 Appendix E: only a server that still requires a session gets asked for one.
        required = session is not None and session.find(_SESSION_OPTIONAL) is None
        self._phase = _Phase.BIND_SESSION if required else _Phase.BIND
        resource = self._jid.resource
        asked = f"<resource>{escape_text(resource)}</resource>" if resource else ""
        self._step_iq(f"<bind xmlns='{ns.BIND}'>{asked}</bind>")

    def _step_iq(self, content: str) -> None:
        self._step_id = self._config.new_id()
        self._emit(f"<iq type='set' id='{self._step_id}'>{content}</iq>".encode())

    def _step_answer(self, iq: etree._Element, now: float) -> None:
        if iq.get("id") != self._step_id or iq.get("type") not in ("result", "error"):
            return self._protocol_error("only the bind or session answer may come now")
        if iq.get("type") == "error":
            error = parse_stanza_error(iq)
            return self._end(EndReason.BIND_FAILED, error.condition, error.describe())
        if self._phase is _Phase.SESSION:
            return self._online(now)
        try:
            bound = parse_jid((iq.findtext(_BOUND_JID) or "").strip())
        except JidError as exc:
            return self._end(EndReason.BIND_FAILED, text=f"the server bound no valid JID: {exc}")
        if not bound.is_full:
            return self._end(EndReason.BIND_FAILED, text=f"the server bound {bound}, no resource")
        self._jid = bound
        if self._phase is _Phase.BIND_SESSION:
            self._phase = _Phase.SESSION
            self._step_iq(f"<session xmlns='{ns.SESSION}'/>")
        else:
            self._online(now)

    def _online(self, now: float) -> None:
        self._step_id = ""
        self._phase = _Phase.ONLINE
        interval = self._config.keepalive_interval
        self._due = now + interval if interval > 0 else None
        self._emit(b"<presence/>")
        self._emit(Online(str(self._jid), self._tls))

    def _iq(self, iq: etree._Element) -> None:
        kind, iq_id = iq.get("type"), iq.get("id")
        if iq_id is None:
            return  # RFC 6120 §8.2.3: unanswerable, and nobody waits for it
        if kind in ("get", "set"):
            if len(iq) != 1:
                self._emit(self.answer(IqRequest(iq), StanzaError("modify", "bad-request")))
            elif kind == "get" and iq[0].tag == _PING:
                self._emit(serialize(reply(iq)))
            else:
                self._emit(IqRequest(iq))
        elif kind in ("result", "error") and self._answers(iq_id, iq.get("from")):
            self.forget(iq_id)
            content = iq[0] if len(iq) and kind == "result" else None
            error = parse_stanza_error(iq) if kind == "error" else None
            self._emit(IqResult(iq_id, iq.get("from", ""), error, content))

    def _answers(self, iq_id: str, sender: str | None) -> bool:
        """Whether *sender* may answer *iq_id*: the entity it went to, or the server answering
        for it, so that another client cannot forge an answer by guessing an id. Servers stamp
        every client's 'from', so only they can write a bare JID or a domain there."""
        target = None if self._pending is None else self._pending.get(iq_id)
        if target is None:
            return False
        try:
            actual = str(parse_jid(sender)) if sender else ""
            peer = parse_jid(target) if target else self._jid
        except JidError:
            return False
        allowed = {_bare(peer), peer.domain, str(peer)}
        return actual in allowed or (not target and actual == "")


def parse_stanza_error(stanza: etree._Element) -> StanzaError:
    """The error of an error stanza, read by hand: whatever it holds, nothing is raised."""
    element = stanza.find(_ERROR)
    if element is None:
        return StanzaError(type="", others=tuple(str(child.tag) for child in stanza))
    condition, others = "", []
    for child in element:
        if child.tag == _ERROR_TEXT:
            continue
        if not condition and etree.QName(child).namespace == ns.STANZA_ERRORS:
            condition = etree.QName(child).localname
        else:
            others.append(str(child.tag))
    return StanzaError(
        type=element.get("type", ""),
        condition=condition,
        text=(element.findtext(_ERROR_TEXT) or "").strip(),
        by=element.get("by", ""),
        others=tuple(others),
    )


def _bare(jid: Jid) -> str:
    return f"{jid.local}@{jid.domain}" if jid.local else jid.domain


def _sasl_element(name: str, data: bytes, attrs: str = "") -> bytes:
    # RFC 6120 §6.4.2: "=" is an empty initial response; nothing at all is no response.
    content = base64.b64encode(data).decode("ascii") if data else "="
    return f"<{name} xmlns='{ns.SASL}'{attrs}>{content}</{name}>".encode()
