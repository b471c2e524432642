"""How `knock sim` carries a large fleet against a real `knock serve` on this machine.

Starts `knock serve` (SQLite in a temporary folder) and `knock sim --no-live` as processes, follows
the fleet's status lines while sampling memory and descriptors of every fleet process (the
parent and its workers), and once every device is online and idle, runs connection requests to a
sample of devices through the NBI (`POST /devices/<id>/tasks?connection_request`: the ACS sends
the connection request, the device opens a session, the task runs). With `--cr http,udp,xmpp`
the devices also keep STUN bindings and XMPP connections, "settled" waits for all of them, and
the ACS reaches them by XMPP first, as it prefers. Then stops both and reports:

- time until all devices informed, from the ACS's records (the last device's registration, from
  the moment `knock sim` was started), next to the fleet's own figure and the start window that
  the start rate alone imposes;
- RSS of the fleet, per device (the workers' total over the devices) and marginal (the growth
  per added device while they started), and of the ACS;
- descriptors per fleet process at the end and at their peak.

Prints a table and writes JSON. Run: `.venv/bin/python bench/fleet.py --devices 10000 --workers 2`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from informs import free_port
from knock.cwmp import DeviceIdStruct, device_key
from knock.labca import CA_CERT
from knock.nbi.client import NbiClient
from procfs import children, cpu_seconds, open_files_limit, rss_kib
from report import report

MIB = 1024


@dataclass
class Sample:
    at: float  # seconds since `knock sim` started
    started: int  # devices the fleet had started
    rss_kib: dict[int, int]  # by pid
    fds: dict[int, int]  # by pid


@dataclass
class Run:
    devices: int
    methods: tuple[str, ...] = ("http",)
    samples: list[Sample] = field(default_factory=list)
    sampling: bool = True  # until the fleet first settles: the samples show it growing
    last_status: dict[str, str] = field(default_factory=dict)
    updated: asyncio.Event = field(default_factory=asyncio.Event)

    def settled(self, sessions: int) -> bool:
        """Every device online, none in a session, and at least *sessions* sessions done."""
        status = self.last_status
        return (
            bool(status)
            and int(status["online"]) == self.devices
            and status["in_session"] == "0"
            and int(status["sessions"]) >= sessions
            and ("udp" not in self.methods or int(status["stun_bound"]) == self.devices)
            and ("xmpp" not in self.methods or int(status["xmpp_online"]) == self.devices)
        )

    async def until_settled(self, sessions: int) -> None:
        while not self.settled(sessions):
            await self.updated.wait()


def fleet_pids(parent: int) -> list[int]:
    return [parent, *children(parent)]


def sample(parent: int, at: float, started: int) -> Sample:
    pids = fleet_pids(parent)
    return Sample(
        at,
        started,
        {pid: rss_kib(pid)["VmRSS"] for pid in pids},
        {pid: len(os.listdir(f"/proc/{pid}/fd")) for pid in pids},
    )


def parse_status(line: str) -> dict[str, str]:
    return dict(
        pair.split("=", 1) for pair in line.removeprefix("stopped: ").split() if "=" in pair
    )


def lab_ca(folder: Path) -> Path:
    """The lab CA of the `knock serve` that `start_acs` runs in *folder*: the simulated devices
    trust it (knock sim --ca), as a lab's devices do."""
    return folder / "data" / CA_CERT


async def start_acs(
    folder: Path, *extra: str, env: dict[str, str] | None = None
) -> tuple[asyncio.subprocess.Process, str, int]:
    """`knock serve` on loopback with SQLite in *folder*, *extra* flags and *env* added."""
    nbi = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "knock", "serve",
        "--cwmp-host", "127.0.0.1", "--cwmp-port", str(free_port()), "--nbi-port", str(nbi),
        "--store-url", f"sqlite:///{folder / 'bench.db'}", "--log-level", "warning",
        "--stun-host", "127.0.0.1", "--stun-port", "0", "--no-files-enable",
        "--xmpp-host", "127.0.0.1", "--xmpp-port", "0", "--xmpp-tls-port", "0",
        "--data-dir", str(folder / "data"), *extra,
        stdout=asyncio.subprocess.PIPE, env={**os.environ, **(env or {})},
    )  # fmt: skip
    assert process.stdout is not None
    async with asyncio.timeout(30):
        line = (await process.stdout.readline()).decode()
    if "point CPEs at" not in line:
        raise RuntimeError(f"knock serve did not start: {line!r}")
    return process, line.split()[-1], nbi


async def follow_fleet(sim: asyncio.subprocess.Process, run: Run, began: float) -> None:
    """Read status lines until the fleet stops, sampling its processes while it grows."""
    assert sim.stdout is not None
    async for raw in sim.stdout:
        status = parse_status(raw.decode())
        if "started" not in status:
            continue
        run.last_status = status
        if run.sampling and sim.returncode is None:
            started = int(status["started"].split("/")[0])
            run.samples.append(sample(sim.pid, time.monotonic() - began, started))
        run.updated.set()
        run.updated = asyncio.Event()


async def connection_requests(nbi: int, serials: list[str], concurrency: int) -> dict[str, Any]:
    """A getParameterValues task with ?connection_request per device; latencies of the 200s."""
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    failures: list[str] = []

    async def one(client: NbiClient, serial: str) -> None:
        device = device_key(DeviceIdStruct("Knock Labs", "00D09E", "KnockBox", serial))
        task = {"name": "getParameterValues", "parameterNames": ["Device.DeviceInfo.UpTime"]}
        async with gate:
            began = time.perf_counter()
            outcome = await client.run_task(device, task, wait_s=30)
            if outcome.status == 200:
                latencies.append(time.perf_counter() - began)
            else:
                failures.append(f"{serial}: {outcome.status} {outcome.connection_request_error}")

    async with NbiClient(f"http://127.0.0.1:{nbi}", timeout_s=60) as client:
        await asyncio.gather(*(one(client, serial) for serial in serials))
    latencies.sort()
    return {
        "crs": len(serials),
        "cr_tasks_done": len(latencies),
        "cr_task_p50_ms": round(statistics.median(latencies) * 1000, 1) if latencies else None,
        "cr_task_p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1)
        if latencies
        else None,
        "cr_failures": failures[:5],
    }


def registrations(database: Path) -> tuple[int, datetime]:
    """How many devices the ACS holds, and when the last one first informed."""
    with sqlite3.connect(database) as db:
        count, last = db.execute("SELECT COUNT(*), MAX(registered) FROM devices").fetchone()
    return count, datetime.fromisoformat(last).replace(tzinfo=UTC)


def marginal_kib(samples: list[Sample], devices: int, parent: int) -> float:
    """Worker memory growth per device started, from a tenth of the fleet to all of it."""
    first = next(s for s in samples if s.started >= devices // 10)
    last = samples[-1]

    def workers(s: Sample) -> int:
        return sum(kib for pid, kib in s.rss_kib.items() if pid != parent)

    return (workers(last) - workers(first)) / max(1, last.started - first.started)


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="knock-bench-fleet-"))
    acs, acs_url, nbi = await start_acs(folder)
    run = Run(args.devices, tuple(args.cr.split(",")))
    wall_start = datetime.now(UTC)
    began = time.monotonic()
    sim = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "knock", "sim", "--acs", acs_url, "--count", str(args.devices),
        "--workers", str(args.workers), "--start-rate", str(args.start_rate), "--no-live",
        "--cr", args.cr, "--ca", str(lab_ca(folder)),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    follower = asyncio.create_task(follow_fleet(sim, run, began))
    try:
        async with asyncio.timeout(args.timeout):
            await run.until_settled(args.devices)
        run.sampling = False
        steady = sample(sim.pid, time.monotonic() - began, args.devices)
        fd_limit = open_files_limit(fleet_pids(sim.pid)[-1])
        boot_cpu = {"fleet": sum(map(cpu_seconds, steady.fds)), "acs": cpu_seconds(acs.pid)}
        crs = await connection_requests(
            nbi, random.sample([f"SIM{n:06d}" for n in range(1, args.devices + 1)], args.crs), 20
        )
        async with asyncio.timeout(60):  # the last sessions end just after their tasks
            await run.until_settled(args.devices + crs["cr_tasks_done"])
        peak_fds = {
            pid: max(s.fds.get(pid, 0) for s in [*run.samples, steady]) for pid in steady.fds
        }
        acs_memory = rss_kib(acs.pid)
        acs_fds = len(os.listdir(f"/proc/{acs.pid}/fd"))
    finally:
        sim.send_signal(signal.SIGINT)
        async with asyncio.timeout(30):
            await follower
            sim_code = await sim.wait()
        acs.terminate()
        await acs.wait()
    registered, last = registrations(folder / "bench.db")
    parent = sim.pid
    worker_rss = [kib for pid, kib in steady.rss_kib.items() if pid != parent]
    return {
        "devices": args.devices,
        "workers": args.workers,
        "start_rate_per_s": args.start_rate,
        "start_window_s": round(args.devices / args.start_rate, 1),
        "devices_in_acs": registered,
        "all_informed_s": round((last - wall_start).total_seconds(), 1),
        "fleet_all_online_s": float(run.last_status.get("all_online_after", "nan")),
        "fleet_rss_mib": round(sum(steady.rss_kib.values()) / MIB, 1),
        "parent_rss_mib": round(steady.rss_kib[parent] / MIB, 1),
        "worker_rss_mib": [round(kib / MIB, 1) for kib in worker_rss],
        "rss_per_device_kib": round(sum(worker_rss) / args.devices, 1),
        "rss_marginal_per_device_kib": round(
            marginal_kib([*run.samples, steady], args.devices, parent), 1
        ),
        "fds_end": [steady.fds[pid] for pid in steady.fds],
        "fds_peak": [peak_fds[pid] for pid in steady.fds],
        "fd_limit": fd_limit,
        "fleet_cpu_s_until_all_online": round(boot_cpu["fleet"], 1),
        "acs_cpu_s_until_all_online": round(boot_cpu["acs"], 1),
        "acs_rss_mib": round(acs_memory["VmRSS"] / MIB, 1),
        "acs_fds": acs_fds,
        **crs,
        "cr_methods": args.cr,
        "fleet_cr_counts": {
            key: int(value)
            for key, value in run.last_status.items()
            if key.startswith(("cr_", "udp_", "xmpp_", "stun_"))
        },
        "fleet_errors": int(run.last_status.get("errors", "-1")),
        "fleet_sessions": int(run.last_status.get("sessions", "-1")),
        "sim_exit_code": sim_code,
        "cpus": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--start-rate", type=float, default=200.0, help="devices per second")
    parser.add_argument("--crs", type=int, default=200, help="connection requests afterwards")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to get all online")
    parser.add_argument("--cr", default="http", help="knock sim --cr: http, or http,udp,xmpp")
    parser.add_argument("--quick", action="store_true", help="a small smoke run: 100 devices")
    parser.add_argument("--json", type=Path, default=Path("bench/results/fleet.json"))
    args = parser.parse_args()
    if args.quick:
        args.devices, args.crs, args.start_rate = 100, 10, 500.0
    result = asyncio.run(bench(args))
    report(f"knock sim: {args.devices} devices against knock serve", result, args.json)


if __name__ == "__main__":
    main()
