"""The STUN benchmark runs end to end in its --quick mode (figures are reported, never asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_stun_bench_quick(tmp_path: Path) -> None:
    out = tmp_path / "stun.json"
    subprocess.run(
        [sys.executable, str(ROOT / "bench" / "stun.py"), "--quick", "--json", str(out)],
        check=True,
        timeout=120,
        capture_output=True,
    )
    cases = json.loads(out.read_text())["cases"]
    assert [(c["case"], c["window"]) for c in cases] == [
        ("keep-alive", 1),
        ("keep-alive", 64),
        ("signed", 64),
    ]
    for case in cases:
        assert case["responses"] >= case["requests"] - case["lost"]
        assert case["errors"] == 0
        assert case["per_s"] > 0 and case["p99_ms"] >= case["p50_ms"] > 0
