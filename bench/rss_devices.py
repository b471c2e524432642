"""Memory of an ACS process that knows many devices (goal: at most 300 MiB for 100,000).

Writes the devices straight into a new store in bulk (each with connection-request and STUN
credentials, a NAT binding and bench/informs.py's eight Inform parameters), then starts
`knock serve` on it, runs some sessions and some UDP connection requests (sent to a loopback port
where no device listens, so they end undelivered), and reads the process's RSS from /proc.
Prints a table and writes JSON. Run: `.venv/bin/python bench/rss_devices.py --devices 100000`.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from informs import (
    _PARAMS,
    free_port,
    free_udp_port,
    run_session,
    start_serve,
)
from knock.store import Store
from knock.store.engine import open_database
from knock.store.schema import devices, parameters, stun_bindings
from procfs import rss_kib
from report import report

_BATCH = 5000


def device_id(n: int) -> str:
    return f"00D09E-BenchBox-{serial(n)}"


def serial(n: int) -> str:
    return f"BENCH{n:06d}"


async def fill(url: str, count: int) -> float:
    """Create `count` devices in bulk; returns the seconds it took."""
    await (await Store.open(url)).close()  # the schema
    db = open_database(url)
    now = datetime.now(UTC)
    start = time.perf_counter()
    try:
        for first in range(0, count, _BATCH):
            numbers = range(first, min(count, first + _BATCH))
            await db.run(lambda conn, numbers=numbers: _insert(conn, numbers, now))
    finally:
        await db.close()
    return time.perf_counter() - start


def _insert(conn: Any, numbers: range, now: datetime) -> None:
    conn.execute(
        devices.insert(),
        [
            {
                "id": device_id(n),
                "manufacturer": "Knock",
                "oui": "00D09E",
                "product_class": "BenchBox",
                "serial_number": serial(n),
                "registered": now,
                "last_inform": now,
                "cr_username": f"cr-{n}",
                "cr_password": f"crpw-{n:012d}",
                "stun_username": f"stun-{n}",
                "stun_password": f"stunpw-{n:012d}",
            }
            for n in numbers
        ],
    )
    conn.execute(
        parameters.insert(),
        [
            {
                "device_id": device_id(n),
                "path": path,
                "value": value.format(serial=serial(n)),
                "type": f"xsd:{kind}",
                "writable": False,
                "timestamp": now,
            }
            for n in numbers
            for path, value, kind in _PARAMS
        ],
    )
    conn.execute(
        stun_bindings.insert(),
        [
            # Documentation-free loopback: a port where nothing listens, so nothing answers.
            {"username": f"stun-{n}", "host": "127.0.0.1", "port": 9, "seen": now}
            for n in numbers
        ],
    )


async def bench(count: int, sessions: int, requests: int, store_url: str | None) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="knock-rss-"))
    url = store_url or f"sqlite:///{tmp / 'rss.db'}"
    fill_s = await fill(url, count)
    cwmp, nbi = free_port(), free_port()
    proc = await start_serve(url, 1, cwmp, nbi, free_udp_port())
    try:
        at_start = rss_kib(proc.pid)
        step = max(1, count // max(1, sessions))
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
            for n in range(0, step * sessions, step):
                await run_session(http, f"http://127.0.0.1:{cwmp}/", serial(n), "2 PERIODIC", 0)
            undelivered = 0
            for n in range(0, step * requests, step):
                async with http.post(
                    f"http://127.0.0.1:{nbi}/devices/{device_id(n)}/connection-request",
                    params={"via": "udp", "timeout": "200"},
                ) as r:
                    undelivered += r.status == 502
        after = rss_kib(proc.pid)
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 20)
    return {
        "devices": count,
        "store": "postgresql" if url.startswith("postgres") else "sqlite",
        "fill_s": round(fill_s, 1),
        "sessions": sessions,
        "udp_requests": requests,
        "udp_undelivered": undelivered,
        "rss_at_start_mib": round(at_start["VmRSS"] / 1024, 1),
        "rss_after_mib": round(after["VmRSS"] / 1024, 1),
        "peak_rss_mib": round(after["VmHWM"] / 1024, 1),
        "goal_mib": 300,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--store-url", help="a scratch database (default: a new SQLite file)")
    parser.add_argument("--quick", action="store_true", help="a small smoke run: 2,000 devices")
    parser.add_argument("--json", type=Path, default=Path("bench/results/rss_devices.json"))
    args = parser.parse_args()
    if args.quick:
        args.devices, args.sessions, args.requests = 2000, 10, 3
    result = asyncio.run(bench(args.devices, args.sessions, args.requests, args.store_url))
    report(f"knock serve knowing {args.devices:,} devices: memory", result, args.json)


if __name__ == "__main__":
    main()
