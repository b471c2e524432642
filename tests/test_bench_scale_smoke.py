"""The scale benchmarks run end to end in their --quick modes: their figures are reported, never
asserted, but their shape is, so a benchmark that breaks is noticed here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def quick(script: str, tmp_path: Path, *flags: str) -> Any:
    out = tmp_path / f"{script}.json"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / f"{script}.py"),
            "--quick",
            "--json",
            str(out),
            *flags,
        ],
        check=True,
        timeout=180,
        capture_output=True,
        cwd=ROOT,
    )
    return json.loads(out.read_text())


def test_informs_against_one_and_two_processes_on_postgresql(
    tmp_path: Path, postgres_url: str
) -> None:
    result = quick("informs_scale", tmp_path, "--store-url", postgres_url)
    assert result["devices"] == 30
    for processes in (1, 2):
        assert result[f"{processes}p_sessions"] == 30
        assert result[f"{processes}p_sessions_per_s"] > 0
        assert result[f"{processes}p_p99_ms"] >= result[f"{processes}p_p50_ms"] > 0
        assert result[f"{processes}p_acs_rss_mib"] > 0


def test_rss_of_a_process_that_knows_many_devices(tmp_path: Path) -> None:
    result = quick("rss_devices", tmp_path)
    assert (result["devices"], result["sessions"], result["udp_requests"]) == (2000, 10, 3)
    assert result["udp_undelivered"] == 3  # nothing listens where the requests go
    assert result["rss_after_mib"] >= result["rss_at_start_mib"] > 0
