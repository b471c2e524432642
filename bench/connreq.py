"""Connection-request fan-out: how fast `knock serve` reaches N simulated devices by one method.

Starts `knock serve` and `knock sim` (N devices over W worker processes) as processes, waits until
every device is online and idle (provisioned, and for udp and xmpp bound or logged in with the
ACS knowing its JID), then sends one connection request per device through the NBI
(`POST /devices/<id>/connection-request?via=METHOD`) with C in flight. A request counts as
delivered only when the device's Inform with 6 CONNECTION REQUEST arrived; the latency is the
ACS's own, from sending the request to that Inform. Prints a table and writes JSON.

With --method xmpp the devices are on an XMPP server (--server): `builtin`, knock serve's own
(the ACS makes each device's account at bootstrap), or `prosody`, a private Prosody on loopback
(Debian's, as tests/xmpp_servers.py starts it) where the ACS and every device have accounts
written beforehand, the devices' through `knock sim --xmpp-server --xmpp-password-secret`, as
an operator's would be; `both` (the default when Prosody is installed) runs one after the other
and prints them side by side, with Prosody's memory per device connection. Devices connect
without TLS to either.

Run: `.venv/bin/python bench/connreq.py --method xmpp --devices 1000 --workers 2`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import xmpp as xmpp_bench
from fleet import Run, follow_fleet, lab_ca, start_acs
from knock.cpe.xmpp_account import device_password, device_username
from knock.cwmp import DeviceIdStruct, device_key
from knock.nbi.client import NbiClient
from procfs import cpu_seconds, open_files_limit, rss_kib
from report import compare, percentile, report

SERVERS = ("builtin", "prosody")
ACS_ACCOUNT = "knock-acs"
ACS_PASSWORD = "bench-acs-password"
DEVICE_SECRET = "bench-device-secret"
MIB = 1024


def serials(devices: int) -> list[str]:
    return [f"SIM{n:06d}" for n in range(1, devices + 1)]


async def fan_out(
    nbi: int, method: str, devices: int, concurrency: int, acs_pid: int
) -> dict[str, Any]:
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    outcomes: dict[str, int] = {}

    async def one(client: NbiClient, serial: str) -> None:
        device = device_key(DeviceIdStruct("Knock Labs", "00D09E", "KnockBox", serial))
        async with gate:
            result = await client.connection_request(device, method, wait_s=30)
        outcomes[result["outcome"]] = outcomes.get(result["outcome"], 0) + 1
        if result["outcome"] == "delivered":
            latencies.append(float(result["latencyMs"]))

    began, acs_cpu_before = time.perf_counter(), cpu_seconds(acs_pid)
    async with NbiClient(f"http://127.0.0.1:{nbi}", timeout_s=60) as client:
        await asyncio.gather(*(one(client, serial) for serial in serials(devices)))
    elapsed = time.perf_counter() - began
    # The ACS's CPU for the whole fan-out (the NBI calls, the requests and the sessions they
    # bring) per device: steadier than the rates on a shared machine.
    acs_cpu = cpu_seconds(acs_pid) - acs_cpu_before
    latencies.sort()
    return {
        "delivered": outcomes.get("delivered", 0),
        "outcomes": outcomes,
        "fan_out_s": round(elapsed, 2),
        "crs_per_s": round(devices / elapsed, 1),
        "p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "p99_ms": round(percentile(latencies, 0.99), 1) if latencies else None,
        "max_ms": round(latencies[-1], 1) if latencies else None,
        "acs_cpu_ms_per_cr": round(1000 * acs_cpu / devices, 3),
    }


async def until_jids_known(database: Path, devices: int) -> None:
    """Until the ACS holds every device's ConnReqJabberID: a device reports it in the session
    after its login, which may come after the fleet first looked settled."""
    query = "SELECT COUNT(*) FROM parameters WHERE path LIKE '%ConnReqJabberID' AND value <> ''"
    while True:
        with sqlite3.connect(database) as db:
            if db.execute(query).fetchone()[0] >= devices:
                return
        await asyncio.sleep(0.5)


async def unless_stopped(follower: asyncio.Task[None], waiting: Coroutine[Any, Any, Any]) -> None:
    """Await *waiting*, unless `knock sim` stops first (its error is on stderr)."""
    task = asyncio.ensure_future(waiting)
    await asyncio.wait({task, follower}, return_when=asyncio.FIRST_COMPLETED)
    if not task.done():
        task.cancel()
        raise RuntimeError("knock sim stopped before its fleet settled; see its error above")


class PrivateProsody:
    """bench/xmpp.py's Prosody with the accounts of the ACS and of `--devices` devices, and
    the `knock serve` and `knock sim` options that put them there."""

    def __init__(self, devices: int) -> None:
        self.server = xmpp_bench.Prosody()
        self.devices = devices

    async def start(self) -> None:
        # Prosody keeps this process's open-files limit (tests/xmpp_servers.py runs it with
        # setpriv): the hard one, so that 10,000 devices fit.
        _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        await self.server.start()
        names = [device_username(serial) for serial in serials(self.devices)]
        self.server.add_accounts(
            [ACS_ACCOUNT, *names],
            lambda name: (
                ACS_PASSWORD if name == ACS_ACCOUNT else device_password(name, DEVICE_SECRET)
            ),
        )

    def acs_flags(self) -> list[str]:
        return [
            "--xmpp-acs-jid", f"{ACS_ACCOUNT}@{xmpp_bench.DOMAIN}",
            "--xmpp-acs-server", "127.0.0.1", "--xmpp-acs-port", str(self.server.port),
            "--xmpp-acs-tls", "never",
        ]  # fmt: skip

    def sim_flags(self) -> list[str]:
        return [
            "--xmpp-server", f"127.0.0.1:{self.server.port}",
            "--xmpp-domain", xmpp_bench.DOMAIN,
        ]  # fmt: skip


async def bench(args: argparse.Namespace, server: str) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="knock-bench-connreq-"))
    prosody = PrivateProsody(args.devices) if server == "prosody" else None
    acs_flags: list[str] = []
    # On the built-in server the devices check its certificate against the lab CA.
    sim_flags: list[str] = ["--ca", str(lab_ca(folder))]
    sim_env = dict(os.environ)
    if prosody is not None:
        await prosody.start()
        acs_flags, sim_flags = prosody.acs_flags(), prosody.sim_flags()
        sim_env["KNOCK_SIM_XMPP_PASSWORD_SECRET"] = DEVICE_SECRET
    try:
        acs, acs_url, nbi = await start_acs(
            folder, *acs_flags, env={"KNOCK_XMPP_ACS_PASSWORD": ACS_PASSWORD}
        )
        # Before the fleet, after the ACS logged in to Prosody.
        acs_before = rss_kib(acs.pid)["VmRSS"]
        server_pid = acs.pid if prosody is None else prosody.server.pid
        server_before = rss_kib(server_pid)["VmRSS"]
        methods = ("http",) if args.method == "http" else ("http", args.method)
        run = Run(args.devices, methods)
        sim = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "knock", "sim", "--acs", acs_url, "--count", str(args.devices),
            "--workers", str(args.workers), "--start-rate", str(args.start_rate), "--no-live",
            "--cr", ",".join(methods), "--periodic-interval", "86400", *sim_flags,
            stdout=asyncio.subprocess.PIPE,
            env=sim_env,
        )  # fmt: skip
        follower = asyncio.create_task(follow_fleet(sim, run, time.monotonic()))
        try:
            async with asyncio.timeout(args.timeout):
                await unless_stopped(follower, run.until_settled(args.devices))
                if args.method == "xmpp":
                    await unless_stopped(
                        follower, until_jids_known(folder / "bench.db", args.devices)
                    )
                    await unless_stopped(follower, run.updated.wait())  # a fresh status line
                    await unless_stopped(follower, run.until_settled(args.devices))
            run.sampling = False
            acs_after, server_after = rss_kib(acs.pid)["VmRSS"], rss_kib(server_pid)["VmRSS"]
            figures = await fan_out(nbi, args.method, args.devices, args.concurrency, acs.pid)
            figures |= {
                "acs_rss_mib": round(acs_after / MIB, 1),
                "acs_kib_per_device": round((acs_after - acs_before) / args.devices, 1),
            }
            if args.method == "xmpp":
                # The built-in server's connections are part of the ACS's figure.
                figures |= {
                    "xmpp_server_kib_per_device": "in the ACS"
                    if prosody is None
                    else round((server_after - server_before) / args.devices, 1),
                    "xmpp_server_open_files_limit": open_files_limit(server_pid),
                }
        finally:
            sim.send_signal(signal.SIGINT)
            async with asyncio.timeout(30):
                await follower
                await sim.wait()
            acs.terminate()
            await acs.wait()
    finally:
        if prosody is not None:
            await prosody.server.stop()
    return figures


def servers(args: argparse.Namespace) -> list[str]:
    if args.method != "xmpp":
        if args.server not in (None, "builtin"):
            raise SystemExit(f"--server {args.server} is for --method xmpp")
        return ["builtin"]
    if args.server is None:
        return list(SERVERS) if xmpp_bench.installed("prosody") else ["builtin"]
    return list(SERVERS) if args.server == "both" else [args.server]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", choices=["http", "udp", "xmpp"], default="http")
    parser.add_argument(
        "--server",
        choices=[*SERVERS, "both"],
        default=None,
        help="the XMPP server the devices are on (--method xmpp); default: both if Prosody "
        "is installed, else builtin",
    )
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--start-rate", type=float, default=200)
    parser.add_argument("--timeout", type=float, default=600, help="seconds for the fleet to boot")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 30 devices, 1 worker")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.quick:
        args.devices, args.workers, args.concurrency = 30, 1, 10
    args.json = args.json or Path(f"bench/results/connreq-{args.method}.json")
    common = {
        "method": args.method,
        "devices": args.devices,
        "workers": args.workers,
        "concurrency": args.concurrency,
        "cpus": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }
    title = f"connection requests by {args.method} to {args.devices} simulated devices"
    if args.method != "xmpp":
        servers(args)
        report(title, {**common, **asyncio.run(bench(args, "builtin"))}, args.json)
        return
    results = {name: asyncio.run(bench(args, name)) for name in servers(args)}
    compare(f"{title}, by XMPP server", common, results, args.json)


if __name__ == "__main__":
    main()
