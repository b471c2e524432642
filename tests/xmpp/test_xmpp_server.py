"""The built-in server over real sockets on 127.0.0.1, with slixmpp 1.17 as the client."""

from __future__ import annotations

import asyncio
import ssl
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import slixmpp
from lxml import etree
from slixmpp.exceptions import IqError
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from knock.tlsutil import ensure_self_signed
from knock.xmpp.accounts import MemoryAccounts
from knock.xmpp.c2s import Policy
from knock.xmpp.jid import Jid
from knock.xmpp.sasl import ScramCredentials
from knock.xmpp.server import Listen, XmppServer
from knock.xmpp.stream import (
    Stanza,
    StreamClosed,
    StreamEvent,
    StreamOpened,
    StreamParser,
    stream_header,
)

DOMAIN = "xmpp.example"  # PROTOCOLS.md §5 uses it
CONN_REQ_NS = "urn:broadband-forum-org:cwmp:xmppConnReq-1-0"
# PROTOCOLS.md §5, exactly.
CONN_REQ = """<iq type="get" from="acs@xmpp.example/knock" to="cpe-0001@xmpp.example/cwmp" id="cr1">
    <connectionRequest xmlns="urn:broadband-forum-org:cwmp:xmppConnReq-1-0">
      <username>CR username</username><password>CR password</password>
    </connectionRequest></iq>"""
PASSWORDS = {"acs": "acs-secret", "cpe-0001": "cpe-0001-pw", "cpe-0002": "cpe-0002-pw"}
STREAM_ERRORS = "urn:ietf:params:xml:ns:xmpp-streams"


def make_server(tmp_path: Path, **rules: Any) -> XmppServer:
    accounts = MemoryAccounts(iterations=64)  # a low count keeps the tests fast
    for name, password in PASSWORDS.items():
        accounts.add(name, password)
    listen = Listen(host="127.0.0.1", port=0, tls_port=0, data_dir=tmp_path)
    return XmppServer(Policy(DOMAIN, **rules), accounts, listen)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[XmppServer]:
    xmpp = make_server(tmp_path)
    await xmpp.start()
    yield xmpp
    await xmpp.close()


class Client(slixmpp.ClientXMPP):
    """A slixmpp client whose outcomes are futures to await, not callbacks."""

    def __init__(self, jid: str, password: str) -> None:
        super().__init__(jid, password)
        loop = asyncio.get_running_loop()
        self.started: asyncio.Future[None] = loop.create_future()
        self.disconnected: asyncio.Future[Any] = loop.create_future()
        self.stream_errors: list[str] = []
        self.add_event_handler("session_start", lambda _: _settle(self.started, None))
        self.add_event_handler("failed_all_auth", lambda _: _fail(self.started, "auth failed"))
        self.add_event_handler("disconnected", lambda why: _settle(self.disconnected, why))
        self.add_event_handler("stream_error", lambda e: self.stream_errors.append(e["condition"]))

    def plaintext(self) -> Client:
        # LAB-NOTES: what slixmpp needs to log in without TLS.
        self.enable_starttls = False
        self.enable_direct_tls = False
        self.enable_plaintext = True
        self.plugin["feature_mechanisms"].unencrypted_scram = True
        return self

    def trusting(self, certificate: Path | None, *, direct: bool = False) -> Client:
        assert certificate is not None
        self.ca_certs = certificate
        self.enable_plaintext = False
        self.enable_starttls = not direct
        self.enable_direct_tls = direct
        return self

    def tls_version(self) -> str | None:
        assert self.transport is not None
        ssl_object = self.transport.get_extra_info("ssl_object")
        return None if ssl_object is None else str(ssl_object.version())


def _settle(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


def _fail(future: asyncio.Future[Any], why: str) -> None:
    if not future.done():
        future.set_exception(RuntimeError(why))


async def login(client: Client, port: int) -> Client:
    client.connect("127.0.0.1", port)
    await asyncio.wait_for(client.started, 5)
    return client


async def leave(*clients: Client) -> None:
    for client in clients:
        if not client.disconnected.done():
            client.disconnect()
        await asyncio.wait_for(client.disconnected, 5)


def answer_connection_requests(cpe: Client) -> list[ET.Element]:
    """Have *cpe* answer connection requests `result`, as a device does; returns what came."""
    received: list[ET.Element] = []

    def on_request(iq: Any) -> None:
        received.append(iq.xml)
        iq.reply().send()

    xpath = f"{{jabber:client}}iq/{{{CONN_REQ_NS}}}connectionRequest"
    cpe.register_handler(Callback("connection request", MatchXPath(xpath), on_request))
    return received


async def send_connection_request(acs: Client, xml: str = CONN_REQ) -> Any:
    return await acs.Iq(xml=ET.fromstring(xml)).send(timeout=5)


async def round_trip(server: XmppServer, acs: Client, cpe: Client) -> None:
    received = answer_connection_requests(cpe)
    reply = await send_connection_request(acs)
    assert reply["type"] == "result" and reply["id"] == "cr1"
    assert str(reply["from"]) == "cpe-0001@xmpp.example/cwmp"
    (request,) = received
    assert request.get("from") == "acs@xmpp.example/knock"
    payload = request.find(f"{{{CONN_REQ_NS}}}connectionRequest")
    assert payload is not None
    assert payload.findtext(f"{{{CONN_REQ_NS}}}username") == "CR username"
    assert payload.findtext(f"{{{CONN_REQ_NS}}}password") == "CR password"


async def test_connection_request_round_trip_in_the_clear(server: XmppServer) -> None:
    acs = await login(Client("acs@xmpp.example/knock", PASSWORDS["acs"]).plaintext(), server.port)
    cpe = await login(
        Client("cpe-0001@xmpp.example/cwmp", PASSWORDS["cpe-0001"]).plaintext(), server.port
    )
    assert cpe.tls_version() is None
    await round_trip(server, acs, cpe)
    stats = server.stats
    assert stats.connections == stats.authenticated == stats.bound == 2
    assert stats.stanzas_routed == 2  # the request and its result
    await leave(acs, cpe)


async def test_connection_request_round_trip_over_starttls(server: XmppServer) -> None:
    acs = await login(
        Client("acs@xmpp.example/knock", PASSWORDS["acs"]).trusting(server.ca_file),
        server.port,
    )
    cpe = await login(
        Client("cpe-0001@xmpp.example/cwmp", PASSWORDS["cpe-0001"]).trusting(server.ca_file),
        server.port,
    )
    assert cpe.tls_version() in ("TLSv1.2", "TLSv1.3")
    await round_trip(server, acs, cpe)
    await leave(acs, cpe)


async def test_direct_tls_on_the_second_port(server: XmppServer) -> None:
    assert server.tls_port is not None
    cpe = Client("cpe-0001@xmpp.example/cwmp", PASSWORDS["cpe-0001"])
    await login(cpe.trusting(server.ca_file, direct=True), server.tls_port)
    assert cpe.tls_version() in ("TLSv1.2", "TLSv1.3")
    await leave(cpe)


async def test_an_iq_to_an_offline_device_gets_service_unavailable(server: XmppServer) -> None:
    acs = await login(Client("acs@xmpp.example/knock", PASSWORDS["acs"]).plaintext(), server.port)
    with pytest.raises(IqError) as caught:
        await send_connection_request(acs)
    error = caught.value.iq
    assert error["from"] == "cpe-0001@xmpp.example/cwmp"
    assert error["error"]["type"] == "cancel"
    assert error["error"]["condition"] == "service-unavailable"
    bare = CONN_REQ.replace('to="cpe-0001@xmpp.example/cwmp"', 'to="cpe-0002@xmpp.example"')
    with pytest.raises(IqError) as caught:
        await send_connection_request(acs, bare)
    assert caught.value.iq["error"]["condition"] == "service-unavailable"
    assert server.stats.stanza_errors == {"service-unavailable": 2}
    await leave(acs)


async def test_a_wrong_password_fails_authentication(server: XmppServer) -> None:
    cpe = Client("cpe-0001@xmpp.example/cwmp", "not-the-password").plaintext()
    cpe.connect("127.0.0.1", server.port)
    with pytest.raises(RuntimeError, match="auth failed"):
        await asyncio.wait_for(cpe.started, 5)
    assert server.stats.auth_failures == {"not-authorized": 1}
    assert server.stats.authenticated == 0
    await leave(cpe)


async def test_plain_is_refused_in_the_clear_unless_allowed(tmp_path: Path) -> None:
    strict = make_server(tmp_path)
    await strict.start()
    raw = await RawClient.open(strict.port)
    features = await raw.start()
    assert b"PLAIN" not in features
    await raw.send(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
                   b"AGNwZS0wMDAxAGNwZS0wMDAxLXB3</auth>")  # fmt: skip
    failure = await raw.stanza()
    assert failure.find("{urn:ietf:params:xml:ns:xmpp-sasl}encryption-required") is not None
    raw.close()
    await strict.close()
    lenient = make_server(tmp_path, allow_plain_without_tls=True)
    await lenient.start()
    cpe = Client("cpe-0001@xmpp.example/cwmp", PASSWORDS["cpe-0001"]).plaintext()
    cpe.plugin["feature_mechanisms"].unencrypted_plain = True
    cpe.plugin["feature_mechanisms"].use_mech = "PLAIN"
    await login(cpe, lenient.port)
    await leave(cpe)
    await lenient.close()


async def test_a_forged_from_is_rewritten(server: XmppServer) -> None:
    evil = await login(
        Client("cpe-0002@xmpp.example/evil", PASSWORDS["cpe-0002"]).plaintext(), server.port
    )
    cpe = await login(
        Client("cpe-0001@xmpp.example/cwmp", PASSWORDS["cpe-0001"]).plaintext(), server.port
    )
    received = answer_connection_requests(cpe)
    reply = await send_connection_request(evil)  # claims to come from the ACS
    assert reply["type"] == "result"
    (request,) = received
    assert request.get("from") == "cpe-0002@xmpp.example/evil"
    await leave(evil, cpe)


async def test_a_second_login_to_the_same_full_jid_replaces_the_first(
    server: XmppServer,
) -> None:
    first = await login(
        Client("cpe-0001@xmpp.example/cwmp", PASSWORDS["cpe-0001"]).plaintext(), server.port
    )
    second = await login(
        Client("cpe-0001@xmpp.example/cwmp", PASSWORDS["cpe-0001"]).plaintext(), server.port
    )
    await asyncio.wait_for(first.disconnected, 5)
    assert first.stream_errors == ["conflict"]
    assert server.stats.stream_errors == {"conflict": 1}
    acs = await login(Client("acs@xmpp.example/knock", PASSWORDS["acs"]).plaintext(), server.port)
    await round_trip(server, acs, second)
    assert list(server.sessions) == [
        Jid("cpe-0001", DOMAIN, "cwmp"),
        Jid("acs", DOMAIN, "knock"),
    ]
    await leave(second, acs)


def on_ping(client: Client, answer: bool) -> asyncio.Future[None]:
    """Settled when the server pings *client*, which answers only if told to."""
    pinged: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def handle(iq: Any) -> None:
        _settle(pinged, None)
        if answer:
            iq.reply().send()

    xpath = "{jabber:client}iq/{urn:xmpp:ping}ping"
    client.register_handler(Callback("server ping", MatchXPath(xpath), handle))
    return pinged


async def test_a_silent_connection_is_pinged_then_dropped(tmp_path: Path) -> None:
    xmpp = make_server(tmp_path, ping_interval=0.2, ping_timeout=0.5)
    await xmpp.start()
    clients = []
    for name in ("cpe-0001", "cpe-0002"):
        client = Client(f"{name}@xmpp.example/cwmp", PASSWORDS[name]).plaintext()
        client.whitespace_keepalive = False
        clients.append(await login(client, xmpp.port))
    dead, lively = clients
    dead_pinged, lively_pinged = on_ping(dead, answer=False), on_ping(lively, answer=True)
    await asyncio.wait_for(asyncio.gather(dead_pinged, lively_pinged), 5)
    await asyncio.wait_for(dead.disconnected, 5)
    assert dead.stream_errors == ["connection-timeout"]
    assert list(xmpp.sessions) == [Jid("cpe-0002", DOMAIN, "cwmp")]  # it answered its ping
    await leave(lively)
    await xmpp.close()


class RawClient:
    """Bytes over a socket, for what no well-behaved library would send."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.parser = StreamParser()
        self.events: list[StreamEvent] = []

    @classmethod
    async def open(cls, port: int, context: ssl.SSLContext | None = None) -> RawClient:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=context, server_hostname=DOMAIN if context else None
        )
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def event(self) -> StreamEvent:
        while not self.events:
            data = await asyncio.wait_for(self.reader.read(65536), 5)
            if not data:
                raise EOFError("the server closed the connection")
            self.events += self.parser.feed(data)
        return self.events.pop(0)

    async def stanza(self) -> Any:
        event = await self.event()
        assert isinstance(event, Stanza), event
        return event.element

    async def start(self) -> bytes:
        """Open a stream; returns the features, serialized."""
        await self.send(stream_header(to=DOMAIN))
        assert isinstance(await self.event(), StreamOpened)
        return bytes(etree.tostring(await self.stanza()))

    async def stream_error(self) -> str:
        """The condition of the stream error the server ends the stream with."""
        event = await self.event()
        if isinstance(event, StreamOpened):
            event = await self.event()
        assert isinstance(event, Stanza), event
        assert event.element.tag == "{http://etherx.jabber.org/streams}error"
        condition = event.element[0].tag
        assert isinstance(condition, str) and condition.startswith(f"{{{STREAM_ERRORS}}}")
        assert await self.event() == StreamClosed()
        assert await self.reader.read() == b""  # then the server hangs up
        return condition.split("}")[1]

    def close(self) -> None:
        self.writer.close()


@pytest.mark.parametrize(
    ("data", "condition"),
    [
        (b"<message><body></message>", "not-well-formed"),
        (b"<message><body>&boom;</body></message>", "not-well-formed"),
        (b"<message><!-- hidden --></message>", "restricted-xml"),
        (b"<message><body>" + b"x" * 70_000 + b"</body></message>", "policy-violation"),
        (b"<a>" * 40, "policy-violation"),
        (b"<iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>", "not-authorized"),
    ],
)
async def test_bad_input_gets_its_stream_error_and_others_are_served(
    server: XmppServer, data: bytes, condition: str
) -> None:
    acs = await login(Client("acs@xmpp.example/knock", PASSWORDS["acs"]).plaintext(), server.port)
    cpe = await login(
        Client("cpe-0001@xmpp.example/cwmp", PASSWORDS["cpe-0001"]).plaintext(), server.port
    )
    raw = await RawClient.open(server.port)
    await raw.start()
    await raw.send(data)
    assert await raw.stream_error() == condition
    raw.close()
    assert server.stats.stream_errors == {condition: 1}
    await round_trip(server, acs, cpe)  # the connections that were there go on
    await leave(acs, cpe)
    late = await login(Client("acs@xmpp.example/late", PASSWORDS["acs"]).plaintext(), server.port)
    await leave(late)  # and the next client is served


@pytest.mark.parametrize(
    ("data", "condition"),
    [
        (b"<?xml version='1.0'?><!DOCTYPE stream [<!ENTITY x 'y'>]>", "restricted-xml"),
        (stream_header(to="elsewhere.example"), "host-unknown"),
        (b"\x00\x01 not xml", "bad-format"),
    ],
)
async def test_bad_stream_openings(server: XmppServer, data: bytes, condition: str) -> None:
    raw = await RawClient.open(server.port)
    await raw.send(data)
    assert await raw.stream_error() == condition
    raw.close()
    cpe = await login(
        Client("cpe-0001@xmpp.example/cwmp", PASSWORDS["cpe-0001"]).plaintext(), server.port
    )
    await leave(cpe)


async def test_a_broken_tls_handshake_harms_no_one(server: XmppServer) -> None:
    assert server.tls_port is not None
    raw = await RawClient.open(server.tls_port)
    await raw.send(b"\x16\x03\x01\x00\x05hello, not TLS")
    assert await raw.reader.read() == b""
    raw.close()
    assert server.stats.tls_failures == 1
    cpe = Client("cpe-0001@xmpp.example/cwmp", PASSWORDS["cpe-0001"])
    await login(cpe.trusting(server.ca_file, direct=True), server.tls_port)
    await leave(cpe)


async def test_accounts_may_be_looked_up_asynchronously(tmp_path: Path) -> None:
    credentials = ScramCredentials.from_password("async-pw", iterations=64)
    asked: asyncio.Queue[str] = asyncio.Queue()
    store_answers = asyncio.Event()

    async def lookup(username: str) -> ScramCredentials | None:
        await asked.put(username)
        await store_answers.wait()  # a store answering only when the test lets it
        return credentials if username == "cpe-0001" else None

    listen = Listen(host="127.0.0.1", port=0, tls_port=None, data_dir=tmp_path)
    xmpp = XmppServer(Policy(DOMAIN), lookup, listen)
    await xmpp.start()
    client = Client("CPE-0001@xmpp.example/cwmp", "async-pw").plaintext()
    logging_in = asyncio.create_task(login(client, xmpp.port))
    assert await asyncio.wait_for(asked.get(), 10) == "cpe-0001"
    assert xmpp.stats.authenticated == 0  # waiting on the store, not answering without it
    store_answers.set()
    cpe = await logging_in
    assert asked.empty() and xmpp.stats.authenticated == 1
    await leave(cpe)
    await xmpp.close()


async def test_shutdown_ends_every_stream(tmp_path: Path) -> None:
    xmpp = make_server(tmp_path)
    await xmpp.start()
    cpe = await login(
        Client("cpe-0001@xmpp.example/cwmp", PASSWORDS["cpe-0001"]).plaintext(), xmpp.port
    )
    await xmpp.close()
    await asyncio.wait_for(cpe.disconnected, 5)
    assert cpe.stream_errors == ["system-shutdown"]
    assert xmpp.stats.connections == 0 and xmpp.stats.connections_total == 1


async def test_a_client_that_stops_reading_is_cut_off(server: XmppServer) -> None:
    acs = await login(Client("acs@xmpp.example/knock", PASSWORDS["acs"]).plaintext(), server.port)
    cpe = await login(
        Client("cpe-0001@xmpp.example/cwmp", PASSWORDS["cpe-0001"]).plaintext(), server.port
    )
    assert cpe.transport is not None
    cpe.transport.pause_reading()
    for _ in range(200):  # 10 MB: more than the socket buffers and the server's 1 MiB allowance
        acs.send_message(mto="cpe-0001@xmpp.example/cwmp", mbody="x" * 50_000)
    # The stanza after the flood finds the stalled device gone, in order, without any waiting.
    with pytest.raises(IqError) as caught:
        await send_connection_request(acs)
    assert caught.value.iq["error"]["condition"] == "service-unavailable"
    assert server.stats.stream_errors == {"resource-constraint": 1}
    cpe.abort()
    await leave(acs)


async def test_a_failing_account_store_ends_the_stream_not_the_server(tmp_path: Path) -> None:
    def lookup(username: str) -> ScramCredentials | None:
        raise ConnectionError("the store is down")

    listen = Listen(host="127.0.0.1", port=0, tls_port=None, data_dir=tmp_path)
    xmpp = XmppServer(Policy(DOMAIN), lookup, listen)
    await xmpp.start()
    cpe = Client("cpe-0001@xmpp.example/cwmp", PASSWORDS["cpe-0001"]).plaintext()
    cpe.connect("127.0.0.1", xmpp.port)
    await asyncio.wait_for(cpe.disconnected, 5)
    assert cpe.stream_errors == ["internal-server-error"]
    await xmpp.close()


async def test_a_given_certificate_is_used_as_is(tmp_path: Path) -> None:
    cert, key = tmp_path / "mine.pem", tmp_path / "mine.key"
    ensure_self_signed(cert, key, [DOMAIN])
    listen = Listen(host="127.0.0.1", port=0, tls_port=None, cert=cert, key=key, data_dir=tmp_path)
    xmpp = XmppServer(Policy(DOMAIN), MemoryAccounts(), listen)
    await xmpp.start()
    assert xmpp.certificate == cert and not (tmp_path / "xmpp-cert.pem").exists()
    await xmpp.close()
