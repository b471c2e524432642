"""Connection requests through a real NAT: `knock serve` on the public side, a `knock sim` device
on a private LAN behind an address-and-port-restricted nftables NAT (knock.lab), started the way
`knock lab nat --demo` starts them.

What Annex G and Annex K are for, shown for real: an HTTP request to the device's private
ConnectionRequestURL cannot get there; a UDP request reaches it through the binding its STUN
keep-alives hold open, because it leaves from the STUN server's own socket; an XMPP request rides
the connection the device opened; the dispatcher falls back from HTTP by itself; and after the NAT
forgets its mappings the device's next keep-alive tells the ACS its new address."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from knock.lab import NatLab
from knock.lab.demo import Demo, start_demo


@pytest.fixture(scope="module")
def demo(nat_lab: NatLab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    running = start_demo(nat_lab, tmp_path_factory.mktemp("nat"))
    yield running
    running.close()


async def test_http_to_the_private_address_is_unreachable(demo: Demo) -> None:
    result = await demo.reach("http", wait_s=5)
    assert result["outcome"] == "unreachable"
    assert "198.51.100.10" in result["detail"]  # the private URL the device reported


async def test_udp_through_the_stun_binding_is_delivered(demo: Demo) -> None:
    result = await demo.reach("udp")
    assert (result["outcome"], result["method"]) == ("delivered", "udp"), result
    assert "to 203.0.113.1:" in result["detail"]  # the router's public side, not the LAN


async def test_xmpp_over_the_devices_own_connection_is_delivered(demo: Demo) -> None:
    result = await demo.reach("xmpp")
    assert (result["outcome"], result["method"]) == ("delivered", "xmpp"), result


async def test_the_dispatcher_falls_back_from_http_by_itself(demo: Demo) -> None:
    result = await demo.reach(None)
    attempts = [(a["method"], a["outcome"]) for a in result["attempts"]]
    assert attempts == [("http", "unreachable"), ("udp", "delivered")], result


async def test_after_the_nat_rebinds_the_new_address_is_learned_and_used(demo: Demo) -> None:
    demo.lab.rebind()
    # The stale binding may lose a request until the device's next keep-alive (1-2 s) tells
    # STUN where it is now.
    deadline = time.monotonic() + 20
    while True:
        result = await demo.reach("udp", wait_s=3)
        if result["outcome"] == "delivered" or time.monotonic() > deadline:
            break
    assert (result["outcome"], result["method"]) == ("delivered", "udp"), result
