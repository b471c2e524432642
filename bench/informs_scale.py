"""1..N ACS processes (`knock serve --workers N`) on PostgreSQL: sessions per second, and what
shows whether they would scale on cores of their own.

Starts a private PostgreSQL (Debian's, as the tests do: tests/pg_server.py, durability off) unless
--store-url names one, empties it before each run, and runs bench/informs.py's rounds (bootstrap,
periodic, task; one connection kept per session) against each process count in turn.

On a machine with fewer cores than the processes, the client and PostgreSQL, sessions per second
cannot grow with the processes: they share the same cores. What can be measured there is what
would stop them scaling on cores of their own: CPU per session (the ACS processes' and
PostgreSQL's; with no contention it stays as it is with one process, and N processes then do N
times the work: `{n}p_over_1p_by_acs_cpu`, N x one process's CPU per session over N
processes'), and waits on each other in the database (`{n}p_lock_wait_pct`: of PostgreSQL's
active backends sampled every 20 ms during the rounds, the share waiting on a lock of another
transaction).
Prints a table and writes JSON.
Run: `.venv/bin/python bench/informs_scale.py --processes 1,2 --devices 2000`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg

from informs import bench, empty, private_postgres
from report import report

_SAMPLE_S = 0.02
_ACTIVE_AND_WAITING = """
SELECT count(*) FILTER (WHERE state = 'active'),
       count(*) FILTER (WHERE state = 'active' AND wait_event_type = 'Lock')
FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()
"""


@contextlib.asynccontextmanager
async def lock_waits(url: str) -> AsyncIterator[list[int]]:
    """Samples [active, waiting on a lock] of the database's backends until the block ends."""
    counts = [0, 0]
    conn = await asyncpg.connect(url)

    async def sample() -> None:
        while True:
            active, waiting = await conn.fetchrow(_ACTIVE_AND_WAITING)
            counts[0] += active
            counts[1] += waiting
            await asyncio.sleep(_SAMPLE_S)

    sampler = asyncio.ensure_future(sample())
    try:
        yield counts
    finally:
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
        await conn.close()


async def scale(
    url: str, counts: list[int], devices: int, rounds: int, postmaster: int | None
) -> dict[str, Any]:
    figures: dict[str, Any] = {"devices": devices, "rounds": rounds}
    for count in counts:
        await empty(url)
        async with lock_waits(url) as waits:
            run = await bench(devices, 100, rounds, url, count, new=False, database=postmaster)
        prefix = f"{count}p"
        for kind in ("bootstrap", "periodic", "task"):
            figures[f"{prefix}_{kind}_acs_cpu_ms_per_session"] = run[kind]["cpu_ms_per_session"]
            if postmaster:
                figures[f"{prefix}_{kind}_pg_cpu_ms_per_session"] = run[kind][
                    "db_cpu_ms_per_session"
                ]
        task = run["task"]
        figures[f"{prefix}_task_sessions"] = task["sessions"]
        figures[f"{prefix}_task_sessions_per_s"] = task["sessions_per_s"]
        figures[f"{prefix}_task_p50_ms"] = task["p50_ms"]
        figures[f"{prefix}_task_p99_ms"] = task["p99_ms"]
        figures[f"{prefix}_lock_wait_pct"] = round(100 * waits[1] / max(1, waits[0]), 2)
        figures[f"{prefix}_acs_rss_mib"] = run["acs_rss_mib"]
        figures[f"{prefix}_machine_busy_pct"] = task["machine_busy_pct"]
    one = counts[0]
    for count in counts[1:]:
        for kind in ("periodic", "task"):
            base = figures[f"{one}p_{kind}_acs_cpu_ms_per_session"]
            figures[f"{count}p_over_{one}p_by_acs_cpu_{kind}"] = round(
                count / one * base / figures[f"{count}p_{kind}_acs_cpu_ms_per_session"], 2
            )
        figures[f"{count}p_over_{one}p_sessions_per_s"] = round(
            figures[f"{count}p_task_sessions_per_s"] / figures[f"{one}p_task_sessions_per_s"], 2
        )
    figures["cpus"] = os.cpu_count()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--processes", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--store-url", help="a scratch PostgreSQL database (its tables are dropped)"
    )
    parser.add_argument("--quick", action="store_true", help="a small smoke run: 30 devices")
    parser.add_argument("--json", type=Path, default=Path("bench/results/informs_scale.json"))
    args = parser.parse_args()
    if args.quick:
        args.devices, args.rounds = 30, 1
    counts = [int(n) for n in args.processes.split(",")]
    server = None if args.store_url else private_postgres()
    try:
        url = args.store_url or server.url  # type: ignore[union-attr]
        postmaster = None if server is None else server.postmaster_pid()
        figures = asyncio.run(scale(url, counts, args.devices, args.rounds, postmaster))
    finally:
        if server is not None:
            server.stop()
    report("knock serve on PostgreSQL: sessions against ACS processes", figures, args.json)


if __name__ == "__main__":
    main()
