"""Connection requests through a real NAT: `knock serve` on the public side, a `knock sim` device
on a private LAN behind an address-and-port-restricted nftables NAT (knock.lab), started the way
`knock lab nat --demo` starts them.

What Annex G and Annex K are for, shown for real: an HTTP request to the device's private
ConnectionRequestURL cannot get there; a UDP request reaches it through the binding its STUN
keep-alives hold open, because it leaves from the STUN server's own socket; an XMPP request rides
the connection the device opened; the dispatcher falls back from HTTP by itself; and after the NAT
forgets its mappings the device's next keep-alive tells the ACS its new address, and the one after
flags the change with BINDING-CHANGE (TR-111), which the ACS counts in its metrics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from knock.lab import NatLab
from knock.lab.demo import DEVICE, Demo, start_demo
from knock.store import Store
from prom import Samples, parse, value

BINDING_CHANGES = "knock_stun_binding_changes_total"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's files, its ACS's SQLite store among them."""
    return tmp_path_factory.mktemp("nat")


@pytest.fixture(scope="module")
def demo(nat_lab: NatLab, folder: Path) -> Iterator[Demo]:
    running = start_demo(nat_lab, folder)
    yield running
    running.close()


async def scrape(demo: Demo) -> Samples:
    """The ACS's /metrics, read from its side of the NAT."""
    assert demo.lab is not None

    async def get() -> str:
        async with aiohttp.ClientSession() as http, http.get(demo.nbi + "/metrics") as r:
            assert r.status == 200, await r.text()
            return await r.text()

    return parse(await demo.lab.run_coroutine("pub", get))


async def stored_binding(folder: Path) -> tuple[str, int] | None:
    """The device's public address as the ACS's store holds it (what any ACS process uses)."""
    store = await Store.open(f"sqlite:///{folder / 'knock.db'}")
    try:
        target = await store.get_cr_target(DEVICE)
    finally:
        await store.close()
    assert target is not None
    return target.stun_binding


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


async def test_after_the_nat_rebinds_the_new_address_is_learned_and_used(
    demo: Demo, folder: Path
) -> None:
    assert demo.lab is not None
    before = await stored_binding(folder)
    assert before is not None and before[0] == demo.lab.router_public
    flagged = value(await scrape(demo), BINDING_CHANGES)
    low, high = demo.lab.rebind()
    # The stale binding may lose a request until the device's next keep-alive (1-2 s) tells
    # STUN where it is now.
    deadline = time.monotonic() + 20
    while True:
        result = await demo.reach("udp", wait_s=3)
        if result["outcome"] == "delivered" or time.monotonic() > deadline:
            break
    assert (result["outcome"], result["method"]) == ("delivered", "udp"), result
    # The device sees its new MAPPED-ADDRESS in the answer to its first keep-alive through the
    # new mapping, and flags it in the next one, a keep-alive period later (1-2 s here).
    deadline = time.monotonic() + 20
    while (now := value(await scrape(demo), BINDING_CHANGES)) == flagged:
        assert time.monotonic() < deadline, "no Binding Request with BINDING-CHANGE in 20 s"
        await asyncio.sleep(0.2)
    assert now >= flagged + 1
    after = await stored_binding(folder)
    assert after is not None
    host, port = after
    assert host == demo.lab.router_public
    assert low <= port <= high, f"port {port} is not from the NAT's new block {low}-{high}"
    assert port != before[1]
