"""Connection requests to IPv6-only CPEs behind a stateful firewall (NatLab(ipv6=True)): a
dual-stack `knock serve` in pub, a `knock sim` device in lan with an address of its own
(2001:db8:2::a) and no NAT, started the way `knock lab nat --ipv6 --demo` starts them.

What operators meet on IPv6: the HTTP request reaches the device's own address and the firewall
drops it (counted there), while UDP gets in through the pinhole the device's STUN keep-alives
hold open and XMPP rides the connection the device opened."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from knock.lab import NatLab
from knock.lab.demo import DEVICE, Demo, expected_outcomes, start_demo
from knock.store import Store
from nat_lab import built

CPE = "2001:db8:2::a"
ACS = "2001:db8:1::a"


@pytest.fixture(scope="module")
def lab() -> Iterator[NatLab]:
    yield from built(NatLab(ipv6=True), "ipv6_lab")


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's files, its ACS's SQLite store among them."""
    return tmp_path_factory.mktemp("ipv6")


@pytest.fixture(scope="module")
def demo(lab: NatLab, folder: Path) -> Iterator[Demo]:
    running = start_demo(lab, folder)
    yield running
    running.close()


def test_the_plan_is_ipv6_documentation_addresses(lab: NatLab) -> None:
    assert (lab.acs_address, lab.cpe_address) == (ACS, CPE)
    assert lab.acs_hosts == f"{ACS},203.0.113.10"
    assert lab.nat_rules() == ()  # no NAT: the device's own address is what the ACS sees
    lan = lab.run("lan", ["ip", "-4", "-o", "addr", "show", "dev", "eth0"]).stdout
    assert lan.strip() == ""  # IPv6 only


async def test_http_is_dropped_by_the_firewall_and_counted(demo: Demo, lab: NatLab) -> None:
    before = lab.dropped()
    result = await demo.reach("http", wait_s=5)
    assert result["outcome"] == "timeout", result
    # The device's own, bracketed URL, and why nothing answered.
    assert result["detail"].startswith(f"no connection to http://[{CPE}]:"), result
    assert "firewall" in result["detail"]
    assert lab.dropped() > before


async def test_udp_through_the_pinhole_and_xmpp_are_delivered(demo: Demo) -> None:
    udp = await demo.reach("udp")
    assert (udp["outcome"], udp["method"]) == ("delivered", "udp"), udp
    assert f"to [{CPE}]:" in udp["detail"]  # no NAT: the device's own address and port
    xmpp = await demo.reach("xmpp")
    assert (xmpp["outcome"], xmpp["method"]) == ("delivered", "xmpp"), xmpp


async def test_the_default_order_reports_http_blocked_and_falls_back(demo: Demo) -> None:
    results = await demo.reach_each()
    assert [r["outcome"] for r in results] == expected_outcomes(True, ipv6=True), results
    attempts = [(a["method"], a["outcome"]) for a in results[-1]["attempts"]]
    assert attempts == [("http", "timeout"), ("udp", "delivered")], results[-1]


def test_knock_cr_in_pub_shows_each_attempt(demo: Demo, lab: NatLab) -> None:
    done = lab.run(
        "pub",
        [sys.executable, "-m", "knock", "cr", DEVICE, "--nbi", demo.nbi, "--timeout", "20"],
        env={**os.environ, "COLUMNS": "300"},
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "timeout" in done.stdout and f"http://[{CPE}]:" in done.stdout, done.stdout
    assert "delivered by udp" in done.stdout, done.stdout


async def test_the_store_holds_the_devices_own_address(demo: Demo, folder: Path) -> None:
    store = await Store.open(f"sqlite:///{folder / 'knock.db'}")
    try:
        target = await store.get_cr_target(DEVICE)
    finally:
        await store.close()
    assert target is not None and target.stun_binding is not None
    assert target.stun_binding[0] == CPE  # canonical (RFC 5952), as the kernel reports it
