"""Connection requests through a real NAT: `knock serve` on the public side, `knock sim` devices on
a private LAN behind an address-and-port-restricted nftables NAT (knock.lab).

What Annex G and Annex K are for, shown for real: an HTTP request to the device's private
ConnectionRequestURL cannot get there; a UDP request reaches it through the binding its STUN
keep-alives hold open, because it leaves from the STUN server's own socket; an XMPP request rides
the connection the device opened; the dispatcher falls back from HTTP by itself; and after the NAT
forgets its mappings the device's next keep-alive tells the ACS its new address."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

from knock.lab import NatLab

DEVICE = "00D09E-KnockBox-SIM000001"
NBI = "http://127.0.0.1:7557"  # the NBI listens on the public side's own loopback
BOOT_S = 60.0


@dataclass
class Nat:
    lab: NatLab
    serve: subprocess.Popen[str]
    sim: subprocess.Popen[str]

    def cr(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`knock cr` run on the public side, next to the NBI."""
        return self.lab.run(
            "pub",
            [sys.executable, "-m", "knock", "cr", DEVICE, "--nbi", NBI, *args],
            check=False,
            env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
        )


def wait_for_line(stream: IO[str] | None, done: str, seconds: float) -> str:
    """Read lines until one contains every `key=value` of *done* (space separated)."""
    assert stream is not None
    wanted = done.split()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        if all(f" {pair} " in f" {line.strip()} " for pair in wanted):
            return line
    raise AssertionError(f"no line with {done!r} within {seconds} s")


@pytest.fixture(scope="module")
def nat(nat_lab: NatLab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nat]:
    folder: Path = tmp_path_factory.mktemp("nat")
    acs = nat_lab.acs_address
    serve = nat_lab.python(
        "pub", "-m", "knock", "serve",
        "--cwmp-host", acs, "--stun-host", acs, "--xmpp-host", acs,
        "--nbi-host", "127.0.0.1", "--store-url", f"sqlite:///{folder / 'knock.db'}",
        "--data-dir", str(folder / "data"), "--log-level", "warning",
        # HTTP first, so that the dispatcher's fallback shows; quick keep-alives and answers.
        "--cr-order", "http,udp,xmpp", "--cr-timeout", "2", "--cr-session-wait", "10",
        "--stun-keepalive-min", "1", "--stun-keepalive-max", "2",
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    wait_for_line(serve.stdout, "XMPP", 20)
    sim = nat_lab.python(
        "lan", "-m", "knock", "sim", "--acs", f"http://{acs}:7547/", "--count", "1",
        "--cr", "http,udp,xmpp", "--cr-host", nat_lab.cpe_address, "--cr-rate-limit", "0",
        "--periodic-interval", "0", "--no-live",
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    # Provisioned, bound through the NAT, logged in, and both reported (4 VALUE CHANGE).
    wait_for_line(sim.stdout, "online=1 in_session=0 stun_bound=1 xmpp_online=1", BOOT_S)
    yield Nat(nat_lab, serve, sim)
    for process in (sim, serve):
        process.terminate()
        process.wait(10)


def test_http_to_the_private_address_is_unreachable(nat: Nat) -> None:
    answer = nat.cr("--via", "http", "--timeout", "5")
    assert answer.returncode == 1
    assert "unreachable" in answer.stderr
    assert "198.51.100.10" in answer.stdout  # the private URL the device reported


def test_udp_through_the_stun_binding_is_delivered(nat: Nat) -> None:
    answer = nat.cr("--via", "udp")
    assert answer.returncode == 0, answer.stderr
    assert "delivered by udp" in answer.stdout
    assert "203.0.113.1:" in answer.stdout  # sent to the router's public side, not the LAN


def test_xmpp_over_the_devices_own_connection_is_delivered(nat: Nat) -> None:
    answer = nat.cr("--via", "xmpp")
    assert answer.returncode == 0, answer.stderr
    assert "delivered by xmpp" in answer.stdout


def test_the_dispatcher_falls_back_from_http_by_itself(nat: Nat) -> None:
    answer = nat.cr()
    assert answer.returncode == 0, answer.stderr
    rows = [line for line in answer.stdout.splitlines() if "│ http" in line or "│ udp" in line]
    assert "unreachable" in rows[0] and "delivered" in rows[1]


def test_after_the_nat_rebinds_the_new_address_is_learned_and_used(nat: Nat) -> None:
    nat.lab.rebind()
    # The stale binding may eat a request or two until the device's next keep-alive (1-2 s)
    # tells STUN where it is now.
    deadline = time.monotonic() + 20
    while True:
        answer = nat.cr("--via", "udp", "--timeout", "3")
        if answer.returncode == 0 or time.monotonic() > deadline:
            break
    assert answer.returncode == 0, answer.stderr
    assert "delivered by udp" in answer.stdout
