"""The store's share of a CWMP session, without HTTP: CPU per periodic session of the process
calling the store and of PostgreSQL, on SQLite and on PostgreSQL, in one run.

Each session is what the ACS asks of the store for a `2 PERIODIC` Inform with no task:
`record_inform` (8 parameters) and `advance_session`, `--concurrency` sessions at a time. Before
the timed rounds every device gets `--history` ended sessions (written directly), as a device
holds after weeks of periodic Informs: the store's work per Inform must not grow with them.
The calling process's CPU is `time.process_time`; PostgreSQL's is its server's process tree
(`bench/informs.py`'s private server, durability off). Steadier than bench/informs.py, which
adds aiohttp and SOAP around it; for the whole session use that one.
Run: `.venv/bin/python bench/store_sessions.py --devices 500 --history 1000`.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, insert

from informs import _PARAMS, empty, private_postgres
from knock.store import Store
from knock.store.rows import InformRecord, ParamValue
from knock.store.schema import sessions
from procfs import tree_cpu_seconds
from report import compare


def _inform(serial: str, events: list[str], now: datetime) -> InformRecord:
    return InformRecord(
        device_id=f"00D09E-BenchBox-{serial}",
        manufacturer="Bench",
        oui="00D09E",
        product_class="BenchBox",
        serial_number=serial,
        events=events,
        parameters=[ParamValue(n, v.format(serial=serial), f"xsd:{t}") for n, v, t in _PARAMS],
        cwmp_version="urn:dslforum-org:cwmp-1-0",
        now=now,
    )


def _history(conn: Connection, device_ids: list[str], count: int, now: datetime) -> None:
    for device_id in device_ids:
        conn.execute(
            insert(sessions),
            [
                {
                    "device_id": device_id,
                    "started": now - timedelta(minutes=5 * (n + 1)),
                    "ended": now - timedelta(minutes=5 * (n + 1), seconds=-1),
                    "events": ["2 PERIODIC"],
                    "cwmp_version": "urn:dslforum-org:cwmp-1-0",
                    "outcome": "ok",
                }
                for n in range(count)
            ],
        )


async def _session(store: Store, serial: str, now: datetime) -> None:
    rec = _inform(serial, ["2 PERIODIC"], now)
    session_id = await store.record_inform(rec)
    assert await store.advance_session(rec.device_id, session_id, now) is None


async def measure(
    url: str, devices: int, history: int, rounds: int, concurrency: int, postmaster: int | None
) -> dict[str, Any]:
    store = await Store.open(url)
    try:
        serials = [f"BENCH{i:06d}" for i in range(devices)]
        now = datetime.now(UTC)
        for serial in serials:
            await store.record_inform(_inform(serial, ["0 BOOTSTRAP", "1 BOOT"], now))
        ids = [f"00D09E-BenchBox-{serial}" for serial in serials]
        if history:
            await store._db.run(_history, ids, history, now)  # set-up only, past the API
        for serial in serials:  # each device's own session ends, as after its bootstrap
            await _session(store, serial, now)
        gate = asyncio.Semaphore(concurrency)

        async def one(serial: str, at: datetime) -> None:
            async with gate:
                await _session(store, serial, at)

        runs = []
        for n in range(rounds):
            at = now + timedelta(minutes=5 * (n + 1))
            cpu, db = time.process_time(), tree_cpu_seconds(postmaster) if postmaster else 0.0
            start = time.perf_counter()
            await asyncio.gather(*(one(serial, at) for serial in serials))
            elapsed = time.perf_counter() - start
            run = {
                "cpu_ms_per_session": 1000 * (time.process_time() - cpu) / devices,
                "sessions_per_s": devices / elapsed,
            }
            if postmaster:
                db_cpu = tree_cpu_seconds(postmaster) - db
                run["db_cpu_ms_per_session"] = 1000 * db_cpu / devices
            runs.append(run)
    finally:
        await store.close()
    return {key: round(statistics.median(r[key] for r in runs), 3) for key in runs[0]}


async def run_all(
    devices: int, history: int, rounds: int, concurrency: int, server: Any
) -> dict[str, dict[str, Any]]:
    tmp = Path(tempfile.mkdtemp(prefix="knock-bench-"))
    await empty(server.url)
    pg = await measure(server.url, devices, history, rounds, concurrency, server.postmaster_pid())
    sqlite = await measure(
        f"sqlite:///{tmp / 'bench.db'}", devices, history, rounds, concurrency, None
    )
    pg["over_sqlite"] = round(pg["cpu_ms_per_session"] / sqlite["cpu_ms_per_session"], 2)
    return {"postgresql": pg, "sqlite": sqlite}  # the first column names the rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=500)
    parser.add_argument("--history", type=int, default=1000, help="ended sessions per device")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    parser.add_argument("--json", type=Path, default=Path("bench/results/store_sessions.json"))
    args = parser.parse_args()
    if args.quick:
        args.devices, args.history, args.rounds = 20, 10, 1
    server = private_postgres()
    try:
        found = asyncio.run(
            run_all(args.devices, args.history, args.rounds, args.concurrency, server)
        )
    finally:
        server.stop()
    compare(
        "The store's share of a periodic session (ms of CPU), without HTTP",
        {"devices": args.devices, "history": args.history, "concurrency": args.concurrency},
        found,
        args.json,
    )


if __name__ == "__main__":
    main()
