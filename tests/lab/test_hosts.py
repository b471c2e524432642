"""Knock on several machines (knock.lab.hosts): two ACS machines of two workers each on one
PostgreSQL, behind HAProxy running contrib/haproxy/knock.cfg, ejabberd for XMPP, and devices
behind a NAT. The tests run in order on one lab; the last kills acs1.

Root and the Debian packages of scripts/prepare-test-host.sh are required (`make test`)."""

from __future__ import annotations

import asyncio
import csv
import io
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import aiohttp
import pytest
from scripted_cpe import ScriptedCpe

import prom
from knock.cwmp.rpcs import GetParameterValues, GetParameterValuesResponse, ParameterValueStruct
from knock.lab import netns
from knock.lab.demo import DemoError
from knock.lab.hosts import GATEWAY_FLEET, LAN_FLEET, MACHINES, Fleet, HostsLab
from knock.nbi.client import NbiClient
from nat_lab import built

T = TypeVar("T")
LAN = LAN_FLEET.device_ids()
GATEWAY = GATEWAY_FLEET.device_ids()[0]
UPTIME = "Device.DeviceInfo.UpTime"
VERSION = "Device.DeviceInfo.SoftwareVersion"
WAIT_S = 20.0  # a safety net for a lost packet; delivery takes well under a second


def gpv(name: str) -> dict[str, Any]:
    return {"name": "getParameterValues", "parameterNames": [name]}


@pytest.fixture(scope="module")
def hosts() -> Iterator[HostsLab]:
    yield from built(HostsLab(), "hosts")


async def nbi(lab: HostsLab, machine: str, call: Callable[[NbiClient], Awaitable[T]]) -> T:
    """call(client of the machine's NBI), made from the balancer's machine on the back network."""

    async def go() -> T:
        async with NbiClient(lab.nbi_url(machine), token=lab.nbi_token) as client:
            return await call(client)

    return await lab.run_coroutine("lb", go)


async def queue_task(lab: HostsLab, machine: str, device: str, task: dict[str, Any]) -> str:
    """Queue a task through the machine's NBI without asking the device to connect."""

    async def go() -> str:
        headers = {"Authorization": f"Bearer {lab.nbi_token}"}
        url = f"{lab.nbi_url(machine)}/devices/{device}/tasks"
        async with aiohttp.ClientSession(headers=headers) as http, http.post(url, json=task) as r:
            assert r.status == 202, await r.text()
            return str((await r.json())["_id"])

    return await lab.run_coroutine("lb", go)


def sessions_by_server(lab: HostsLab) -> dict[str, int]:
    """CWMP connections HAProxy sent to each ACS machine so far (its `stot`)."""
    rows = csv.DictReader(io.StringIO(lab.lb_command("show stat").removeprefix("# ")))
    return {r["svname"]: int(r["stot"]) for r in rows if r["pxname"] == "acs_cwmp"}


async def test_every_device_informs_through_the_balancer(hosts: HostsLab) -> None:
    devices = await nbi(hosts, "acs2", lambda c: c.devices(projection="_id"))
    assert sorted(d["_id"] for d in devices) == sorted([GATEWAY, *LAN])
    served = sessions_by_server(hosts)
    assert served["acs1"] > 0 and served["acs2"] > 0, served  # round robin over both machines


async def test_prometheus_scrapes_each_worker_of_each_machine(hosts: HostsLab) -> None:
    """contrib/knock/knock.toml sets metrics_port 9557: worker N of each machine on 9557 + N."""

    async def scrape_all() -> list[float]:
        started = []
        headers = {"Authorization": f"Bearer {hosts.nbi_token}"}
        async with aiohttp.ClientSession(headers=headers) as http:
            for machine in ("acs1", "acs2"):
                for port in (9557, 9558):
                    url = f"http://{MACHINES[machine]}:{port}/metrics"
                    async with http.get(url) as r:
                        assert r.status == 200, (url, await r.text())
                        samples = prom.parse(await r.text())
                    started.append(prom.value(samples, "knock_sessions_started_total"))
        return started

    started = await hosts.run_coroutine("lb", scrape_all)
    assert sum(started) >= len(LAN) + 1, started  # every device's sessions, counted once


async def test_a_task_queued_through_acs2_runs_in_a_session_held_by_acs1(hosts: HostsLab) -> None:
    hosts.lb_command("set server acs_cwmp/acs2 state drain")  # new sessions go to acs1 only
    try:
        before = sessions_by_server(hosts)
        outcome = await nbi(hosts, "acs2", lambda c: c.run_task(LAN[0], gpv(UPTIME), WAIT_S))
        after = sessions_by_server(hosts)
    finally:
        hosts.lb_command("set server acs_cwmp/acs2 state ready")
    assert outcome.connection_request_error is None
    assert outcome.task["status"] == "done", outcome
    assert after["acs2"] == before["acs2"] and after["acs1"] > before["acs1"], (before, after)


@pytest.mark.parametrize(
    ("device", "via"),
    [(GATEWAY, "http"), *((device, "udp") for device in LAN), (LAN[0], "xmpp")],
)
async def test_each_machine_delivers_connection_requests_by_each_method(
    hosts: HostsLab, device: str, via: str
) -> None:
    """Each LAN device's STUN datagrams reach one ACS machine (the balancer hashes on the NAT's
    port): the other machine sends its UDP request with the binding read from PostgreSQL, from
    the port the NAT admits. XMPP requests cross ejabberd from either machine's account."""
    for machine in ("acs1", "acs2"):
        report = await nbi(hosts, machine, lambda c: c.connection_request(device, via, WAIT_S))
        assert (report["outcome"], report["method"]) == ("delivered", via), (machine, report)


async def test_killing_acs1_loses_no_task_and_the_fleet_carries_on(hosts: HostsLab) -> None:
    queued = {device: await queue_task(hosts, "acs1", device, gpv(VERSION)) for device in LAN}
    scripted = ScriptedCpe(hosts.acs_url, serial="KILL1", username="cpe")
    scripted.password = hosts.cwmp_password

    async def bootstrap() -> None:
        async with scripted as cpe:
            await cpe.inform("0 BOOTSTRAP", "1 BOOT")
            _, last = await cpe.accept_provisioning(await cpe.empty())
            assert last.status == 204

    await hosts.run_coroutine("lan", bootstrap)
    in_flight = await queue_task(hosts, "acs2", scripted.device_id, gpv(UPTIME))
    asked, killed = threading.Event(), threading.Event()

    async def session_cut_by_the_kill() -> None:
        """A session HAProxy sends to acs1 (acs2 drained), left with the task unanswered until
        every process on acs1 has been killed."""
        async with scripted as cpe:
            await cpe.inform("2 PERIODIC")
            step = await cpe.empty()
            assert step.envelope is not None and step.envelope.body == GetParameterValues([UPTIME])
            asked.set()
            await asyncio.to_thread(killed.wait, WAIT_S)

    hosts.lb_command("set server acs_cwmp/acs2 state drain")
    try:
        cut = asyncio.ensure_future(hosts.run_coroutine("lan", session_cut_by_the_kill))
        assert await asyncio.to_thread(asked.wait, WAIT_S)
        before = sessions_by_server(hosts)
        pids = hosts.kill_machine("acs1")
        killed.set()
        await cut
    finally:
        hosts.lb_command("set server acs_cwmp/acs2 state ready")
    assert len(pids) >= 3  # the supervisor and its two workers
    assert before["acs2"] == sessions_by_server(hosts)["acs2"]  # the cut session was acs1's

    async def next_session() -> list[list[str]]:
        """The device's next session reaches acs2 and runs the task acs1 was running."""
        asked = []
        async with scripted as cpe:
            await cpe.inform("1 BOOT")
            step = await cpe.empty()
            while step.envelope is not None:
                request = step.envelope.body
                assert isinstance(request, GetParameterValues), request
                asked.append(request.parameter_names)
                answer = [
                    ParameterValueStruct(n, "7", "xsd:string") for n in request.parameter_names
                ]
                step = await cpe.answer(step, GetParameterValuesResponse(answer))
            assert step.status == 204
        return asked

    assert await hosts.run_coroutine("lan", next_session) == [[UPTIME]]
    for device in [*LAN, GATEWAY]:
        # The queued task runs first, in the session this one's connection request opens.
        outcome = await nbi(hosts, "acs2", lambda c, d=device: c.run_task(d, gpv(UPTIME), WAIT_S))
        assert outcome.task["status"] == "done", (device, outcome)
    tasks = {t["_id"]: t for t in await nbi(hosts, "acs2", lambda c: c.tasks(history=True))}
    assert tasks[in_flight]["status"] == "done"
    assert [tasks[task_id]["status"] for task_id in queued.values()] == ["done"] * len(LAN)
    for device in LAN:
        report = await nbi(
            hosts, "acs2", lambda c, d=device: c.connection_request(d, "udp", WAIT_S)
        )
        assert report["outcome"] == "delivered", report


def test_a_lab_that_fails_to_start_leaves_nothing_behind() -> None:
    """A fleet that cannot start (an unknown method) fails the build after every server is up:
    they are stopped and every namespace is removed, the extra machines' included."""
    lab = HostsLab(fleets=[Fleet("lan", "BAD", 1, "carrier-pigeon")])
    with pytest.raises(DemoError, match="knock sim BAD on lan"):
        lab.build()
    assert not [name for name in netns.names() if name.startswith(f"{lab.tag}-")]
    assert not lab.folder.exists()
