"""The XMPP client benchmark runs end to end in its --quick mode (figures are reported, never
asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_xmpp_client_bench_quick(tmp_path: Path) -> None:
    out = tmp_path / "xmpp_client.json"
    subprocess.run(
        [sys.executable, str(ROOT / "bench" / "xmpp_client.py"), "--quick", "--json", str(out)],
        check=True,
        timeout=300,
        capture_output=True,
    )
    result = json.loads(out.read_text())
    for library in ("knock", "slixmpp"):
        assert result[library]["connections"] == 50
        assert result[library]["round_trips"] > 0
