"""A listener whose port another program holds stops `knock serve` and `knock check` with a
message naming the address, the transport and the option that moves it (issue 18.4); and
`knock check` takes knock serve's names for the settings both have, its old ones still working."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

KNOCK = [sys.executable, "-m", "knock"]
# Every other port free (0) and on loopback, so that only the held one clashes.
FREE = ["--stun-port", "0", "--xmpp-port", "0", "--xmpp-tls-port", "0"]


@pytest.fixture
def held_udp() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.fixture
def held_tcp() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def run(args: list[str]) -> subprocess.CompletedProcess[str]:
    env = {"COLUMNS": "300", "PATH": "/usr/bin:/bin"}
    return subprocess.run(KNOCK + args, capture_output=True, text=True, timeout=120, env=env)


def one_line(text: str) -> str:
    return " ".join(text.split())


def test_serve_names_the_stun_port_in_use_and_its_option(held_udp: int, tmp_path: Path) -> None:
    done = run(
        [
            "serve",
            *FREE,
            "--stun-port",
            str(held_udp),
            "--cwmp-host",
            "127.0.0.1",
            "--stun-host",
            "127.0.0.1",
            "--xmpp-host",
            "127.0.0.1",
            "--cwmp-port",
            "0",
            "--nbi-port",
            "0",
            "--files-port",
            "0",
            "--data-dir",
            str(tmp_path),
            "--store-url",
            f"sqlite:///{tmp_path / 'knock.db'}",
        ]
    )
    assert done.returncode == 1, done.stderr
    assert one_line(done.stderr).endswith(
        f"error: cannot bind 127.0.0.1:{held_udp}/udp: the port is in use by another program "
        "(another knock serve or knock check?): stop it or give another port with --stun-port"
    )


def test_check_names_the_cwmp_port_in_use_and_takes_the_old_option_names(
    held_tcp: int,
) -> None:
    done = run(
        [
            "check",
            "--host",
            "127.0.0.1",
            *FREE,
            "--cwmp-port",
            str(held_tcp),
            "--cr-attempts",
            "4",
            "--no-stun-auth",
        ]
    )
    assert done.returncode == 2, done.stderr
    err = one_line(done.stderr)
    assert "warning: --cr-attempts is now --udp-cr-repeat, the name knock serve uses" in err
    assert "warning: --stun-auth is now --stun-require-auth" in err
    assert err.endswith(
        f"error: cannot bind 127.0.0.1:{held_tcp}/tcp: the port is in use by another program "
        "(another knock serve or knock check?): stop it or give another port with --cwmp-port"
    )


def test_check_help_uses_knock_serves_names() -> None:
    helped = run(["check", "--help"]).stdout
    for name in ("--stun-require-auth", "--udp-cr-repeat", "--udp-cr-interval"):
        assert name in helped
    for old in ("--stun-auth", "--cr-attempts", "--cr-interval"):
        assert old not in helped
