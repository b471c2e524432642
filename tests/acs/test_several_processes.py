"""Several `knock serve` processes on one PostgreSQL database (real processes, a real server):
a device's session may land on any of them, and what one process starts another finishes."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest
from cr_endpoint import CrEndpoint
from scripted_cpe import ScriptedCpe
from test_sessions import next_session_end
from test_udp_connection_requests import MS, DeviceSocket
from test_xmpp_in_serve import log_in

import prom
from knock.config import ConfigError, Settings
from knock.connreq.udp import verify_udp_cr
from knock.cwmp.rpcs import GetParameterValues, GetParameterValuesResponse, ParameterValueStruct
from knock.server import start
from knock.store import Store
from knock.stun.codec import MessageType, binding_request, parse
from knock.vocab import CrMethod, CrOutcome
from serve_process import Serve, children, free_udp_port, gone
from serve_support import loopback_settings

UPTIME = "Device.DeviceInfo.UpTime"
VERSION = "Device.DeviceInfo.SoftwareVersion"
CR_URL = "Device.ManagementServer.ConnectionRequestURL"


def gpv(*names: str) -> dict[str, object]:
    return {"name": "getParameterValues", "parameterNames": list(names)}


def answer_to(names: list[str]) -> GetParameterValuesResponse:
    return GetParameterValuesResponse([ParameterValueStruct(n, "7", "xsd:string") for n in names])


@pytest.fixture
async def two(pg_url: str) -> AsyncIterator[tuple[Serve, Serve]]:
    a = Serve(pg_url, "--cr-provision", "random", "--cr-session-wait", "5")
    b = Serve(pg_url, "--cr-provision", "random", "--cr-session-wait", "5")
    try:
        await a.start()
        await b.start()
        yield a, b
    finally:
        await a.stop()
        await b.stop()


async def bootstrap(cpe: ScriptedCpe) -> dict[str, str]:
    """The first session, in which the ACS sets the device's connection-request credentials."""
    await cpe.inform("0 BOOTSTRAP", "1 BOOT")
    sent, last = await cpe.accept_provisioning(await cpe.empty())
    assert last.status == 204
    return sent


async def test_a_task_queued_on_one_process_runs_in_a_session_on_the_other(
    two: tuple[Serve, Serve], pg_url: str
) -> None:
    a, b = two
    async with ScriptedCpe(a.url) as on_a, ScriptedCpe(b.url) as on_b:
        await bootstrap(on_a)
        task_id = await a.post_task(on_a.device_id, gpv(UPTIME))
        await on_b.inform("2 PERIODIC")
        step = await on_b.empty()
        assert step.envelope is not None and step.envelope.body == GetParameterValues([UPTIME])
        step = await on_b.answer(step, answer_to([UPTIME]))
        assert step.status == 204
        await on_a.inform("2 PERIODIC")  # and back on the first: nothing left to run
        assert (await on_a.empty()).status == 204
    store = await Store.open(pg_url)
    try:
        latest, on_b_session, first = await store.list_sessions(on_a.device_id)
        task = await store.get_task(task_id)
    finally:
        await store.close()
    assert task is not None and (task.status, task.session_id) == ("done", on_b_session.id)
    assert task.result == [[UPTIME, "7", "xsd:string"]]
    assert [s.outcome for s in (latest, on_b_session, first)] == ["ok", "ok", "ok"]
    assert on_b_session.events == ["2 PERIODIC"]


async def test_a_connection_request_from_one_process_is_delivered_by_a_session_on_the_other(
    two: tuple[Serve, Serve], pg_url: str
) -> None:
    """A's dispatcher sends the request; the device informs B; B's announcements reach A's
    waiting NBI requests through PostgreSQL."""
    a, b = two
    endpoint = await CrEndpoint().start()
    try:
        async with ScriptedCpe(a.url) as on_a, ScriptedCpe(b.url) as on_b:
            on_a.params[CR_URL] = on_b.params[CR_URL] = (endpoint.url, "xsd:string")
            sent = await bootstrap(on_a)
            endpoint.username = sent["Device.ManagementServer.ConnectionRequestUsername"]
            endpoint.password = sent["Device.ManagementServer.ConnectionRequestPassword"]

            async def session_on_b() -> None:
                await on_b.inform("6 CONNECTION REQUEST")
                step = await on_b.empty()
                while step.envelope is not None:
                    request = step.envelope.body
                    assert isinstance(request, GetParameterValues), request
                    step = await on_b.answer(step, answer_to(request.parameter_names))
                assert step.status == 204

            endpoint.on_accepted = session_on_b
            device = on_a.device_id
            async with aiohttp.ClientSession() as http:
                async with http.post(f"{a.nbi_url}/devices/{device}/connection-request") as r:
                    assert r.status == 200, await r.text()
                    report = await r.json()
                async with http.post(
                    f"{a.nbi_url}/devices/{device}/tasks",
                    params={"connection_request": "", "timeout": "10000"},
                    json=gpv(VERSION),
                ) as r:
                    assert r.status == 200, await r.text()
                    task = await r.json()
    finally:
        await endpoint.close()
    assert report["outcome"] == "delivered" and report["method"] == "http", report
    assert task["status"] == "done"
    store = await Store.open(pg_url)
    try:
        sessions = await store.list_sessions(device)
        attempts = await store.list_cr_attempts(device)
    finally:
        await store.close()
    assert [s.events for s in sessions] == [
        ["6 CONNECTION REQUEST"],
        ["6 CONNECTION REQUEST"],
        ["0 BOOTSTRAP", "1 BOOT"],
    ]
    assert [(c.method, c.outcome) for c in attempts] == [("http", "delivered")] * 2


async def test_a_task_interrupted_by_kill_9_runs_once_in_the_other_process(
    two: tuple[Serve, Serve], pg_url: str
) -> None:
    a, b = two
    async with ScriptedCpe(a.url) as on_a, ScriptedCpe(b.url) as on_b:
        await bootstrap(on_a)
        interrupted = await b.post_task(on_a.device_id, gpv(UPTIME))
        queued = await b.post_task(on_a.device_id, gpv(VERSION))
        await on_a.inform("2 PERIODIC")
        step = await on_a.empty()
        assert step.envelope is not None and step.envelope.body == GetParameterValues([UPTIME])

        a.kill9()  # with the first task sent and unanswered
        assert await a.wait() == -signal.SIGKILL

        await on_b.inform("1 BOOT")
        asked = []
        step = await on_b.empty()
        while step.envelope is not None:
            request = step.envelope.body
            assert isinstance(request, GetParameterValues)
            asked.append(request.parameter_names)
            step = await on_b.answer(step, answer_to(request.parameter_names))
        assert step.status == 204
    assert asked == [[UPTIME], [VERSION]]  # each once
    store = await Store.open(pg_url)
    try:
        on_b_session, killed, first = await store.list_sessions(on_a.device_id)
        tasks = [await store.get_task(t) for t in (interrupted, queued)]
    finally:
        await store.close()
    assert (killed.outcome, on_b_session.outcome, first.outcome) == ("superseded", "ok", "ok")
    assert [(t.status, t.session_id) for t in tasks if t is not None] == [
        ("done", on_b_session.id),
        ("done", on_b_session.id),
    ]


async def test_knock_serve_workers_share_the_ports_and_restart_a_killed_worker(
    pg_url: str,
) -> None:
    serve = Serve(
        pg_url, "--workers", "2", "--stun-port", str(free_udp_port()), ready_line=b"Knock: 2 worker"
    )
    await serve.start()
    try:
        pids = [int(p) for p in re.findall(rb"\d+", serve.output[-1].split(b"pids")[1])]
        assert len(pids) == 2 and serve.proc is not None and serve.proc.pid not in pids

        async def one_device(serial: str) -> None:
            # Each session on a new connection: the kernel picks a worker for each.
            async with ScriptedCpe(serve.url, serial=serial) as cpe:
                await cpe.inform("1 BOOT")
                assert (await cpe.empty()).status == 204
            task_id = await serve.post_task(cpe.device_id, gpv(UPTIME))
            async with ScriptedCpe(serve.url, serial=serial) as cpe:
                await cpe.inform("2 PERIODIC")
                step = await cpe.empty()
                assert step.envelope is not None
                assert (await cpe.answer(step, answer_to([UPTIME]))).status == 204
            assert (await serve.task(task_id))["status"] == "done"

        await asyncio.gather(*(one_device(f"W{n}") for n in range(8)))
        os.kill(pids[1], signal.SIGKILL)
        while not gone(pids[1]):  # noqa: ASYNC110 - /proc has no event to wait for
            await asyncio.sleep(0.05)  # a dying worker may still take connections, then reset them
        # The other worker serves alone until the supervisor has started a new one.
        await asyncio.gather(*(one_device(f"K{n}") for n in range(4)))
        while len(workers := children(serve.proc.pid)) < 2 or pids[1] in workers:  # noqa: ASYNC110 - /proc has no event to wait for
            await asyncio.sleep(0.1)
        assert pids[0] in workers
        await asyncio.gather(*(one_device(f"R{n}") for n in range(4)))
    finally:
        await serve.stop()
    assert await serve.wait() == 0


@pytest.mark.parametrize(
    ("updates", "message"),
    [
        ({"workers": 2}, "SQLite serves one process"),
        ({"workers": 2, "store_url": "postgresql://h/db", "cwmp_port": 0}, "fixed ports"),
        ({"workers": 2, "store_url": "postgresql://h/db", "xmpp_port": 0}, "fixed ports"),
        ({"workers": 0}, "give 1 or more"),
    ],
)
def test_workers_that_cannot_work_are_refused(updates: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings().with_updates(updates)


async def test_a_udp_request_from_one_process_uses_the_binding_another_process_learned(
    pg_url: str, tmp_path: Path
) -> None:
    """The device is provisioned by A and keeps its NAT binding alive through B's STUN server,
    which knows its STUN password only from the store; A sends the request to the binding B
    stored, and hears of the Inform B receives. (Two servers in this process: each has its own
    store connections, STUN server and hub; only the database and its notifications join them.)"""
    base = replace(
        loopback_settings(tmp_path),
        store_url=pg_url,
        xmpp_enable=False,
        cr_provision="random",
        cr_session_wait=5.0,
        udp_cr_interval=0.05,
    )
    a = await start(base)
    b = await start(base)
    loop = asyncio.get_running_loop()
    transport, device = await loop.create_datagram_endpoint(
        DeviceSocket, local_addr=("127.0.0.1", 0)
    )
    try:
        assert a.stun is not None and b.stun is not None
        async with ScriptedCpe(a.acs_url) as on_a, ScriptedCpe(b.acs_url) as on_b:
            on_a.params[f"{MS}STUNEnable"] = ("0", "xsd:boolean")
            on_a.params[CR_URL] = ("http://127.0.0.1:9/unreachable", "xsd:string")
            sent = await bootstrap(on_a)
            user, password = sent[f"{MS}STUNUsername"], sent[f"{MS}STUNPassword"]
            stun_b = ("127.0.0.1", b.stun.address[1])
            answers = []
            while not answers or answers[-1] != MessageType.BINDING_RESPONSE:
                # As a CPE does after a 401: B looks the password up meanwhile.
                signed = binding_request(
                    os.urandom(16),
                    username=user,
                    password=password,
                    connection_request_binding=True,
                )
                answers.append(parse(await device.exchange(signed, stun_b)).kind)
                assert len(answers) < 50, answers
                if answers[-1] != MessageType.BINDING_RESPONSE:
                    await asyncio.sleep(0.1)  # a CPE's retry is paced too
            assert answers[0] == MessageType.BINDING_ERROR_RESPONSE  # B had not cached it
            own_port = transport.get_extra_info("sockname")[1]
            learned = ("127.0.0.1", own_port)
            # B stores the binding in a task of its own; no event tells this test when.
            while (await a.store.get_cr_target(on_a.device_id)).stun_binding != learned:  # type: ignore[union-attr]  # noqa: ASYNC110
                await asyncio.sleep(0.02)

            async def device_side() -> None:
                datagram, source = await asyncio.wait_for(device.received.get(), 5)
                assert source[1] == a.stun.address[1]  # type: ignore[union-attr]
                verify_udp_cr(
                    datagram,
                    sent[f"{MS}ConnectionRequestUsername"],
                    sent[f"{MS}ConnectionRequestPassword"],
                    last_ts=None,
                    last_id=None,
                )
                await on_b.inform("6 CONNECTION REQUEST")
                assert (await on_b.empty()).status == 204

            session = asyncio.create_task(device_side())
            result = await a.dispatcher.reach(on_a.device_id, via=CrMethod.UDP)
            await session
        assert result.outcome is CrOutcome.DELIVERED, result
        [attempt] = await a.store.list_cr_attempts(on_a.device_id)
        assert (attempt.method, attempt.outcome) == ("udp", "delivered")
    finally:
        transport.close()
        await a.close()
        await b.close()


async def test_every_process_logs_in_to_the_xmpp_server_with_its_own_resource(
    pg_url: str, tmp_path: Path
) -> None:
    """Worker 0 runs the XMPP server; each process's ACS client logs in to it as acs@domain with
    its own resource and the password the first process stored, which later ones keep."""
    base = replace(loopback_settings(tmp_path), store_url=pg_url)
    first = await start(base)
    assert first.xmpp is not None
    others = replace(base, xmpp_port=first.xmpp.port)
    second = await start(others, worker=1)
    third = await start(others, worker=2)
    try:
        assert second.xmpp is None and third.xmpp is None  # one server, in worker 0
        bound = []
        for running in (first, second, third):
            assert running.xmpp_requester is not None
            bound.append((await running.xmpp_requester.wait_connected()).jid)
        assert [jid.split("/")[0] for jid in bound] == ["acs@knock.lab"] * 3
        assert [jid.rsplit("-", 1)[1] for jid in bound] == ["0", "1", "2"]
        assert sorted(str(jid) for jid in first.xmpp.sessions) == sorted(bound)
        # The account's password is still the one the first process made and all of them use,
        # so any of them can log in again after a lost connection.
        shared = await third.store.shared_secret("acs_xmpp_password", lambda: "not made again")
        assert shared != "not made again"
        assert first.ca is not None
        assert await log_in(first.xmpp.port, "acs@knock.lab/check", shared, first.ca.cert_path)
    finally:
        for running in (third, second, first):
            await running.close()


async def test_a_session_the_device_left_for_another_process_ends_here_at_once(
    pg_url: str, tmp_path: Path
) -> None:
    """Not after the session timeout: until then this process would take the device for busy,
    and give tasks queued here to a session that is gone."""
    base = replace(
        loopback_settings(tmp_path), store_url=pg_url, xmpp_enable=False, cr_provision="off"
    )
    a = await start(base)
    b = await start(base)
    try:
        async with ScriptedCpe(a.acs_url) as on_a, ScriptedCpe(b.acs_url) as on_b:
            with a.hub.subscribe(on_a.device_id) as announcements:
                await on_a.inform("1 BOOT")  # and then silence: the device lost its connection
                assert a.acs.in_session(on_a.device_id)
                await on_b.inform("2 PERIODIC")
                # A's reaper ends it once it has heard of B's session (it looks once a second),
                # long before the session timeout.
                ended = await next_session_end(announcements)
            assert not a.acs.in_session(on_a.device_id)
            assert (await on_b.empty()).status == 204
        on_b_session, on_a_session = await a.store.list_sessions(on_a.device_id)
        assert (ended.session_id, ended.outcome) == (on_a_session.id, "superseded")
        assert (on_a_session.outcome, on_b_session.outcome) == ("superseded", "ok")
        assert not a.hub.in_remote_session(on_a.device_id)  # B announced its session's end
    finally:
        await a.close()
        await b.close()


async def test_each_worker_serves_its_own_metrics_on_metrics_port_plus_its_index(
    pg_url: str,
) -> None:
    """With --workers, the NBI's /metrics answers for whichever worker takes the connection;
    --metrics-port gives each worker an address of its own, so the scrapes add up."""
    base = free_port_pair()
    serve = Serve(
        pg_url, "--workers", "2", "--stun-port", str(free_udp_port()), "--metrics-port",
        str(base), ready_line=b"Knock: 2 worker",
    )  # fmt: skip
    await serve.start()
    try:
        banner = b"".join(serve.output).decode()
        for index in (0, 1):
            assert f"Metrics of worker {index}: http://127.0.0.1:{base + index}/metrics" in banner
        for n in range(8):  # each on a new connection: the kernel picks a worker for each
            async with ScriptedCpe(serve.url, serial=f"M{n}") as cpe:
                await cpe.inform("1 BOOT")
                assert (await cpe.empty()).status == 204
        pages = []
        async with aiohttp.ClientSession() as http:
            for port in (base, base + 1):
                async with http.get(f"http://127.0.0.1:{port}/metrics") as r:
                    assert r.status == 200
                    pages.append(prom.parse(await r.text()))
                async with http.get(f"http://127.0.0.1:{port}/devices") as r:
                    assert r.status == 404  # the metrics and nothing else
    finally:
        await serve.stop()
    started = [prom.value(page, "knock_sessions_started_total") for page in pages]
    assert sum(started) == 8, started
    ended = [prom.value(page, "knock_sessions_ended_total", outcome="ok") for page in pages]
    assert sum(ended) == 8, ended


def free_port_pair() -> int:
    """A TCP port whose next one is free too (worker 0's and worker 1's metrics)."""
    for _attempt in range(20):
        with socket.socket() as first, socket.socket() as second:
            first.bind(("127.0.0.1", 0))
            port = int(first.getsockname()[1])
            try:
                second.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            return port
    raise RuntimeError("no two consecutive free ports on 127.0.0.1")
