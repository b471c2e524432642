"""The asyncio XMPP client over real sockets on 127.0.0.1, against Knock's built-in server and
a real Prosody: logging in with and without TLS, IQs both ways, back-off and reconnection."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from knock.xmpp.client import ClientConfig, IqRequest, NotOnline, StanzaError, TlsPolicy
from knock.xmpp.client_conn import (
    ConnectionLost,
    ConnState,
    ServerRetry,
    Status,
    XmppClient,
)
from xmpp_servers import KnockXmpp, Prosody, account, running_knock, running_prosody

Server = KnockXmpp | Prosody
CLEAR = ClientConfig(tls=TlsPolicy.NEVER)


@pytest.fixture(scope="module")
def prosody() -> Iterator[Prosody]:
    with running_prosody() as server:
        yield server


@pytest.fixture(params=["knock", "prosody"])
async def server(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Server]:
    if request.param == "prosody":
        yield request.getfixturevalue("prosody")
        return
    async with running_knock(tmp_path) as knock:
        yield knock


@pytest.fixture
async def knock(tmp_path: Path) -> AsyncIterator[KnockXmpp]:
    async with running_knock(tmp_path) as server:
        yield server


class Watcher:
    """Every status a client went through, in order, to wait on."""

    def __init__(self) -> None:
        self.seen: list[Status] = []
        self._read = 0
        self._changed = asyncio.Event()

    def __call__(self, client: XmppClient, status: Status) -> None:
        self.seen.append(status)
        self._changed.set()

    async def next(self, state: ConnState) -> Status:
        """The next status in *state*, skipping the others."""
        async with asyncio.timeout(10):
            while True:
                while self._read < len(self.seen):
                    status = self.seen[self._read]
                    self._read += 1
                    if status.state is state:
                        return status
                self._changed.clear()
                await self._changed.wait()


class Gate:
    """The back-off's sleep: records each wait, and holds it until the test opens the gate."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self.opened = asyncio.Event()

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        await self.opened.wait()


def trusting(server: Server) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(server.certificate))


def client(server: Server, jid: str, password: str, **options: Any) -> XmppClient:
    options.setdefault("config", CLEAR)
    return XmppClient(jid, password, host=server.host, port=server.port, **options)


async def online(*clients: XmppClient) -> None:
    for each in clients:
        each.start()
    async with asyncio.timeout(10):
        await asyncio.gather(*(each.wait_online() for each in clients))


async def close(*clients: XmppClient) -> None:
    await asyncio.gather(*(each.close() for each in clients))


# --- back-off ---------------------------------------------------------------------------------


def test_tr181_back_off() -> None:
    retry = ServerRetry()  # TR-181's defaults: 60 s, 2000, 30720 s
    waits = [retry.wait(n, lambda: 1.0) for n in range(1, 13)]
    assert waits == [60 * 2**k for k in range(10)] + [30720, 30720]
    assert retry.wait(3, lambda: 0.25) == 60.0
    assert ServerRetry(10, 1500, 100).wait(3, lambda: 1.0) == 22.5
    assert retry.wait(100_000, lambda: 1.0) == 30720  # no overflow however long it fails
    with pytest.raises(ValueError, match="thousandths"):
        ServerRetry(interval_multiplier=2)


# --- logging in -------------------------------------------------------------------------------


async def test_login_in_the_clear_and_with_starttls(server: Server) -> None:
    watcher = Watcher()
    jid, password = account(server)
    clear = client(server, jid, password, on_status=watcher)
    await online(clear)
    assert [s.state for s in watcher.seen] == [ConnState.CONNECTING, ConnState.ONLINE]
    assert clear.status == Status(ConnState.ONLINE, jid=jid, tls=False)
    await close(clear)
    assert clear.status.state is ConnState.CLOSED
    secure = client(server, jid, password, config=ClientConfig(), ssl_context=trusting(server))
    await online(secure)
    assert secure.status == Status(ConnState.ONLINE, jid=jid, tls=True)
    await close(secure)


async def test_the_server_picks_the_resource_when_none_is_asked(server: Server) -> None:
    jid, password = account(server)
    bare = jid.partition("/")[0]
    anonymous = client(server, bare, password)
    await online(anonymous)
    bound, _, resource = anonymous.status.jid.partition("/")
    assert bound == bare and resource
    await close(anonymous)


async def test_direct_tls(knock: KnockXmpp) -> None:
    assert knock.server is not None and knock.server.tls_port is not None
    jid, password = account(knock)
    direct = XmppClient(
        jid,
        password,
        host=knock.host,
        port=knock.server.tls_port,
        direct_tls=True,
        ssl_context=trusting(knock),
    )
    await online(direct)
    assert direct.status.tls
    await close(direct)


async def test_an_untrusted_certificate_is_refused_and_retried(knock: KnockXmpp) -> None:
    watcher, gate = Watcher(), Gate()
    jid, password = account(knock)
    stranger = client(
        knock,
        jid,
        password,
        config=ClientConfig(),
        ssl_context=ssl.create_default_context(),  # the system's CAs do not know this server
        on_status=watcher,
        sleep=gate,
        draw=lambda: 0.5,
    )
    stranger.start()
    status = await watcher.next(ConnState.DISCONNECTED)
    assert "TLS failed" in status.reason and "certificate verify failed" in status.reason
    assert status.retry_in == 30.0
    await close(stranger)


async def test_a_wrong_password_backs_off(server: Server) -> None:
    watcher, gate = Watcher(), Gate()
    jid, _ = account(server)
    refused = client(server, jid, "wrong", on_status=watcher, sleep=gate, draw=lambda: 1.0)
    refused.start()
    gate.opened.set()
    failures = [await watcher.next(ConnState.DISCONNECTED) for _ in range(3)]
    assert all(f.reason.startswith("auth-failed: not-authorized") for f in failures)
    assert [f.retry_in for f in failures] == [60.0, 120.0, 240.0]
    await close(refused)


async def test_no_server_and_a_silent_server() -> None:
    watcher, gate = Watcher(), Gate()
    nobody = XmppClient(
        "a@xmpp.example", "pw", host="127.0.0.1", port=1, on_status=watcher, sleep=gate
    )
    nobody.start()
    assert "cannot connect to 127.0.0.1:1" in (await watcher.next(ConnState.DISCONNECTED)).reason
    await close(nobody)

    accepted: list[asyncio.StreamWriter] = []
    silent = await asyncio.start_server(lambda r, w: accepted.append(w), "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    config = ClientConfig(login_timeout=0.2)
    for direct_tls in (False, True):  # silent before the stream, or in the TLS handshake
        watcher = Watcher()
        waiting = XmppClient(
            "a@xmpp.example",
            "pw",
            host="127.0.0.1",
            port=port,
            direct_tls=direct_tls,
            config=config,
            on_status=watcher,
            sleep=Gate(),
        )
        waiting.start()
        lost = await watcher.next(ConnState.DISCONNECTED)
        assert lost.reason == "timeout: not online within 0.2 s"
        await close(waiting)
    for writer in accepted:
        writer.close()
    silent.close()
    await silent.wait_closed()


# --- IQs --------------------------------------------------------------------------------------


async def test_requests_both_ways(server: Server) -> None:
    asked: list[IqRequest] = []

    def device(connection: XmppClient, request: IqRequest) -> None:
        asked.append(request)
        connection.answer(request, StanzaError("auth", "not-autorized", text="misspelled"))

    acs_jid, acs_password = account(server, "knock")
    cpe_jid, cpe_password = account(server)
    other_jid, other_password = account(server)
    acs = client(server, acs_jid, acs_password)
    cpe = client(server, cpe_jid, cpe_password, on_request=device)
    other = client(server, other_jid, other_password)  # no handler: service-unavailable
    await online(acs, cpe, other)
    payload = etree.Element("{urn:example}q", nsmap={None: "urn:example"})  # type: ignore[dict-item]
    answer = await acs.request(cpe_jid, payload, timeout=5)
    assert answer.sender == cpe_jid and answer.error is not None
    assert (answer.error.condition, answer.error.text) == ("not-autorized", "misspelled")
    (request,) = asked
    assert request.sender == acs_jid and request.payload.tag == "{urn:example}q"
    refused = await acs.request(other_jid, etree.Element("{urn:example}q"), timeout=5)
    assert refused.error is not None and refused.error.condition == "service-unavailable"
    pong = await acs.request(None, etree.Element("{urn:xmpp:ping}ping"), timeout=5)
    assert pong.ok
    await close(acs, cpe, other)


async def test_request_timeouts_and_losses(knock: KnockXmpp) -> None:
    acs_jid, acs_password = account(knock, "knock")
    cpe_jid, cpe_password = account(knock)
    acs = client(knock, acs_jid, acs_password, sleep=Gate())
    with pytest.raises(NotOnline):
        await acs.request(cpe_jid, etree.Element("{urn:x}q"), timeout=1)
    arrived = asyncio.Event()
    mute = client(knock, cpe_jid, cpe_password, on_request=lambda c, r: arrived.set())
    await online(acs, mute)
    with pytest.raises(TimeoutError):
        await acs.request(cpe_jid, etree.Element("{urn:x}q"), timeout=0.2)
    arrived.clear()
    pending = asyncio.ensure_future(acs.request(cpe_jid, etree.Element("{urn:x}q"), timeout=30))
    await arrived.wait()
    await knock.stop()
    with pytest.raises(ConnectionLost, match="system-shutdown"):
        await pending
    await close(acs, mute)


# --- staying connected ------------------------------------------------------------------------


async def test_reconnects_after_the_server_restarts(server: Server) -> None:
    watcher, gate = Watcher(), Gate()
    jid, password = account(server)
    device = client(server, jid, password, on_status=watcher, sleep=gate, draw=lambda: 0.5)
    await online(device)
    await server.restart()
    lost = await watcher.next(ConnState.DISCONNECTED)
    assert lost.reason and lost.retry_in == 30.0
    assert not device.online
    gate.opened.set()
    assert (await watcher.next(ConnState.ONLINE)).jid == jid
    assert [s.state for s in watcher.seen] == [
        ConnState.CONNECTING,
        ConnState.ONLINE,
        ConnState.DISCONNECTED,
        ConnState.CONNECTING,
        ConnState.ONLINE,
    ]
    await close(device)
