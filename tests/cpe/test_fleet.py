"""Fleets of simulated devices against a real `knock serve` started in-process: in one process and
over worker processes, connection requests with the credentials the ACS provisioned, a worker
that dies, and the `knock sim` command stopped by Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import TypeVar

import pytest

from knock.connreq.http import HttpConnectionRequester, Sent
from knock.cpe.cr_http import CrAnswer
from knock.cpe.fleet import Fleet
from knock.cpe.fleet_config import FleetConfig, FleetError
from knock.cpe.fleet_stats import FleetStats
from knock.cwmp import DeviceIdStruct, device_key
from knock.notify import Arrival, SessionEnded, Subscription
from knock.server import Running, start
from knock.vocab import CrOutcome
from serve_support import loopback_settings

WAIT = 20.0  # worker processes take a second to start, a loaded CI machine longer
MS = "Device.ManagementServer."
A = TypeVar("A")


def device_id(serial: str) -> str:
    return device_key(DeviceIdStruct("Knock Labs", "00D09E", "KnockBox", serial))


def serials(count: int) -> list[str]:
    return [f"SIM{n:06d}" for n in range(1, count + 1)]


async def until(subscription: Subscription, kind: type[A]) -> A:
    """The device's next announcement of *kind*, skipping the others."""
    async with asyncio.timeout(WAIT):
        while not isinstance(item := await subscription.next(), kind):
            pass
    return item


def gone(pids: Iterable[int]) -> bool:
    """Whether all these processes ended and were reaped."""
    return not any(Path(f"/proc/{pid}").exists() for pid in pids)


def children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(child) for child in text.split()]


@pytest.fixture
async def knock_acs(tmp_path: Path) -> AsyncIterator[Running]:
    """`knock serve` as it ships: it sets random connection-request credentials at bootstrap."""
    settings = loopback_settings(tmp_path)
    running = await start(settings)
    yield running
    await running.close()


class Runner:
    """Starts fleets as tasks; whatever a test leaves running is stopped at its end."""

    def __init__(self) -> None:
        self._running: dict[Fleet, tuple[asyncio.Event, asyncio.Task[FleetStats]]] = {}

    def start(self, config: FleetConfig) -> Fleet:
        fleet, stop = Fleet(config), asyncio.Event()
        self._running[fleet] = (stop, asyncio.create_task(fleet.run(stop)))
        return fleet

    async def stop(self, fleet: Fleet) -> FleetStats:
        stop, task = self._running.pop(fleet)
        stop.set()
        async with asyncio.timeout(WAIT):
            return await task

    async def end(self, fleet: Fleet) -> FleetStats:
        """How the fleet ends without being asked to stop: by itself, or with an error."""
        _stop, task = self._running[fleet]
        async with asyncio.timeout(WAIT):
            return await task

    async def stop_all(self) -> None:
        for fleet in list(self._running):
            with contextlib.suppress(Exception):
                await self.stop(fleet)


@pytest.fixture
async def runner() -> AsyncIterator[Runner]:
    started = Runner()
    yield started
    await started.stop_all()


def config(acs: Running, state: Path, count: int, **options: object) -> FleetConfig:
    return FleetConfig(
        acs.acs_url,
        count,
        state_dir=str(state),
        start_rate=1000,
        report_interval=0.05,
        **options,  # type: ignore[arg-type]
    )


async def first_sessions(subscriptions: Iterable[Subscription]) -> list[Arrival]:
    """Each device's first Arrival, once its session (credentials provisioning) is over."""
    arrivals = []
    for subscription in subscriptions:
        arrivals.append(await until(subscription, Arrival))
        await until(subscription, SessionEnded)
    return arrivals


async def connection_request_with_provisioned_credentials(
    acs: Running, subscription: Subscription, serial: str
) -> None:
    target = await acs.store.get_cr_target(device_id(serial))
    assert target is not None and target.username is not None
    assert target.username.startswith("knock-")  # set by the ACS, not the device's factory pair
    url = target.management["ConnectionRequestURL"]
    assert url.startswith("http://127.0.0.1:")
    requester = HttpConnectionRequester()
    try:
        assert await requester.send(url, target.username, "not-it") == Sent(
            CrOutcome.BAD_CREDENTIALS, "the device refused the stored credentials"
        )
        assert await requester.send(url, target.username, target.password) == Sent(
            None, "200 after authentication"
        )
    finally:
        await requester.close()
    arrival = await until(subscription, Arrival)
    assert arrival.events == ("6 CONNECTION REQUEST",)


async def test_a_fleet_in_one_process(knock_acs: Running, runner: Runner, tmp_path: Path) -> None:
    with contextlib.ExitStack() as stack:
        subscriptions = {
            serial: stack.enter_context(knock_acs.hub.subscribe(device_id(serial)))
            for serial in serials(20)
        }
        fleet = runner.start(config(knock_acs, tmp_path / "state", 20, periodic_interval=600))
        arrivals = await first_sessions(subscriptions.values())
        assert {tuple(sorted(a.events)) for a in arrivals} == {
            ("0 BOOTSTRAP", "1 BOOT", "4 VALUE CHANGE")
        }
        stats = await fleet.wait_until(lambda s: s.sessions == 20)
        assert (stats.started, stats.online, stats.in_session, stats.errors) == (20, 20, 0, 0)
        assert fleet.online_after is not None

        await connection_request_with_provisioned_credentials(
            knock_acs, subscriptions["SIM000007"], "SIM000007"
        )
        stats = await fleet.wait_until(lambda s: s.sessions == 21)
    assert stats.cr == {CrAnswer.CHALLENGED: 2, CrAnswer.BAD_CREDENTIALS: 1, CrAnswer.ACCEPTED: 1}
    final = await runner.stop(fleet)
    assert (final.started, final.online, final.sessions, final.errors) == (20, 20, 21, 0)

    saved = json.loads((tmp_path / "state" / "SIM000007.json").read_text())["model"]["values"]
    assert saved[MS + "SupportedConnReqMethods"] == "HTTP"
    assert (saved[MS + "PeriodicInformEnable"], saved[MS + "PeriodicInformInterval"]) == (
        "true",
        "600",
    )
    assert saved[MS + "ConnectionRequestUsername"].startswith("knock-")
    assert len(list((tmp_path / "state").glob("SIM*.json"))) == 20


async def test_a_fleet_over_two_worker_processes(
    knock_acs: Running, runner: Runner, tmp_path: Path
) -> None:
    with contextlib.ExitStack() as stack:
        subscriptions = {
            serial: stack.enter_context(knock_acs.hub.subscribe(device_id(serial)))
            for serial in serials(20)
        }
        fleet = runner.start(config(knock_acs, tmp_path / "state", 20, workers=2))
        async with asyncio.timeout(WAIT):
            await first_sessions(subscriptions.values())
            stats = await fleet.wait_until(lambda s: s.sessions == 20)
        assert (stats.started, stats.online, stats.errors) == (20, 20, 0)
        workers = children_running_workers()
        assert len(workers) == 2

        # Device 15 lives in the second worker, behind that worker's listener.
        await connection_request_with_provisioned_credentials(
            knock_acs, subscriptions["SIM000015"], "SIM000015"
        )
        async with asyncio.timeout(WAIT):
            await fleet.wait_until(lambda s: s.sessions == 21)
    final = await runner.stop(fleet)
    assert (final.started, final.online, final.sessions, final.errors) == (20, 20, 21, 0)
    assert final.cr_accepted == 1
    assert gone(workers)


def children_running_workers() -> list[int]:
    return [
        pid
        for pid in children(os.getpid())
        if b"knock.cpe.fleet_worker" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]


async def test_a_worker_that_dies_stops_the_fleet_with_a_clear_error(
    knock_acs: Running, runner: Runner, tmp_path: Path
) -> None:
    fleet = runner.start(config(knock_acs, tmp_path / "state", 4, workers=2))
    async with asyncio.timeout(WAIT):
        await fleet.wait_until(lambda s: s.online == 4)
    victim, survivor = children_running_workers()
    os.kill(victim, signal.SIGKILL)
    with pytest.raises(FleetError) as caught:
        await runner.end(fleet)
    assert str(caught.value) in {
        f"worker {n} (devices {first} to {last}) exited with code -9 before it was asked to "
        "stop; its messages above say why"
        for n, first, last in [(1, "SIM000001", "SIM000002"), (2, "SIM000003", "SIM000004")]
    }
    assert gone([survivor])  # the other worker was stopped too


async def test_knock_sim_stops_cleanly_on_ctrl_c(knock_acs: Running) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "knock",
        "sim",
        "--acs",
        knock_acs.acs_url,
        "--count",
        "4",
        "--workers",
        "2",
        "--no-live",
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(WAIT):
            async for line in process.stdout:
                if b" online=4 " in line:
                    break
        workers = children(process.pid)
        assert len(workers) == 2
        process.send_signal(signal.SIGINT)
        async with asyncio.timeout(WAIT):
            rest = await process.stdout.read()
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    last = rest.decode().splitlines()[-1]
    assert last.startswith("stopped: elapsed=")
    assert " started=4/4 online=4 in_session=0 sessions=4 errors=0 " in last
    assert gone(workers)
