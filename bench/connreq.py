"""Connection-request fan-out: how fast `knock serve` reaches N simulated devices by one method.

Starts `knock serve` and `knock sim` (N devices over W worker processes) as processes, waits until
every device is online and idle (provisioned), then sends one connection request per device
through the NBI (`POST /devices/<id>/connection-request?via=METHOD`) with C in flight. A request
counts as delivered only when the device's Inform with 6 CONNECTION REQUEST arrived; the latency
is the ACS's own, from sending the request to that Inform. Prints a table and writes JSON.

Run: `.venv/bin/python bench/connreq.py --method http --devices 10000 --workers 2`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fleet import Run, follow_fleet, start_acs
from knock.cwmp import DeviceIdStruct, device_key
from knock.nbi.client import NbiClient
from report import percentile, report


async def fan_out(nbi: int, method: str, devices: int, concurrency: int) -> dict[str, Any]:
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

    began = time.perf_counter()
    async with NbiClient(f"http://127.0.0.1:{nbi}", timeout_s=60) as client:
        await asyncio.gather(*(one(client, f"SIM{n:06d}") for n in range(1, devices + 1)))
    elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "delivered": outcomes.get("delivered", 0),
        "outcomes": outcomes,
        "fan_out_s": round(elapsed, 2),
        "crs_per_s": round(devices / elapsed, 1),
        "p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "p99_ms": round(percentile(latencies, 0.99), 1) if latencies else None,
        "max_ms": round(latencies[-1], 1) if latencies else None,
    }


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="knock-bench-connreq-"))
    acs, acs_url, nbi = await start_acs(folder)
    run = Run(args.devices)
    sim = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "knock", "sim", "--acs", acs_url, "--count", str(args.devices),
        "--workers", str(args.workers), "--start-rate", str(args.start_rate), "--no-live",
        "--cr", f"http,{args.method}" if args.method != "http" else "http",
        "--periodic-interval", "86400",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    follower = asyncio.create_task(follow_fleet(sim, run, time.monotonic()))
    try:
        async with asyncio.timeout(args.timeout):
            await run.until_settled(args.devices)
        run.sampling = False
        result = await fan_out(nbi, args.method, args.devices, args.concurrency)
    finally:
        sim.send_signal(signal.SIGINT)
        async with asyncio.timeout(30):
            await follower
            await sim.wait()
        acs.terminate()
        await acs.wait()
    return {
        "method": args.method,
        "devices": args.devices,
        "workers": args.workers,
        "concurrency": args.concurrency,
        **result,
        "cpus": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--method", choices=["http", "udp", "xmpp"], default="http")
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
    result = asyncio.run(bench(args))
    report(
        f"connection requests by {args.method} to {args.devices} simulated devices",
        result,
        args.json,
    )


if __name__ == "__main__":
    main()
