"""Every benchmark runs end to end in its --quick mode: the figures are reported, never asserted,
but their shape is, so a benchmark that breaks is noticed here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def quick(script: str, tmp_path: Path, timeout: float = 120, *args: str) -> Any:
    """Run bench/<script>.py --quick *args and return the JSON it wrote."""
    out = tmp_path / f"{script}.json"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / f"{script}.py"),
            "--quick",
            "--json",
            str(out),
            *args,
        ],
        check=True,
        timeout=timeout,
        capture_output=True,
        cwd=ROOT,
    )
    return json.loads(out.read_text())


def test_informs_on_both_stores_against_the_floor(tmp_path: Path) -> None:
    """The bootstrap, periodic and task rounds on SQLite and on a private PostgreSQL whose own
    CPU is counted, the floor's periodic round, and the ratios made of them."""
    result = quick("informs", tmp_path, 240)
    assert (result["devices"], result["connection"]) == (50, "new")
    for store in ("sqlite", "postgresql"):
        figures = result[store]
        for kind in ("bootstrap", "periodic", "task"):
            assert figures[f"{kind}_sessions"] == 50, (store, kind)
            assert figures[f"{kind}_cpu_ms_per_session"] > 0, (store, kind)
            assert figures[f"{kind}_p99_ms"] >= figures[f"{kind}_p50_ms"] > 0, (store, kind)
        assert result[f"{store}_periodic_over_floor"] > 0
        assert result[f"{store}_bootstrap_over_periodic"] > 0
    assert result["floor"]["periodic_sessions"] == 50
    assert "bootstrap_sessions" not in result["floor"]
    for kind in ("bootstrap", "periodic", "task"):
        assert result[f"postgresql_over_sqlite_{kind}"] > 0
    assert result["postgresql"]["periodic_db_cpu_ms_per_session"] > 0
    assert result["postgresql_server_cpu_ms_per_periodic"] > 0


def test_informs_kept_connections_on_sqlite(tmp_path: Path) -> None:
    result = quick("informs", tmp_path, 120, "--stores", "sqlite", "--connection", "kept")
    assert (result["connection"], result["sqlite"]["periodic_sessions"]) == ("kept", 50)
    assert "postgresql" not in result and "postgresql_over_sqlite_periodic" not in result


def test_connreq(tmp_path: Path) -> None:
    result = quick("connreq", tmp_path, timeout=180)
    assert result["delivered"] == result["devices"] == 30
    assert result["p99_ms"] >= result["p50_ms"] > 0


def test_connreq_by_xmpp_on_the_builtin_server_and_on_prosody(tmp_path: Path) -> None:
    result = quick("connreq", tmp_path, 240, "--method", "xmpp", "--server", "both")
    assert (result["method"], result["devices"]) == ("xmpp", 30)
    for server in ("builtin", "prosody"):
        figures = result[server]
        assert figures["outcomes"] == {"delivered": 30}, server
        assert figures["p99_ms"] >= figures["p50_ms"] > 0, server
    assert isinstance(result["prosody"]["xmpp_server_kib_per_device"], float)


def test_stun(tmp_path: Path) -> None:
    cases = quick("stun", tmp_path)["cases"]
    assert [(c["case"], c["window"]) for c in cases] == [
        ("keep-alive", 1),
        ("keep-alive", 64),
        ("signed", 64),
    ]
    for case in cases:
        assert case["responses"] >= case["requests"] - case["lost"]
        assert case["errors"] == 0
        assert case["per_s"] > 0 and case["p99_ms"] >= case["p50_ms"] > 0


def test_xmpp_servers(tmp_path: Path) -> None:
    """The built-in server, Prosody and ejabberd, each measured in the same run."""
    result = quick("xmpp", tmp_path, 240, "--server", "all")
    assert result["devices"] == 100
    for server in ("builtin", "prosody", "ejabberd"):
        figures = result[server]
        assert figures["held"] == figures["fan_out_devices"] == 100, server
        assert isinstance(figures["bytes_per_connection"], int), server
        assert figures["round_trips_per_s"] > 0 and figures["p99_ms"] >= figures["p50_ms"] > 0
        assert figures["fan_out_s"] > 0, server


def test_xmpp_client(tmp_path: Path) -> None:
    result = quick("xmpp_client", tmp_path, timeout=300)
    for library in ("knock", "slixmpp"):
        assert result[library]["connections"] == 50
        assert result[library]["round_trips"] > 0


def test_dashboard(tmp_path: Path) -> None:
    result = quick("dashboard", tmp_path)
    assert result["attempts_counted"] == result["attempts_in_window"] == 2000
    assert result["max_ms"] >= result["p50_ms"] > 0


def test_informs_against_one_and_two_processes_on_postgresql(
    tmp_path: Path, postgres_url: str
) -> None:
    result = quick("informs_scale", tmp_path, 180, "--store-url", postgres_url)
    assert result["devices"] == 30
    for processes in (1, 2):
        assert result[f"{processes}p_task_sessions"] == 30
        assert result[f"{processes}p_task_sessions_per_s"] > 0
        assert result[f"{processes}p_task_p99_ms"] >= result[f"{processes}p_task_p50_ms"] > 0
        for kind in ("bootstrap", "periodic", "task"):
            assert result[f"{processes}p_{kind}_acs_cpu_ms_per_session"] > 0
        assert 0 <= result[f"{processes}p_lock_wait_pct"] <= 100
        assert result[f"{processes}p_acs_rss_mib"] > 0
    assert result["2p_over_1p_by_acs_cpu_periodic"] > 0
    assert result["2p_over_1p_sessions_per_s"] > 0


def test_the_stores_share_of_a_session(tmp_path: Path) -> None:
    result = quick("store_sessions", tmp_path, 180)
    assert (result["devices"], result["history"]) == (20, 10)
    for store in ("sqlite", "postgresql"):
        assert result[store]["cpu_ms_per_session"] > 0
        assert result[store]["sessions_per_s"] > 0
    assert result["postgresql"]["db_cpu_ms_per_session"] > 0
    assert result["postgresql"]["over_sqlite"] > 0


def test_rss_of_a_process_that_knows_many_devices(tmp_path: Path) -> None:
    result = quick("rss_devices", tmp_path, 180)
    assert (result["devices"], result["sessions"], result["udp_requests"]) == (2000, 10, 3)
    assert result["udp_undelivered"] == 3  # nothing listens where the requests go
    assert result["rss_after_mib"] >= result["rss_at_start_mib"] > 0


def test_abuse(tmp_path: Path) -> None:
    """Each attack beside the same device's figures without it, on a fresh knock serve."""
    result = quick("abuse", tmp_path, 300)
    for scenario in ("slow clients", "query cost", "xmpp flood"):
        without, with_ = result[f"{scenario}: without"], result[f"{scenario}: with"]
        assert without["sessions_ok"] > 0 and without["sessions_failed"] == 0, scenario
        assert with_["sessions_ok"] > 0, scenario
        assert with_["session_p99_ms"] >= with_["session_p50_ms"] > 0, scenario
        assert isinstance(with_["serve_log_lines"], int) and with_["attack"], scenario
    flood = result["xmpp flood: with"]
    assert flood["cr_ok"] > 0 and flood["flood_stanzas_sent"] > 0
    assert flood["password_guesses"].get("temporary-auth-failure", 0) > 0
    assert result["open_files"].startswith("Open files: ")
