"""The sans-IO XMPP client core against scripted server bytes, and against the server core."""

from __future__ import annotations

import base64
import itertools
import re
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from knock.xmpp.c2s import C2S, Policy
from knock.xmpp.client import (
    ClientConfig,
    ClientConnection,
    Ended,
    EndReason,
    IqRequest,
    IqResult,
    NotOnline,
    Online,
    Output,
    StanzaError,
    StartTls,
    TlsPolicy,
)
from knock.xmpp.jid import parse_jid
from knock.xmpp.sasl import Challenge, NeedCredentials, ScramCredentials, ScramSha1Server, Success

DOMAIN = "xmpp.example"
JID = "cpe-0001@xmpp.example/cwmp"
PASSWORD = "cpe-0001-pw"
CREDENTIALS = ScramCredentials.from_password(PASSWORD, salt=b"fixed-salt", iterations=64)
SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
CLIENT_HEADER = (
    b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
    b"xmlns:stream='http://etherx.jabber.org/streams' to='xmpp.example' version='1.0' "
    b"xml:lang='en'>"
)
SERVER_HEADER = (
    b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
    b"xmlns:stream='http://etherx.jabber.org/streams' from='xmpp.example' id='s1' "
    b"version='1.0'>"
)
STARTTLS = b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>%s</starttls>"
MECHANISMS = b"<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>%s</mechanisms>"
SCRAM_AND_PLAIN = MECHANISMS % b"<mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism>"
BIND_FEATURES = (
    b"<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
    b"<session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/></session>"
    b"</stream:features>"
)
BOUND = (
    b"<iq type='result' id='id2'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
    b"<jid>%s</jid></bind></iq>"
)
BIND_REQUEST = (
    b"<iq type='set' id='id2'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
    b"<resource>cwmp</resource></bind></iq>"
)
END = b"</stream:stream>"


def features(*children: bytes) -> bytes:
    return b"<stream:features>" + b"".join(children) + b"</stream:features>"


def counter() -> Callable[[], str]:
    numbers = itertools.count(1)
    return lambda: f"id{next(numbers)}"


def connection(jid: str = JID, *, secure: bool = False, **rules: object) -> ClientConnection:
    """*secure*: the transport is TLS already; *rules*: the ClientConfig's."""
    config = ClientConfig(new_id=counter(), **rules)  # type: ignore[arg-type]
    client = ClientConnection(config, parse_jid(jid), PASSWORD, now=0.0, tls=secure)
    assert client.due == 30.0  # the login deadline
    return client


def b64(data: bytes) -> bytes:
    return base64.b64encode(data)


def sasl_payload(element: bytes) -> bytes:
    match = re.search(rb">([^<]*)</", element)
    assert match is not None, element
    return base64.b64decode(match.group(1))


def authenticate(client: ClientConnection, server: ScramSha1Server) -> list[Output]:
    """Answer the client's SCRAM messages as the server core does; the client's output after
    <success/>."""
    (auth,) = client.receive(SERVER_HEADER + features(SCRAM_AND_PLAIN), 0.0)
    assert auth == b"<auth xmlns='%s' mechanism='SCRAM-SHA-1'>%s</auth>" % (
        SASL.encode(),
        b64(b"n,,n=cpe-0001,r=id1"),
    )
    assert isinstance(server.start(sasl_payload(auth)), NeedCredentials)
    challenge = server.credentials(CREDENTIALS)
    assert isinstance(challenge, Challenge)
    (response,) = client.receive(
        b"<challenge xmlns='%s'>%s</challenge>" % (SASL.encode(), b64(challenge.data)), 0.0
    )
    assert response.startswith(b"<response xmlns='%s'>" % SASL.encode())
    success = server.respond(sasl_payload(response))
    assert isinstance(success, Success)
    return client.receive(
        b"<success xmlns='%s'>%s</success>" % (SASL.encode(), b64(success.data)), 0.0
    )


def online(jid: str = JID, **rules: object) -> ClientConnection:
    client = connection(jid, secure=True, **rules)
    client.start()
    authenticate(client, ScramSha1Server("server-nonce"))
    client.receive(SERVER_HEADER + BIND_FEATURES, 0.0)
    client.receive(BOUND % jid.encode(), 0.0)
    assert client.online
    return client


# --- logging in -------------------------------------------------------------------------------


def test_scram_login_binds_the_resource_the_server_assigns() -> None:
    client = connection(tls=TlsPolicy.IF_OFFERED)
    assert client.start() == [CLIENT_HEADER]
    assert authenticate(client, ScramSha1Server("server-nonce")) == [CLIENT_HEADER]
    assert client.receive(SERVER_HEADER + BIND_FEATURES, 0.0) == [BIND_REQUEST]
    bound = (
        b"<iq type='result' id='id2'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
        b"<jid>cpe-0001@xmpp.example/cwmp-7</jid></bind></iq>"
    )
    assert client.receive(bound, 5.0) == [
        b"<presence/>",
        Online("cpe-0001@xmpp.example/cwmp-7", tls=False),
    ]
    assert client.online and str(client.jid) == "cpe-0001@xmpp.example/cwmp-7"
    assert client.due == 305.0  # the first keep-alive


def test_starttls_drops_clear_text_leftovers_and_names_the_client_after() -> None:
    client = connection()  # TLS required
    client.start()
    offered = SERVER_HEADER + features(STARTTLS % b"", SCRAM_AND_PLAIN)
    assert client.receive(offered, 0.0) == [b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"]
    injected = b"<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"
    assert client.receive(
        b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>" + injected, 0.0
    ) == [StartTls()]
    assert client.receive(b"<more-in-the-clear/>", 0.0) == []
    assert client.tls_established() == [
        CLIENT_HEADER.replace(b" to=", b" from='cpe-0001@xmpp.example' to=")
    ]
    plain_only = SERVER_HEADER + features(MECHANISMS % b"<mechanism>PLAIN</mechanism>")
    assert client.receive(plain_only, 0.0) == [
        b"<auth xmlns='%s' mechanism='PLAIN'>%s</auth>"
        % (SASL.encode(), b64(b"\0cpe-0001\0cpe-0001-pw"))
    ]


def test_the_server_refusing_starttls_ends_the_stream() -> None:
    client = connection()
    client.start()
    client.receive(SERVER_HEADER + features(STARTTLS % b""), 0.0)
    assert client.receive(b"<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>", 0.0) == [
        END,
        Ended(EndReason.TLS_UNAVAILABLE, text="the server refused STARTTLS"),
    ]


@pytest.mark.parametrize(
    ("policy", "offered", "first"),
    [
        (
            TlsPolicy.REQUIRED,
            b"",
            Ended(EndReason.TLS_UNAVAILABLE, text="the server offers no STARTTLS"),
        ),
        (
            TlsPolicy.NEVER,
            STARTTLS % b"<required/>",
            Ended(EndReason.TLS_UNAVAILABLE, text="the server requires STARTTLS"),
        ),
        (TlsPolicy.NEVER, STARTTLS % b"", "SCRAM-SHA-1"),
        (TlsPolicy.IF_OFFERED, b"", "SCRAM-SHA-1"),
        (
            TlsPolicy.IF_OFFERED,
            STARTTLS % b"",
            b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
        ),
    ],
)
def test_tls_policy(policy: TlsPolicy, offered: bytes, first: object) -> None:
    client = connection(tls=policy)
    client.start()
    out = client.receive(SERVER_HEADER + features(offered, SCRAM_AND_PLAIN), 0.0)
    if isinstance(first, str):
        assert len(out) == 1 and f"mechanism='{first}'".encode() in out[0]  # type: ignore[operator]
    elif isinstance(first, Ended):
        assert out == [END, first]
    else:
        assert out == [first]


@pytest.mark.parametrize("allowed", [False, True])
def test_plain_in_the_clear_only_when_allowed(allowed: bool) -> None:
    client = connection(tls=TlsPolicy.NEVER, allow_plain_without_tls=allowed)
    client.start()
    out = client.receive(
        SERVER_HEADER + features(MECHANISMS % b"<mechanism>PLAIN</mechanism>"), 0.0
    )
    if allowed:
        assert out == [
            b"<auth xmlns='%s' mechanism='PLAIN'>%s</auth>"
            % (SASL.encode(), b64(b"\0cpe-0001\0cpe-0001-pw"))
        ]
    else:
        assert out == [END, Ended(EndReason.AUTH_FAILED, text="no usable SASL mechanism (PLAIN)")]


def test_sasl_failure_reports_condition_and_text() -> None:
    client = connection(tls=TlsPolicy.NEVER)
    client.start()
    client.receive(SERVER_HEADER + features(SCRAM_AND_PLAIN), 0.0)
    failure = (
        b"<failure xmlns='%s'><not-authorized/><text>wrong password</text></failure>"
        % SASL.encode()
    )
    assert client.receive(failure, 0.0) == [
        END,
        Ended(EndReason.AUTH_FAILED, "not-authorized", "wrong password"),
    ]


def test_a_server_that_cannot_prove_the_password_is_left() -> None:
    client = connection(tls=TlsPolicy.NEVER)
    client.start()
    server = ScramSha1Server("server-nonce")
    (auth,) = client.receive(SERVER_HEADER + features(SCRAM_AND_PLAIN), 0.0)
    server.start(sasl_payload(auth))
    challenge = server.credentials(CREDENTIALS)
    assert isinstance(challenge, Challenge)
    client.receive(
        b"<challenge xmlns='%s'>%s</challenge>" % (SASL.encode(), b64(challenge.data)), 0.0
    )
    out = client.receive(
        b"<success xmlns='%s'>%s</success>" % (SASL.encode(), b64(b"v=Zm9yZ2Vk")), 0.0
    )
    assert out[0] == END and isinstance(out[1], Ended) and out[1].reason is EndReason.AUTH_FAILED
    assert client.ended and client.due is None


def test_session_is_established_when_the_server_still_requires_it() -> None:
    client = connection(tls=TlsPolicy.NEVER)
    client.start()
    authenticate(client, ScramSha1Server("n"))
    required = BIND_FEATURES.replace(b"<optional/>", b"")
    assert client.receive(SERVER_HEADER + required, 0.0) == [BIND_REQUEST]
    assert client.receive(BOUND % JID.encode(), 0.0) == [
        b"<iq type='set' id='id3'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>"
    ]
    assert client.receive(b"<iq type='result' id='id3'/>", 0.0) == [
        b"<presence/>",
        Online(JID, tls=False),
    ]


def test_bind_refused() -> None:
    client = connection(tls=TlsPolicy.NEVER)
    client.start()
    authenticate(client, ScramSha1Server("n"))
    client.receive(SERVER_HEADER + BIND_FEATURES, 0.0)
    refused = (
        b"<iq type='error' id='id2'><error type='cancel'><conflict xmlns='%s'/></error></iq>"
        % STANZAS.encode()
    )
    out = client.receive(refused, 0.0)
    assert out[0] == END and isinstance(out[1], Ended)
    assert (out[1].reason, out[1].condition) == (EndReason.BIND_FAILED, "conflict")


def test_login_timeout_and_keepalive_follow_the_given_clock() -> None:
    client = connection()
    client.start()
    assert client.tick(29.9) == []
    assert client.tick(30.0) == [END, Ended(EndReason.TIMEOUT, text="not online within 30.0 s")]
    live = online(keepalive_interval=60.0)
    assert live.due == 60.0
    assert live.tick(59.0) == []
    assert live.tick(60.5) == [b" "]
    assert live.due == 120.5
    assert online(keepalive_interval=0).due is None


# --- what the server may send -----------------------------------------------------------------


def test_stream_errors_and_the_server_closing() -> None:
    client = online()
    error = (
        b"<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
        b"<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>replaced</text></stream:error>"
    )
    assert client.receive(error + END, 0.0) == [
        END,
        Ended(EndReason.STREAM_ERROR, "conflict", "replaced"),
    ]
    assert client.receive(b"<iq/>", 0.0) == [] and client.close() == []
    closing = online()
    assert closing.receive(END, 0.0) == [END, Ended(EndReason.CLOSED)]
    assert online().close() == [END, Ended(EndReason.LOCAL)]


@pytest.mark.parametrize(
    ("data", "condition"),
    [
        (b"<iq type='get' id='1'><a></b></iq>", "not-well-formed"),
        (b"<!DOCTYPE x>", "restricted-xml"),
        (b"text", "bad-format"),
    ],
)
def test_bad_xml_from_the_server_gets_a_stream_error(data: bytes, condition: str) -> None:
    out = online().receive(data, 0.0)
    assert out[0].startswith(b"<stream:error><%s " % condition.encode())  # type: ignore[union-attr]
    assert out[1] == END
    assert isinstance(out[2], Ended) and (out[2].reason, out[2].condition) == (
        EndReason.PROTOCOL_ERROR,
        condition,
    )


def test_an_element_out_of_place_ends_the_stream() -> None:
    client = connection()
    client.start()
    out = client.receive(SERVER_HEADER + b"<iq type='result' id='x'/>", 0.0)
    assert isinstance(out[-1], Ended) and out[-1].reason is EndReason.PROTOCOL_ERROR


def test_a_wrong_stream_namespace_or_version() -> None:
    client = connection()
    client.start()
    header = SERVER_HEADER.replace(b"id='s1' version='1.0'", b"id='s1' version='0.9'")
    out = client.receive(header, 0.0)
    assert isinstance(out[-1], Ended) and out[-1].condition == "unsupported-version"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_after_login_are_events_or_a_clean_end(data: bytes) -> None:
    client = online()
    for output in client.receive(data, 1.0) + client.receive(data, 2.0):
        assert isinstance(output, bytes | IqRequest | IqResult | Ended)


def test_a_login_fed_one_byte_at_a_time() -> None:
    client = connection(tls=TlsPolicy.NEVER)
    client.start()
    out: list[Output] = []
    for byte in SERVER_HEADER + features(SCRAM_AND_PLAIN):
        out += client.receive(bytes([byte]), 0.0)
    assert len(out) == 1 and b"mechanism='SCRAM-SHA-1'" in out[0]  # type: ignore[operator]


# --- IQs --------------------------------------------------------------------------------------

CONN_REQ = (
    b"<iq type='get' from='acs@xmpp.example/knock' to='cpe-0001@xmpp.example/cwmp' id='cr1'>"
    b"<connectionRequest xmlns='urn:broadband-forum-org:cwmp:xmppConnReq-1-0'>"
    b"<username>u</username><password>p</password></connectionRequest></iq>"
)


def test_requests_are_events_and_are_answered_as_given() -> None:
    client = online()
    (request,) = client.receive(CONN_REQ, 0.0)
    assert isinstance(request, IqRequest)
    assert (request.id, request.sender) == ("cr1", "acs@xmpp.example/knock")
    assert etree.QName(request.payload).localname == "connectionRequest"
    assert client.answer(request) == (
        b'<iq type="result" id="cr1" from="cpe-0001@xmpp.example/cwmp" '
        b'to="acs@xmpp.example/knock"/>'
    )
    misspelled = client.answer(request, StanzaError("auth", "not-autorized", text="no"))
    assert misspelled == (
        b'<iq type="error" id="cr1" from="cpe-0001@xmpp.example/cwmp" to="acs@xmpp.example/knock">'
        b'<error type="auth"><not-autorized xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/>'
        b'<text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas">no</text></error></iq>'
    )
    wrong_namespace = StanzaError("", others=("{jabber:client}not-authorized",))
    assert client.answer(request, wrong_namespace).endswith(
        b"<error><not-authorized/></error></iq>"
    )


def test_pings_are_answered_and_bad_requests_refused() -> None:
    client = online()
    ping = (
        b"<iq type='get' from='xmpp.example' to='cpe-0001@xmpp.example/cwmp' id='p1'>"
        b"<ping xmlns='urn:xmpp:ping'/></iq>"
    )
    assert client.receive(ping, 0.0) == [
        b'<iq type="result" id="p1" from="cpe-0001@xmpp.example/cwmp" to="xmpp.example"/>'
    ]
    (refusal,) = client.receive(b"<iq type='set' id='2' from='x@xmpp.example/r'/>", 0.0)
    assert (
        b'<error type="modify"><bad-request xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/>'
        in refusal
    )  # type: ignore[operator]
    assert client.receive(b"<iq type='get'><ping xmlns='urn:xmpp:ping'/></iq>", 0.0) == []
    assert client.receive(b"<message><body>hi</body></message><presence/>", 0.0) == []


def test_send_iq_and_its_result() -> None:
    client = online()
    content = etree.Element("{urn:example}q", nsmap={None: "urn:example"})  # type: ignore[dict-item]
    iq_id, data = client.send_iq("CPE-0002@xmpp.example/cwmp", content)
    assert (iq_id, data) == (
        "id3",
        b'<iq type="get" id="id3" to="cpe-0002@xmpp.example/cwmp"><q xmlns="urn:example"/></iq>',
    )
    result = (
        b"<iq type='result' id='id3' from='cpe-0002@xmpp.example/cwmp'>"
        b"<q xmlns='urn:example'>x</q></iq>"
    )
    (answer,) = client.receive(result, 0.0)
    assert (
        isinstance(answer, IqResult) and answer.ok and answer.sender == "cpe-0002@xmpp.example/cwmp"
    )
    assert answer.payload is not None and answer.payload.text == "x"
    assert client.receive(result, 0.0) == []  # answered once only


@pytest.mark.parametrize(
    ("error", "parsed"),
    [
        (
            b"<error type='cancel'><service-unavailable xmlns='%s'/></error>" % STANZAS.encode(),
            StanzaError("cancel", "service-unavailable"),
        ),
        (
            b"<error type='auth'><not-autorized xmlns='%s'/></error>" % STANZAS.encode(),
            StanzaError("auth", "not-autorized"),
        ),
        (
            b"<error type='auth'><not-authorized/></error>",
            StanzaError("auth", others=("{jabber:client}not-authorized",)),
        ),
        (b"", StanzaError("")),
        (
            b"<error type='modify' by='xmpp.example'><text xmlns='%s'> too many </text>"
            b"<resource-constraint xmlns='%s'/><slow xmlns='urn:x'/></error>"
            % (STANZAS.encode(), STANZAS.encode()),
            StanzaError(
                "modify", "resource-constraint", "too many", "xmpp.example", ("{urn:x}slow",)
            ),
        ),
        (
            b"<error type='bogus'><gone xmlns='%s'/></error>" % STANZAS.encode(),
            StanzaError("bogus", "gone"),
        ),
    ],
)
def test_error_conditions_are_read_as_they_were_sent(error: bytes, parsed: StanzaError) -> None:
    client = online()
    iq_id, _ = client.send_iq("cpe-0002@xmpp.example/cwmp", etree.Element("{urn:x}q"))
    (answer,) = client.receive(
        b"<iq type='error' id='%s' from='cpe-0002@xmpp.example/cwmp'>%s</iq>"
        % (iq_id.encode(), error),
        0.0,
    )
    assert isinstance(answer, IqResult) and answer.error == parsed and answer.payload is None
    assert parsed.well_formed == (
        parsed.condition != "" and parsed.type != "bogus" and parsed.type != ""
    )


def test_only_the_addressee_or_its_server_may_answer() -> None:
    client = online()
    iq_id, _ = client.send_iq("cpe-0002@xmpp.example/cwmp", etree.Element("{urn:x}q"))
    forged = b"<iq type='result' id='%s' from='cpe-0003@xmpp.example/cwmp'/>" % iq_id.encode()
    assert client.receive(forged, 0.0) == []
    for sender in (b"xmpp.example", b"cpe-0002@xmpp.example"):
        again, _ = client.send_iq("cpe-0002@xmpp.example/cwmp", etree.Element("{urn:x}q"))
        (answer,) = client.receive(
            b"<iq type='result' id='%s' from='%s'/>" % (again.encode(), sender), 0.0
        )
        assert isinstance(answer, IqResult)
    to_server, _ = client.send_iq(None, etree.Element("{urn:xmpp:ping}ping"))
    (answer,) = client.receive(b"<iq type='result' id='%s'/>" % to_server.encode(), 0.0)
    assert isinstance(answer, IqResult) and answer.sender == ""
    late, _ = client.send_iq("cpe-0002@xmpp.example/cwmp", etree.Element("{urn:x}q"))
    client.forget(late)
    assert (
        client.receive(
            b"<iq type='result' id='%s' from='cpe-0002@xmpp.example/cwmp'/>" % late.encode(), 0.0
        )
        == []
    )


def test_sending_before_online_or_after_the_end_is_refused() -> None:
    client = connection()
    with pytest.raises(NotOnline):
        client.send_iq(None, etree.Element("{urn:x}q"))
    ended = online()
    (request,) = ended.receive(CONN_REQ, 0.0)
    ended.close()
    assert ended.answer(request) == b""  # type: ignore[arg-type]


# --- against the server core ------------------------------------------------------------------


def pump(client: ClientConnection, server: C2S, first: list[Output]) -> list[Output]:
    """Carry bytes both ways until neither side writes; the client's events."""
    events: list[Output] = []
    to_server = [o for o in first if isinstance(o, bytes)]
    while to_server:
        to_client = []
        for action in server.receive(b"".join(to_server), 0.0):
            if isinstance(action, bytes):
                to_client.append(action)
            elif isinstance(action, NeedCredentials):
                to_client += [a for a in server.credentials(CREDENTIALS) if isinstance(a, bytes)]
        to_server = []
        for output in client.receive(b"".join(to_client), 0.0):
            (to_server if isinstance(output, bytes) else events).append(output)
    return events


def test_the_client_core_logs_in_to_the_server_core() -> None:
    server = C2S(Policy(DOMAIN, allow_plain_without_tls=True), now=0.0)
    client = connection(tls=TlsPolicy.NEVER)
    assert pump(client, server, client.start()) == [Online(JID, tls=False)]
    assert server.jid == parse_jid(JID) and server.available
    iq_id, data = client.send_iq(DOMAIN, etree.Element("{urn:xmpp:ping}ping"))
    (answer,) = pump(client, server, [data])
    assert isinstance(answer, IqResult) and answer.ok and answer.id == iq_id
