"""The benchmarks run end to end in their --quick mode (figures are reported, never asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_informs_bench_quick(tmp_path: Path) -> None:
    out = tmp_path / "informs.json"
    subprocess.run(
        [sys.executable, str(ROOT / "bench" / "informs.py"), "--quick", "--json", str(out)],
        check=True,
        timeout=120,
        capture_output=True,
    )
    result = json.loads(out.read_text())
    assert result["sessions"] == result["devices"] == 50
    assert result["sessions_per_s"] > 0 and result["p99_ms"] >= result["p50_ms"] > 0


def test_connreq_bench_quick(tmp_path: Path) -> None:
    out = tmp_path / "connreq.json"
    subprocess.run(
        [sys.executable, str(ROOT / "bench" / "connreq.py"), "--quick", "--json", str(out)],
        check=True,
        timeout=180,
        capture_output=True,
        cwd=ROOT,
    )
    result = json.loads(out.read_text())
    assert result["delivered"] == result["devices"] == 30
    assert result["p99_ms"] >= result["p50_ms"] > 0
