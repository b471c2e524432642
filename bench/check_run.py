"""How long a whole `knock check` run takes with the default waits against a device that offers
HTTP connection requests only (issue 13: it must end well under 3 minutes), and how much of it is
the waits the cases take on purpose.

In one process, as `knock check` runs: the ACS (loopback, any free ports), one simulated CPE on
the tr098-http model (no STUN, no XMPP) that never challenges a CR, does not rate-limit and drops
the connection on parameters it lacks, every case with `CheckOptions()` (`--rate-gap 5`,
`--quiet-for 10`, `--inform-within 30`). The floor is the sum of the deliberate waits the
evidence notes ("waiting N s for the device's rate limit", "watching N s for a session that
should not come") plus the start-up's `--quiet-for`; the rest is the exchanges themselves.

Run: `.venv/bin/python bench/check_run.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from knock.check import CheckOptions, Kind, select
from knock.check.run import run_check
from knock.cpe.cr_rate import CrPolicy
from knock.cpe.cr_services import CrServices
from knock.cpe.defects import Defect
from knock.cpe.device import SimulatedCpe
from knock.cpe.quirks import Quirk
from knock.server import Running
from knock.vocab import CrMethod
from report import report

# The tests' loopback settings (every listener on 127.0.0.1, any free port), not a copy of them.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from serve_support import loopback_settings

WAITED = re.compile(r"(?:waiting|watching) ([0-9.]+) s ")


async def measure(folder: Path) -> dict[str, Any]:
    settings = loopback_settings(folder)
    options = CheckOptions()
    services = CrServices((CrMethod.HTTP,), CrPolicy())
    await services.start()
    devices: list[asyncio.Task[None]] = []

    def started(acs: Running) -> None:
        cpe = SimulatedCpe(
            "BENCH0001",
            "tr098-http",
            folder / "state",
            acs.acs_url,
            defects=frozenset({Defect.ACCEPT_ANY_CR_AUTH, Defect.NO_RATE_LIMIT}),
            quirks=frozenset({Quirk.DROP_ON_UNKNOWN_PARAMETER}),
        )
        services.attach(cpe)
        devices.append(asyncio.create_task(cpe.run()))

    began = time.monotonic()
    try:
        run = await run_check(settings, options, select([]), on_started=started)
    finally:
        for task in devices:
            task.cancel()
        await asyncio.gather(*devices, return_exceptions=True)
        await services.close()
    wall = time.monotonic() - began
    cases = sum(r.duration for r in run.results)
    waits = options.quiet_for + sum(
        float(match.group(1))
        for r in run.results
        for e in r.evidence
        if e.kind is Kind.NOTE and (match := WAITED.match(e.summary))
    )
    verdicts = Counter(r.verdict.value for r in run.results)
    return {
        "cases": len(run.results),
        **{f"verdict {v}": n for v, n in sorted(verdicts.items())},
        "wall s": round(wall, 1),
        "start-up s (device found, provisioned, quiet)": round(wall - cases, 1),
        "cases s": round(cases, 1),
        "waits noted in the evidence s (floor)": round(waits, 1),
        "wall / floor": round(wall / waits, 2),
        "limit s (issue 13)": 180,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, default=Path("bench/results/check_run.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="knock-bench-check-") as scratch:
        figures = asyncio.run(measure(Path(scratch)))
    report("knock check, HTTP-only device, default waits", figures, args.json)


if __name__ == "__main__":
    main()
