"""Sessions per second against 1..N ACS processes (`knock serve --workers N`) on PostgreSQL.

Starts a private PostgreSQL (Debian's, as the tests do: tests/pg_server.py, durability off) unless
--store-url names one, empties it before each run, and runs bench/informs.py's sessions against
each process count in turn. Prints a table and writes JSON.
Run: `.venv/bin/python bench/informs_scale.py --processes 1,2 --devices 2000`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path
from typing import Any

from informs import bench, empty, private_postgres
from procfs import tree_cpu_seconds
from report import report


async def scale(
    url: str, counts: list[int], devices: int, rounds: int, postmaster: int | None
) -> dict[str, Any]:
    figures: dict[str, Any] = {"devices": devices, "rounds": rounds}
    for count in counts:
        await empty(url)
        pg_before = tree_cpu_seconds(postmaster) if postmaster else 0.0
        rounds_run = await bench(devices, 100, rounds, url, count, new=False)
        run = rounds_run["task"]
        prefix = f"{count}p"
        if postmaster:
            # The whole run (start, every round, warm-up too) over the sessions with a task: an
            # upper bound of PostgreSQL's CPU per such session, for sizing its machine.
            pg_cpu = tree_cpu_seconds(postmaster) - pg_before
            figures[f"{prefix}_pg_cpu_ms_per_session"] = round(1000 * pg_cpu / run["sessions"], 3)
        figures[f"{prefix}_sessions"] = run["sessions"]
        figures[f"{prefix}_sessions_per_s"] = run["sessions_per_s"]
        figures[f"{prefix}_p50_ms"] = run["p50_ms"]
        figures[f"{prefix}_p99_ms"] = run["p99_ms"]
        figures[f"{prefix}_acs_cpu_ms_per_session"] = run["cpu_ms_per_session"]
        figures[f"{prefix}_acs_rss_mib"] = rounds_run["acs_rss_mib"]
        figures[f"{prefix}_machine_busy_pct"] = run["machine_busy_pct"]
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
