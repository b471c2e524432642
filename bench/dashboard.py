"""How long the dashboard's fleet view takes to count a busy hour: GET /dashboard/api/cr-stats
over a store holding that many connection-request attempts, through the NBI on loopback.

The attempts (every method, a spread of latencies, one in ten failed) are written straight into
the store's table, then the route is asked `--requests` times one after another. Prints a table
and writes JSON. Run: `.venv/bin/python bench/dashboard.py --store sqlite|postgresql-URL`
(or `--quick` for a smoke run).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy import Connection, insert

from knock.nbi.app import make_nbi_app
from knock.notify import Hub
from knock.store import Store
from knock.store.engine import open_database
from knock.store.rows import InformRecord
from knock.store.schema import cr_attempts
from knock.vocab import CrMethod, CrOutcome
from report import report

DEVICES = 100
BATCH = 5000


def _attempts(count: int, now: datetime) -> list[dict[str, Any]]:
    chooser = random.Random(8)
    methods = list(CrMethod)
    rows = []
    for n in range(count):
        started = now - timedelta(seconds=chooser.uniform(0, 3500))
        failed = n % 10 == 0
        rows.append(
            {
                "device_id": f"00D09E-Bench-SN{n % DEVICES}",
                "method": methods[n % len(methods)].value,
                "started": started,
                "ended": started + timedelta(milliseconds=chooser.lognormvariate(4.5, 1.0)),
                "outcome": (CrOutcome.TIMEOUT if failed else CrOutcome.DELIVERED).value,
                "detail": "bench",
            }
        )
    return rows


async def fill(url: str, count: int, now: datetime) -> None:
    store = await Store.open(url)
    for n in range(DEVICES):
        await store.record_inform(
            InformRecord(
                f"00D09E-Bench-SN{n}", "Acme", "00D09E", "Bench", f"SN{n}", [], [], "", now
            )
        )
    await store.close()
    db = open_database(url)
    rows = _attempts(count, now)

    def write(conn: Connection, batch: list[dict[str, Any]]) -> None:
        conn.execute(insert(cr_attempts), batch)

    for start in range(0, len(rows), BATCH):
        await db.run(write, rows[start : start + BATCH])
    await db.close()


async def bench(url: str, attempts: int, requests: int) -> dict[str, Any]:
    now = datetime.now(UTC)
    await fill(url, attempts, now)
    store = await Store.open(url)
    runner = web.AppRunner(make_nbi_app(store, Hub()), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    times = []
    counted = 0
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(requests):
                start = time.perf_counter()
                async with http.get(f"http://127.0.0.1:{port}/dashboard/api/cr-stats") as response:
                    body = await response.json()
                times.append(time.perf_counter() - start)
                counted = sum(m["attempts"] for m in body["methods"].values())
    finally:
        await runner.cleanup()
        await store.close()
    return {
        "store": url.split(":", 1)[0],
        "attempts_in_window": attempts,
        "attempts_counted": counted,
        "requests": requests,
        "p50_ms": round(statistics.median(times) * 1000, 1),
        "max_ms": round(max(times) * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", default="sqlite", help="sqlite, or a postgresql:// URL")
    parser.add_argument("--attempts", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="a small smoke run: 2,000 attempts")
    parser.add_argument("--json", type=Path, default=Path("bench/results/dashboard.json"))
    args = parser.parse_args()
    if args.quick:
        args.attempts, args.requests = 2000, 2
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/bench.db" if args.store == "sqlite" else args.store
        result = asyncio.run(bench(url, args.attempts, args.requests))
    report("dashboard: GET /dashboard/api/cr-stats over an hour of attempts", result, args.json)


if __name__ == "__main__":
    main()
