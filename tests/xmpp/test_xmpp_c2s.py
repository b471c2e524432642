"""The connection core, driven with bytes: every rule of RFC 6120 the server keeps, byte exact."""

from __future__ import annotations

import base64
import itertools
from typing import Any

import pytest
from lxml import etree

from knock.xmpp.c2s import (
    C2S,
    Action,
    Authenticated,
    AuthFailed,
    Bound,
    Closed,
    Keepalive,
    Policy,
    PresenceChanged,
    Refused,
    Route,
    StartTls,
)
from knock.xmpp.jid import Jid
from knock.xmpp.limits import Guard
from knock.xmpp.sasl import NeedCredentials, SaslCondition, ScramClient, ScramCredentials
from knock.xmpp.stanzas import StanzaCondition
from knock.xmpp.stream import STREAM_CLOSE, StreamCondition, serialize, stream_header

DOMAIN = "knock.test"
PASSWORD = "pw-0001"
CREDS = ScramCredentials.from_password(PASSWORD, iterations=64)
CLIENT_HEADER = stream_header(to=DOMAIN)
SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
ME = Jid("cpe-0001", DOMAIN, "cwmp")
CONN_REQ = (
    '<iq type="get" from="acs@knock.test/knock" to="cpe-0002@knock.test/cwmp" id="cr1">'
    '<connectionRequest xmlns="urn:broadband-forum-org:cwmp:xmppConnReq-1-0">'
    "<username>CR username</username><password>CR password</password>"
    "</connectionRequest></iq>"
)


def server_header(stream_id: str) -> bytes:
    return (
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
        f"xmlns:stream='http://etherx.jabber.org/streams' from='{DOMAIN}' id='{stream_id}' "
        "version='1.0' xml:lang='en'>"
    ).encode()


MECHANISMS = f"<mechanisms xmlns='{SASL}'><mechanism>SCRAM-SHA-1</mechanism></mechanisms>"
BIND_FEATURES = (
    b"<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
    b"<session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/></session>"
    b"</stream:features>"
)


class Wire:
    """A C2S and the client side of its conversation."""

    def __init__(
        self,
        *,
        tls: bool = False,
        starttls: bool = False,
        peer: str = "",
        guard: Guard | None = None,
        **rules: Any,
    ) -> None:
        ids = itertools.count(1)
        rules.setdefault("ping_interval", 60.0)
        rules.setdefault("ping_timeout", 10.0)
        self.policy = Policy(DOMAIN, new_id=lambda: f"id{next(ids)}", **rules)
        self.c2s = C2S(self.policy, now=0.0, tls=tls, starttls=starttls, peer=peer, guard=guard)
        self.events: list[Action] = []

    def split(self, actions: list[Action]) -> bytes:
        self.events = [a for a in actions if not isinstance(a, bytes)]
        return b"".join(a for a in actions if isinstance(a, bytes))

    def send(self, data: str | bytes, now: float = 0.0) -> bytes:
        raw = data.encode() if isinstance(data, str) else data
        return self.split(self.c2s.receive(raw, now))

    def answer_lookup(self, found: ScramCredentials | None) -> bytes:
        return self.split(self.c2s.credentials(found))

    def authenticate(self, username: str = "cpe-0001", password: str = PASSWORD) -> bytes:
        """SCRAM-SHA-1 on an open stream; returns the server's last reply."""
        client = ScramClient(username, password, nonce="cnonce")
        self.send(f"<auth xmlns='{SASL}' mechanism='SCRAM-SHA-1'>{_b64(client.first())}</auth>")
        assert self.events == [NeedCredentials(username.lower())]
        challenge = _sasl_payload(self.answer_lookup(CREDS))
        return self.send(f"<response xmlns='{SASL}'>{_b64(client.final(challenge))}</response>")

    def login(self, resource: str = "cwmp") -> None:
        self.send(CLIENT_HEADER)
        self.authenticate()
        self.send(CLIENT_HEADER)
        bind = (
            f"<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>{resource}</resource></bind>"
        )
        self.send(f"<iq type='set' id='b1'>{bind}</iq>")


def plain_auth(authzid: bytes, username: bytes, password: bytes) -> str:
    message = b"\0".join([authzid, username, password])
    return f"<auth xmlns='{SASL}' mechanism='PLAIN'>{_b64(message)}</auth>"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _sasl_payload(reply: bytes) -> bytes:
    return base64.b64decode(etree.fromstring(reply).text or "")


def test_login_with_scram_byte_exact() -> None:
    wire = Wire()
    assert (
        wire.send(CLIENT_HEADER)
        == server_header("id1") + (f"<stream:features>{MECHANISMS}</stream:features>").encode()
    )
    client = ScramClient("cpe-0001", PASSWORD, nonce="cnonce")
    auth = f"<auth xmlns='{SASL}' mechanism='SCRAM-SHA-1'>{_b64(client.first())}</auth>"
    assert wire.send(auth) == b""
    assert wire.events == [NeedCredentials("cpe-0001")]
    challenge = wire.answer_lookup(CREDS)
    server_first = (
        f"r=cnonceid2,s={_b64(CREDS.salt)},i=64"  # the server nonce is the second new id
    ).encode()
    assert challenge == f"<challenge xmlns='{SASL}'>{_b64(server_first)}</challenge>".encode()
    final = client.final(server_first)
    success = wire.send(f"<response xmlns='{SASL}'>{_b64(final)}</response>")
    client.verify(_sasl_payload(success))
    assert success.startswith(f"<success xmlns='{SASL}'>".encode())
    assert wire.events == [Authenticated("cpe-0001")]
    assert wire.send(CLIENT_HEADER) == server_header("id3") + BIND_FEATURES
    bind = (
        "<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
        "<resource>cwmp</resource></bind></iq>"
    )
    assert wire.send(bind) == (
        b'<iq type="result" id="b1"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind">'
        b"<jid>cpe-0001@knock.test/cwmp</jid></bind></iq>"
    )
    assert wire.events == [Bound(ME)]
    assert wire.c2s.jid == ME and wire.c2s.authenticated


def test_bytes_after_auth_wait_for_the_account_lookup() -> None:
    wire = Wire()
    client = ScramClient("cpe-0001", PASSWORD, nonce="cnonce")
    wire.send(CLIENT_HEADER + f"<auth xmlns='{SASL}' mechanism='SCRAM-SHA-1'>".encode())
    wire.send(f"{_b64(client.first())}</auth><presence/>")
    assert wire.events == [NeedCredentials("cpe-0001")]
    # Bytes after the <auth/> wait, unread, until the lookup has answered.
    challenge = wire.answer_lookup(CREDS)
    assert challenge.startswith(b"<challenge") and challenge.endswith(STREAM_CLOSE)
    assert wire.events == [Closed(StreamCondition.NOT_AUTHORIZED)]


def test_client_sessions_get_what_slixmpp_asks_for() -> None:
    wire = Wire()
    wire.login()
    assert wire.send(
        "<iq type='set' id='s'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>"
    ) == (b'<iq type="result" id="s" to="cpe-0001@knock.test/cwmp"/>')
    assert wire.send("<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>") == (
        b'<iq type="result" id="r" to="cpe-0001@knock.test/cwmp">'
        b'<query xmlns="jabber:iq:roster"/></iq>'
    )
    assert wire.send(
        "<iq type='get' id='d' to='knock.test'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"
    ) == (
        b'<iq type="result" id="d" from="knock.test" to="cpe-0001@knock.test/cwmp">'
        b'<query xmlns="http://jabber.org/protocol/disco#info">'
        b'<identity category="server" type="im" name="Knock"/>'
        b'<feature var="http://jabber.org/protocol/disco#info"/><feature var="urn:xmpp:ping"/>'
        b"</query></iq>"
    )
    assert (
        wire.send(
            "<iq type='get' id='p' to='cpe-0001@knock.test'><ping xmlns='urn:xmpp:ping'/></iq>"
        )
        == b'<iq type="result" id="p" from="cpe-0001@knock.test" to="cpe-0001@knock.test/cwmp"/>'
    )
    assert wire.send("<iq type='get' id='v'><query xmlns='jabber:iq:version'/></iq>") == (
        b'<iq type="error" id="v" to="cpe-0001@knock.test/cwmp"><error type="cancel">'
        b'<service-unavailable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></iq>'
    )
    assert wire.send("<presence><priority>1</priority></presence>") == b""
    assert wire.events == [PresenceChanged(ME, True)] and wire.c2s.available
    wire.send("<presence/>")
    assert wire.events == []
    wire.send("<presence type='unavailable'/>")
    assert wire.events == [PresenceChanged(ME, False)] and not wire.c2s.available


def test_a_forged_from_is_replaced_by_the_real_full_jid() -> None:
    wire = Wire()
    wire.login()
    assert wire.send(CONN_REQ) == b""
    (route,) = wire.events
    assert isinstance(route, Route) and route.to == Jid("cpe-0002", DOMAIN, "cwmp")
    assert (
        serialize(route.stanza)
        == CONN_REQ.replace("acs@knock.test/knock", "cpe-0001@knock.test/cwmp").encode()
    )


def test_a_stanza_nobody_is_bound_to_comes_back_service_unavailable() -> None:
    wire = Wire()
    wire.login()
    wire.send(CONN_REQ)
    (route,) = wire.events
    assert isinstance(route, Route)
    assert wire.split(wire.c2s.undeliverable(route.stanza)) == (
        b'<iq type="error" id="cr1" from="cpe-0002@knock.test/cwmp" '
        b'to="cpe-0001@knock.test/cwmp"><error type="cancel">'
        b'<service-unavailable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></iq>'
    )
    assert wire.events == [Refused(StanzaCondition.SERVICE_UNAVAILABLE)]
    wire.send("<iq type='result' id='x' to='cpe-0002@knock.test/cwmp'/>")
    (result,) = wire.events
    assert isinstance(result, Route)
    assert wire.split(wire.c2s.undeliverable(result.stanza)) == b""  # results are never bounced


@pytest.mark.parametrize(
    ("to", "condition"),
    [
        ("cpe-0002@knock.test", StanzaCondition.SERVICE_UNAVAILABLE),  # a bare JID
        ("cpe-0002@elsewhere.example/cwmp", StanzaCondition.REMOTE_SERVER_NOT_FOUND),
        ("a b@knock.test", StanzaCondition.JID_MALFORMED),
    ],
)
def test_stanzas_the_server_cannot_deliver(to: str, condition: StanzaCondition) -> None:
    wire = Wire()
    wire.login()
    reply = wire.send(f"<iq type='get' id='q' to='{to}'><ping xmlns='urn:xmpp:ping'/></iq>")
    error = etree.fromstring(reply)
    assert error.get("type") == "error" and error.get("from") == to
    assert error.find("{*}error/{urn:ietf:params:xml:ns:xmpp-stanzas}" + condition) is not None
    assert wire.events == [Refused(condition)]
    # Presence and errors are never answered with errors.
    assert wire.send(f"<presence to='{to}'/><message type='error' to='{to}'/>") == b""


@pytest.mark.parametrize(
    "iq",
    [
        "<iq type='get'><ping xmlns='urn:xmpp:ping'/></iq>",  # no id
        "<iq type='fetch' id='1'><ping xmlns='urn:xmpp:ping'/></iq>",
        "<iq type='get' id='1'/>",  # no payload
        "<iq type='set' id='1'><a xmlns='urn:a'/><b xmlns='urn:b'/></iq>",
    ],
)
def test_malformed_iqs_are_bad_requests(iq: str) -> None:
    wire = Wire()
    wire.login()
    wire.send(iq)
    assert wire.events == [Refused(StanzaCondition.BAD_REQUEST)]


def test_resources_are_chosen_or_generated_and_bound_once() -> None:
    wire = Wire()
    wire.login(resource="")
    assert wire.events == [Bound(Jid("cpe-0001", DOMAIN, "id4"))]
    bind = "<iq type='set' id='b2'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>"
    assert b"not-allowed" in wire.send(bind)
    bad = Wire()
    bad.login(resource="\x01")  # not even XML: the stream ends
    assert bad.events == [Closed(StreamCondition.NOT_WELL_FORMED)]


def test_starttls_then_plain_over_tls() -> None:
    wire = Wire(starttls=True)
    assert (
        wire.send(CLIENT_HEADER)
        == server_header("id1")
        + (
            "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'></starttls>"
            f"{MECHANISMS}</stream:features>"
        ).encode()
    )
    # Anything sent after <starttls/> in the same chunk was sent in the clear: it is dropped.
    injected = plain_auth(b"", b"cpe-0001", PASSWORD.encode())
    assert wire.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>" + injected) == (
        b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
    )
    assert wire.events == [StartTls()]
    assert (
        wire.send(CLIENT_HEADER)
        == server_header("id2")
        + (
            f"<stream:features><mechanisms xmlns='{SASL}'><mechanism>SCRAM-SHA-1</mechanism>"
            "<mechanism>PLAIN</mechanism></mechanisms></stream:features>"
        ).encode()
    )
    wire.send(injected)
    assert wire.events == [NeedCredentials("cpe-0001")]
    assert wire.answer_lookup(CREDS) == f"<success xmlns='{SASL}'></success>".encode()
    assert wire.events == [Authenticated("cpe-0001")]


def test_starttls_twice_or_unoffered_fails_and_ends_the_stream() -> None:
    wire = Wire(tls=True, starttls=True)  # direct TLS: nothing to upgrade
    wire.send(CLIENT_HEADER)
    assert wire.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>") == (
        b"<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>" + STREAM_CLOSE
    )
    assert wire.events == [Closed(None)]


def test_required_tls_offers_no_mechanism_before_it() -> None:
    wire = Wire(starttls=True, require_tls=True)
    assert wire.send(CLIENT_HEADER).endswith(
        b"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/>"
        b"</starttls></stream:features>"
    )
    assert (
        wire.send(f"<auth xmlns='{SASL}' mechanism='SCRAM-SHA-1'>biws</auth>")
        == (
            f"<failure xmlns='{SASL}'><encryption-required/><text>STARTTLS first</text></failure>"
        ).encode()
    )
    assert wire.events == [AuthFailed(SaslCondition.ENCRYPTION_REQUIRED)]


def test_plain_without_tls_is_refused_unless_allowed() -> None:
    plain = plain_auth(b"", b"cpe-0001", PASSWORD.encode())
    wire = Wire()
    wire.send(CLIENT_HEADER)
    assert (
        wire.send(plain)
        == (
            f"<failure xmlns='{SASL}'><encryption-required/><text>PLAIN needs TLS</text></failure>"
        ).encode()
    )
    allowed = Wire(allow_plain_without_tls=True)
    assert b"<mechanism>PLAIN</mechanism>" in allowed.send(CLIENT_HEADER)
    allowed.send(plain)
    assert allowed.answer_lookup(CREDS).startswith(b"<success")


def test_wrong_passwords_fail_and_too_many_end_the_stream() -> None:
    wire = Wire(max_auth_failures=2)
    wire.send(CLIENT_HEADER)
    assert (
        wire.authenticate(password="wrong")
        == (f"<failure xmlns='{SASL}'><not-authorized/></failure>").encode()
    )
    assert wire.events == [AuthFailed(SaslCondition.NOT_AUTHORIZED)]
    last = wire.authenticate(password="wrong")
    assert last.endswith(b"<policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
                         b"<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>too many failed "
                         b"authentications</text></stream:error></stream:stream>")  # fmt: skip
    assert wire.events == [
        AuthFailed(SaslCondition.NOT_AUTHORIZED),
        Closed(StreamCondition.POLICY_VIOLATION),
    ]
    assert wire.send("<presence/>") == b"" and wire.c2s.closed


def test_sasl_odds_and_ends() -> None:
    wire = Wire(max_auth_failures=5)
    wire.send(CLIENT_HEADER)
    assert b"<invalid-mechanism/>" in wire.send(f"<auth xmlns='{SASL}' mechanism='X-OAUTH'/>")
    assert b"<incorrect-encoding/>" in wire.send(
        f"<auth xmlns='{SASL}' mechanism='SCRAM-SHA-1'>!!</auth>"
    )
    # No initial response: an empty challenge asks for it.
    assert wire.send(f"<auth xmlns='{SASL}' mechanism='SCRAM-SHA-1'/>") == (
        f"<challenge xmlns='{SASL}'></challenge>".encode()
    )
    assert wire.send(f"<abort xmlns='{SASL}'/>") == (
        f"<failure xmlns='{SASL}'><aborted/></failure>".encode()
    )
    assert wire.events == [AuthFailed(SaslCondition.ABORTED)]
    assert b"<not-authorized " in wire.send(f"<response xmlns='{SASL}'>biws</response>")


def test_an_unknown_user_is_refused_like_a_wrong_password() -> None:
    wire = Wire()
    wire.send(CLIENT_HEADER)
    client = ScramClient("nobody", "x", nonce="n")
    wire.send(f"<auth xmlns='{SASL}' mechanism='SCRAM-SHA-1'>{_b64(client.first())}</auth>")
    challenge = _sasl_payload(wire.answer_lookup(None))
    reply = wire.send(f"<response xmlns='{SASL}'>{_b64(client.final(challenge))}</response>")
    assert reply == f"<failure xmlns='{SASL}'><not-authorized/></failure>".encode()


def test_an_authzid_for_someone_else_is_refused() -> None:
    wire = Wire(allow_plain_without_tls=True)
    wire.send(CLIENT_HEADER)
    wire.send(plain_auth(b"acs", b"cpe-0001", PASSWORD.encode()))
    assert b"<not-authorized/>" in wire.answer_lookup(CREDS)
    assert not wire.c2s.authenticated


@pytest.mark.parametrize(
    ("header", "condition"),
    [
        (stream_header(to="elsewhere.example"), StreamCondition.HOST_UNKNOWN),
        (stream_header(), StreamCondition.HOST_UNKNOWN),
        (
            CLIENT_HEADER.replace(b"jabber:client", b"jabber:server"),
            StreamCondition.INVALID_NAMESPACE,
        ),
        (
            CLIENT_HEADER.replace(b" version='1.0' xml", b" xml"),
            StreamCondition.UNSUPPORTED_VERSION,
        ),
        (b"<!DOCTYPE x [<!ENTITY a 'b'>]>", StreamCondition.RESTRICTED_XML),
    ],
)
def test_bad_stream_headers_get_a_header_then_the_error(
    header: bytes, condition: StreamCondition
) -> None:
    wire = Wire()
    reply = wire.send(header)
    assert reply.startswith(server_header("id1") + f"<stream:error><{condition} ".encode())
    assert reply.endswith(STREAM_CLOSE)
    assert wire.events == [Closed(condition)]


@pytest.mark.parametrize(
    ("login", "data", "condition"),
    [
        (
            False,
            "<iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>",
            StreamCondition.NOT_AUTHORIZED,
        ),
        (
            False,
            "<message to='cpe-0002@knock.test/cwmp'><body>hi</body></message>",
            StreamCondition.NOT_AUTHORIZED,
        ),
        (True, "<foo xmlns='urn:foo'/>", StreamCondition.UNSUPPORTED_STANZA_TYPE),
        (True, "<message><!-- hi --></message>", StreamCondition.RESTRICTED_XML),
        (True, "<message><body></message>", StreamCondition.NOT_WELL_FORMED),
        (
            True,
            "<message><body>" + "x" * 70000 + "</body></message>",
            StreamCondition.POLICY_VIOLATION,
        ),
    ],
)
def test_bad_input_ends_the_stream_with_the_right_error(
    login: bool, data: str, condition: StreamCondition
) -> None:
    wire = Wire()
    if login:
        wire.login()
    else:
        wire.send(CLIENT_HEADER)
    reply = wire.send(data)
    assert f"<stream:error><{condition} ".encode() in reply and reply.endswith(STREAM_CLOSE)
    assert wire.events == [Closed(condition)]


def test_stanzas_before_binding_are_not_authorized() -> None:
    wire = Wire()
    wire.send(CLIENT_HEADER)
    wire.authenticate()
    wire.send(CLIENT_HEADER)
    assert b"<not-authorized " in wire.send("<presence/>")


def test_the_client_closing_its_stream_closes_ours() -> None:
    wire = Wire()
    wire.login()
    assert wire.send(STREAM_CLOSE) == STREAM_CLOSE
    assert wire.events == [Closed(None)]
    other = Wire()
    other.login()
    assert (
        other.send(
            "<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"
        )
        == STREAM_CLOSE
    )


def test_the_server_can_end_a_stream_with_conflict() -> None:
    wire = Wire()
    wire.login()
    assert wire.split(wire.c2s.close(StreamCondition.CONFLICT, "replaced")) == (
        b"<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
        b"<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>replaced</text></stream:error>"
        + STREAM_CLOSE
    )
    assert wire.split(wire.c2s.close(StreamCondition.CONFLICT)) == b""


def tick(wire: Wire, now: float) -> bytes:
    return wire.split(wire.c2s.tick(now))


def test_silence_gets_a_ping_then_a_timeout() -> None:
    wire = Wire()
    wire.login()
    assert tick(wire, 60.0) == b""
    assert tick(wire, 60.5) == (
        b'<iq type="get" id="knock-ping" from="knock.test" to="cpe-0001@knock.test/cwmp">'
        b'<ping xmlns="urn:xmpp:ping"/></iq>'
    )
    assert tick(wire, 61.0) == b""  # one ping per silence
    wire.send('<iq type="result" id="knock-ping" to="knock.test"/>', now=65.0)
    assert wire.events == []
    assert tick(wire, 125.0) == b""
    assert tick(wire, 125.5).startswith(b"<iq")
    closing = tick(wire, 135.5)
    assert b"<connection-timeout " in closing and closing.endswith(STREAM_CLOSE)
    assert wire.events == [Closed(StreamCondition.CONNECTION_TIMEOUT)]


def test_whitespace_keepalive_mode_and_client_keepalives() -> None:
    wire = Wire(keepalive=Keepalive.WHITESPACE)
    wire.login()
    assert tick(wire, 60.5) == b" "
    wire.send(" ", now=61.0)  # the client's own whitespace keep-alive counts as life
    assert wire.events == [] and tick(wire, 121.0) == b""


def test_a_connection_that_never_binds_times_out() -> None:
    wire = Wire(login_timeout=5.0)
    wire.send(CLIENT_HEADER, now=1.0)
    wire.send(" ", now=4.0)
    assert tick(wire, 4.5) == b""
    assert b"<connection-timeout " in tick(wire, 5.5)
    silent = Wire(login_timeout=100.0)
    assert tick(silent, 60.5) == b""  # no header yet: nothing may be sent before ours
    assert tick(silent, 70.5).startswith(server_header("id1") + b"<stream:error>")
