"""The connection-request listener over real 127.0.0.1 sockets, with simulated devices in sessions
with the scripted ACS, and an aiohttp client that authenticates as an ACS does."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from cpe_support import T0, FakeAcs, FakeClock, MakeCpe, RunCpe

from knock.auth import DigestChallenge, new_cnonce, select_challenge
from knock.cpe.acs_client import AcsClient, AcsReply
from knock.cpe.cr_http import Busy, CrAnswer, CrGate, CrPolicy
from knock.cpe.cr_listener import CrListener
from knock.cpe.device import AcsEndpoint, CpeError, SimulatedCpe, default_client
from knock.cwmp import Inform, ParameterValueStruct, Rpc, SetParameterValues

MS = "Device.ManagementServer."
WAIT = 5.0


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, list[str]]
    body: bytes


async def get(http: aiohttp.ClientSession, url: str, **kwargs: Any) -> Answer:
    async with http.get(url, **kwargs) as response:
        headers: dict[str, list[str]] = {}
        for name, value in response.headers.items():
            headers.setdefault(name, []).append(value)
        return Answer(response.status, headers, await response.read())


async def connection_request(
    http: aiohttp.ClientSession, url: str, username: str, password: str
) -> Answer:
    """GET, answer the Digest challenge as knock.auth's client does, GET again."""
    first = await get(http, url)
    assert first.status == 401, first
    challenge = select_challenge(first.headers["WWW-Authenticate"])
    assert isinstance(challenge, DigestChallenge)  # never Basic: a CPE must demand Digest
    authorization = challenge.authorization(
        "GET", urlsplit(url).path, username, password, cnonce=new_cnonce()
    )
    return await get(http, url, headers={"Authorization": authorization})


def credentials(cpe: SimulatedCpe) -> tuple[str, str]:
    return cpe.model.get(MS + "ConnectionRequestUsername"), cpe.model.get(
        MS + "ConnectionRequestPassword"
    )


def codes(inform: Inform) -> list[str]:
    return [event.event_code for event in inform.events]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def listener() -> AsyncIterator[CrListener]:
    started = CrListener(CrGate(CrPolicy(rate_limit=0)))
    await started.start()
    yield started
    await started.close()


async def test_device_reports_its_own_url_on_the_shared_port(
    make_cpe: MakeCpe, run_cpe: RunCpe, acs: FakeAcs, listener: CrListener
) -> None:
    first, second = make_cpe("SIM1"), make_cpe("SIM2")
    urls = [listener.attach(first), listener.attach(second)]
    assert urls[0] != urls[1]
    assert {urlsplit(url).netloc for url in urls} == {urlsplit(listener.base_url).netloc}
    assert all(urlsplit(url).hostname == "127.0.0.1" for url in urls)
    assert all(len(urlsplit(url).path) > 20 for url in urls)  # hard to guess
    run_cpe(first)
    session = await acs.next_session()
    values = {p.name: p.value for p in session.inform.parameter_list}
    assert values[MS + "ConnectionRequestURL"] == urls[0]
    # It changed since the last Inform, and it is notified actively (TR-069 §3.2.1).
    assert sorted(codes(session.inform)) == ["0 BOOTSTRAP", "1 BOOT", "4 VALUE CHANGE"]


async def test_digest_connection_request_opens_a_session(
    make_cpe: MakeCpe,
    run_cpe: RunCpe,
    acs: FakeAcs,
    listener: CrListener,
    http: aiohttp.ClientSession,
) -> None:
    cpe = make_cpe("SIM1")
    url = listener.attach(cpe)
    run_cpe(cpe)
    await acs.next_session()

    challenge = await get(http, url)
    assert (challenge.status, challenge.body) == (401, b"")
    assert [value.split(",")[1].strip() for value in challenge.headers["WWW-Authenticate"]] == [
        "algorithm=SHA-256",
        "algorithm=MD5",
        "algorithm=MD5-sess",
    ]
    assert "Connection" not in challenge.headers  # the answer comes on the same connection

    answer = await connection_request(http, url, *credentials(cpe))
    assert (answer.status, answer.body) == (200, b"")
    assert answer.headers["Content-Length"] == ["0"]
    assert answer.headers["Connection"] == ["close"]
    session = await acs.next_session()
    assert codes(session.inform) == ["6 CONNECTION REQUEST"]
    assert listener.gate.counts("SIM1") == {CrAnswer.CHALLENGED: 2, CrAnswer.ACCEPTED: 1}


async def test_the_answer_leaves_before_the_session_starts(
    make_cpe: MakeCpe,
    run_cpe: RunCpe,
    acs: FakeAcs,
    listener: CrListener,
    http: aiohttp.ClientSession,
) -> None:
    acs_side: list[socket.socket] = []  # the connection request's socket, once connected
    arrived_first: list[bytes] = []

    def peek_then_connect(endpoint: AcsEndpoint) -> AcsClient:
        # Called as a session starts: whatever the ACS's socket holds was sent before.
        for client in acs_side:
            arrived_first.append(client.recv(1024, socket.MSG_PEEK | socket.MSG_DONTWAIT))
        return default_client(endpoint)

    cpe = make_cpe("SIM1", client_factory=peek_then_connect)
    url = listener.attach(cpe)
    run_cpe(cpe)
    await acs.next_session()
    challenge = select_challenge((await get(http, url)).headers["WWW-Authenticate"])
    assert isinstance(challenge, DigestChallenge)
    path = urlsplit(url).path
    authorization = challenge.authorization("GET", path, *credentials(cpe), cnonce=new_cnonce())
    loop = asyncio.get_running_loop()
    with socket.socket() as client:
        client.setblocking(False)
        await loop.sock_connect(client, (urlsplit(url).hostname, urlsplit(url).port))
        acs_side.append(client)
        request = f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {authorization}\r\n\r\n"
        await loop.sock_sendall(client, request.encode())
        assert codes((await acs.next_session()).inform) == ["6 CONNECTION REQUEST"]
    assert len(arrived_first) == 1
    assert arrived_first[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert arrived_first[0].endswith(b"\r\n\r\n")  # headers only: the body is empty


async def test_wrong_credentials_get_401_and_no_session(
    make_cpe: MakeCpe,
    run_cpe: RunCpe,
    acs: FakeAcs,
    listener: CrListener,
    http: aiohttp.ClientSession,
) -> None:
    cpe = make_cpe("SIM1")
    url = listener.attach(cpe)
    run_cpe(cpe)
    await acs.next_session()
    username, password = credentials(cpe)

    refused = await connection_request(http, url, username, password + "x")
    assert (refused.status, refused.body) == (401, b"")
    assert len(refused.headers["WWW-Authenticate"]) == 3
    assert (await get(http, url, headers={"Authorization": "Digest nonsense"})).status == 401

    assert (await connection_request(http, url, username, password)).status == 200
    assert codes((await acs.next_session()).inform) == ["6 CONNECTION REQUEST"]
    assert cpe.counts.started == 2  # the boot session and the one good request's
    assert listener.gate.counts("SIM1") == {
        CrAnswer.CHALLENGED: 2,
        CrAnswer.BAD_CREDENTIALS: 1,
        CrAnswer.MALFORMED: 1,
        CrAnswer.ACCEPTED: 1,
    }


async def test_other_paths_and_methods(
    make_cpe: MakeCpe, listener: CrListener, http: aiohttp.ClientSession
) -> None:
    url = listener.attach(make_cpe("SIM1"))
    missing = await get(http, url + "x")
    assert (missing.status, missing.body, missing.headers["Connection"]) == (404, b"", ["close"])
    assert (await get(http, listener.base_url + "/")).status == 404
    async with http.post(url, data=b"") as response:
        assert (response.status, response.headers.getall("Allow")) == (405, ["GET"])
    assert listener.gate.totals == {CrAnswer.NOT_FOUND: 2, CrAnswer.METHOD_NOT_ALLOWED: 1}


async def test_credentials_set_by_the_acs_apply_at_once(
    make_cpe: MakeCpe,
    run_cpe: RunCpe,
    acs: FakeAcs,
    listener: CrListener,
    http: aiohttp.ClientSession,
) -> None:
    cpe = make_cpe("SIM1")
    url = listener.attach(cpe)
    old = credentials(cpe)
    acs.scripts.append(
        [
            SetParameterValues(
                [
                    ParameterValueStruct(MS + "ConnectionRequestUsername", "knock-7"),
                    ParameterValueStruct(MS + "ConnectionRequestPassword", "n3w"),
                ],
                "",
            )
        ]
    )
    run_cpe(cpe)
    await acs.next_session()
    assert (await connection_request(http, url, *old)).status == 401
    assert (await connection_request(http, url, "knock-7", "n3w")).status == 200
    assert codes((await acs.next_session()).inform) == ["6 CONNECTION REQUEST"]


async def test_requests_before_the_session_starts_make_one_session(
    make_cpe: MakeCpe,
    run_cpe: RunCpe,
    acs: FakeAcs,
    clock: FakeClock,
    listener: CrListener,
    http: aiohttp.ClientSession,
) -> None:
    cpe = make_cpe("SIM1")
    url = listener.attach(cpe)
    # Not yet running: nothing can start a session between the requests.
    answers = [await connection_request(http, url, *credentials(cpe)) for _ in range(3)]
    assert [(a.status, a.body) for a in answers] == [(200, b"")] * 3
    run_cpe(cpe)
    session = await acs.next_session()
    assert sorted(codes(session.inform)) == [
        "0 BOOTSTRAP",
        "1 BOOT",
        "4 VALUE CHANGE",
        "6 CONNECTION REQUEST",
    ]
    assert await clock.next_timer() == T0 + 300  # idle until the periodic inform: one session
    assert cpe.counts.started == 1
    assert listener.gate.counts("SIM1")[CrAnswer.MERGED] == 2


class HeldClient(AcsClient):
    """Holds a connection-request session after its InformResponse until the test releases it:
    the moment a second request could be swallowed by the Inform that already carries one."""

    def __init__(self, endpoint: AcsEndpoint, informed: asyncio.Event, release: asyncio.Event):
        super().__init__(endpoint.url, username=endpoint.username, password=endpoint.password)
        self._informed = informed
        self._release = release

    async def send(self, rpc: Rpc | None, *, cwmp_ns: str, id: str | None = None) -> AcsReply:
        reply = await super().send(rpc, cwmp_ns=cwmp_ns, id=id)
        if isinstance(rpc, Inform) and "6 CONNECTION REQUEST" in codes(rpc):
            self._informed.set()
            await self._release.wait()
        return reply


@pytest.mark.parametrize("busy", [Busy.REFUSE, Busy.QUEUE])
async def test_a_request_during_a_session(
    make_cpe: MakeCpe,
    run_cpe: RunCpe,
    acs: FakeAcs,
    clock: FakeClock,
    http: aiohttp.ClientSession,
    busy: Busy,
) -> None:
    listener = CrListener(CrGate(CrPolicy(busy=busy, rate_limit=0)))
    await listener.start()
    informed, release = asyncio.Event(), asyncio.Event()
    cpe = make_cpe("SIM1", client_factory=lambda e: HeldClient(e, informed, release))
    url = listener.attach(cpe)
    run_cpe(cpe)
    try:
        await acs.next_session()
        assert (await connection_request(http, url, *credentials(cpe))).status == 200
        async with asyncio.timeout(WAIT):
            await informed.wait()
        assert cpe.in_session
        answers = [await connection_request(http, url, *credentials(cpe)) for _ in range(2)]
        release.set()
        assert codes((await acs.next_session()).inform) == ["6 CONNECTION REQUEST"]
        if busy is Busy.REFUSE:
            assert [(a.status, a.body) for a in answers] == [(503, b"")] * 2
            assert "Retry-After" not in answers[0].headers
            expected = {CrAnswer.CHALLENGED: 3, CrAnswer.ACCEPTED: 1, CrAnswer.BUSY: 2}
        else:
            assert [(a.status, a.body) for a in answers] == [(200, b"")] * 2
            assert codes((await acs.next_session()).inform) == ["6 CONNECTION REQUEST"]
            expected = {CrAnswer.CHALLENGED: 3, CrAnswer.ACCEPTED: 2, CrAnswer.MERGED: 1}
        assert await clock.next_timer() == T0 + 300  # and then idle
        assert cpe.counts.started == (2 if busy is Busy.REFUSE else 3)
        assert listener.gate.counts("SIM1") == expected
    finally:
        await listener.close()


async def test_rate_limit_answers_503_with_retry_after(
    make_cpe: MakeCpe, run_cpe: RunCpe, acs: FakeAcs, http: aiohttp.ClientSession
) -> None:
    now = [T0]
    listener = CrListener(CrGate(CrPolicy(rate_limit=2.0)), clock=lambda: now[0])
    await listener.start()
    try:
        cpe = make_cpe("SIM1")
        url = listener.attach(cpe)
        run_cpe(cpe)
        await acs.next_session()
        assert (await connection_request(http, url, *credentials(cpe))).status == 200
        await acs.next_session()
        now[0] = T0 + 0.5
        limited = await connection_request(http, url, *credentials(cpe))
        assert (limited.status, limited.headers["Retry-After"]) == (503, ["2"])
        now[0] = T0 + 2
        assert (await connection_request(http, url, *credentials(cpe))).status == 200
        assert codes((await acs.next_session()).inform) == ["6 CONNECTION REQUEST"]
    finally:
        await listener.close()


async def test_attach_needs_a_started_listener_and_a_model_with_cr_parameters(
    make_cpe: MakeCpe, tmp_path: Any
) -> None:
    with pytest.raises(RuntimeError, match="start the listener"):
        CrListener().attach(make_cpe("SIM1"))
    model = tmp_path / "bare.json"
    model.write_text(
        '{"name": "bare", "root": "Device.", "objects": {"Device.": {}, '
        '"Device.ManagementServer.": {"parameters": {"URL": {"access": "readWrite"}}}, '
        '"Device.DeviceInfo.": {"parameters": {"SerialNumber": {}}}}}'
    )
    listener = CrListener()
    await listener.start()
    try:
        with pytest.raises(CpeError) as caught:
            listener.attach(make_cpe("SIM2", str(model)))
        assert str(caught.value) == (
            "device SIM2: model bare lacks Device.ManagementServer.ConnectionRequestURL, "
            "Device.ManagementServer.ConnectionRequestUsername, "
            "Device.ManagementServer.ConnectionRequestPassword, which HTTP connection requests "
            "need; add them to its ManagementServer object"
        )
    finally:
        await listener.close()
