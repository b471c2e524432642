"""The XMPP benchmark runs end to end in its --quick mode (figures are reported, never asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_xmpp_bench_quick(tmp_path: Path) -> None:
    out = tmp_path / "xmpp.json"
    subprocess.run(
        [sys.executable, str(ROOT / "bench" / "xmpp.py"), "--quick", "--json", str(out)],
        check=True,
        timeout=120,
        capture_output=True,
    )
    result = json.loads(out.read_text())
    assert result["held"] == result["server_bound"] == result["connections"] == 200
    assert result["bytes_per_connection"] > 0
    assert result["round_trips_per_s"] > 0 and result["p99_ms"] >= result["p50_ms"] > 0
