"""`knock demo --once` as a newcomer runs it: a real process that starts the ACS and a fleet,
sends a connection request by each method and one by the dispatcher's choice, prints the table
and exits. Behind the NAT lab (CI runs as root) and on loopback (--no-nat)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROWS = ("http", "udp", "xmpp", "any")


def run_demo(tmp_path: Path, *flags: str) -> tuple[int, str, dict[str, list[str]]]:
    """Exit status, output, and each table row's cells by what was asked."""
    done = subprocess.run(
        [sys.executable, "-m", "knock", "demo", "--once", "--devices", "2", *flags],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
        env={**os.environ, "COLUMNS": "400"},  # one line per table row
    )
    rows: dict[str, list[str]] = {}
    for line in done.stdout.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("│").split("│")]
        if len(cells) == 5 and cells[0].split(" ")[0] in ROWS:
            rows[cells[0].split(" ")[0]] = cells
    return done.returncode, done.stdout + done.stderr, rows


def outcomes(rows: dict[str, list[str]]) -> dict[str, tuple[str, str]]:
    """What was asked -> (outcome, the method that delivered or was tried last)."""
    return {asked: (cells[1], cells[2]) for asked, cells in rows.items()}


def test_on_loopback_every_method_delivers(tmp_path: Path) -> None:
    status, output, rows = run_demo(tmp_path, "--no-nat", "--nbi-port", "0")
    assert status == 0, output
    assert "on 127.0.0.1" in output
    assert outcomes(rows) == {
        "http": ("delivered", "http"),
        "udp": ("delivered", "udp"),
        "xmpp": ("delivered", "xmpp"),
        "any": ("delivered", "http"),  # cr_order http,udp,xmpp: HTTP reaches on loopback
    }, output
    assert all(cells[3].endswith(" ms") for cells in rows.values()), output
    assert "Dashboard" not in output  # --once


def test_behind_the_nat_http_fails_and_the_dispatcher_falls_back(tmp_path: Path) -> None:
    status, output, rows = run_demo(tmp_path)
    assert status == 0, output
    assert "behind the NAT lab" in output, "knock demo needs root for the NAT lab"
    assert outcomes(rows) == {
        "http": ("unreachable", "http"),
        "udp": ("delivered", "udp"),
        "xmpp": ("delivered", "xmpp"),
        "any": ("delivered", "udp"),
    }, output
    assert rows["http"][3] == "" and rows["any"][4].startswith("http: unreachable"), output


def test_behind_the_ipv6_firewall_http_is_dropped_and_the_dispatcher_falls_back(
    tmp_path: Path,
) -> None:
    status, output, rows = run_demo(tmp_path, "--ipv6")
    assert status == 0, output
    assert "behind the IPv6 lab" in output, "knock demo --ipv6 needs root for the lab"
    assert outcomes(rows) == {
        "http": ("timeout", "http"),
        "udp": ("delivered", "udp"),
        "xmpp": ("delivered", "xmpp"),
        "any": ("delivered", "udp"),
    }, output
    assert rows["any"][4].startswith("http: timeout (no connection to http://[2001:db8:2::"), output
