"""The fleet benchmark runs end to end in its --quick mode (figures are reported, not judged)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_fleet_bench_quick(tmp_path: Path) -> None:
    out = tmp_path / "fleet.json"
    subprocess.run(
        [sys.executable, str(ROOT / "bench" / "fleet.py"), "--quick", "--json", str(out)],
        check=True,
        timeout=120,
        capture_output=True,
    )
    result = json.loads(out.read_text())
    assert result["devices_in_acs"] == result["devices"] == 100
    assert result["cr_tasks_done"] == result["crs"] == 10
    assert (result["fleet_errors"], result["sim_exit_code"]) == (0, 0)
    assert result["fleet_sessions"] == 110  # one bootstrap session each, one per request
    assert len(result["fds_peak"]) == 3  # the parent and its two workers
    assert result["all_informed_s"] > 0 and result["rss_per_device_kib"] > 0
