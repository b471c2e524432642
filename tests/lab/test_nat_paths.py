"""What a CPE behind the lab's NAT can and cannot be reached by: the facts UDP and HTTP
connection requests rest on (PROTOCOLS.md §3-4)."""

from __future__ import annotations

import errno
import ipaddress
import json
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from lab_support import PROBE, REPLY_TIMEOUT, learn_mapping, receive, silent, tcp_listener, udp

from knock.lab import NatLab, topology
from knock.lab.view import addresses, routes


def in_port_range(lab: NatLab, port: int) -> bool:
    low, high = lab.port_range
    return low <= port <= high


def test_addresses_and_routes_are_the_documentation_ranges_only(nat_lab: NatLab) -> None:
    documentation = (topology.PUBLIC_NET, topology.LAN_NET)
    for role in topology.ROLES:
        for row in addresses(nat_lab, role):
            address = ipaddress.IPv4Interface(row.split()[1])
            assert any(address.ip in net for net in documentation), row
    assert routes(nat_lab, "pub") == ["203.0.113.0/24 dev eth0"]  # nothing towards the LAN
    assert not any(route.startswith("default") for route in routes(nat_lab, "nat"))
    assert routes(nat_lab, "lan")[0] == "default via 198.51.100.1 dev eth0"
    assert nat_lab.call("nat", Path("/proc/sys/net/ipv4/ip_forward").read_text).strip() == "1"


def test_udp_from_the_lan_arrives_from_the_routers_public_address(nat_lab: NatLab) -> None:
    with (
        udp(nat_lab, "pub", nat_lab.acs_address) as acs,
        udp(nat_lab, "lan", nat_lab.cpe_address) as cpe,
    ):
        host, port = learn_mapping(nat_lab, cpe, acs)
        assert host == "203.0.113.1"
        assert port != cpe.getsockname()[1] and in_port_range(nat_lab, port)
        acs.sendto(b"reply", (host, port))  # from the very socket the CPE sent to: passes
        assert receive(cpe) == (b"reply", acs.getsockname())


def test_each_lan_address_gets_its_own_mapping(nat_lab: NatLab) -> None:
    with udp(nat_lab, "pub", nat_lab.acs_address) as acs:
        seen = set()
        for host in nat_lab.lan_addresses:
            with udp(nat_lab, "lan", host) as cpe:
                seen.add(learn_mapping(nat_lab, cpe, acs))
        assert {host for host, _ in seen} == {"203.0.113.1"}
        assert len(seen) == len(nat_lab.lan_addresses) == 3


def test_a_process_in_the_lan_is_natted_too(nat_lab: NatLab) -> None:
    """The same through `ip netns exec`, as `knock sim` will run in the lab."""
    with udp(nat_lab, "pub", nat_lab.acs_address) as acs:
        host, port = acs.getsockname()
        probe = nat_lab.popen(
            "lan",
            [sys.executable, PROBE, nat_lab.cpe_address, host, str(port)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert probe.stdout is not None
        local = json.loads(probe.stdout.readline())["local"]
        data, source = receive(acs)
        assert data == b"probe" and source[0] == "203.0.113.1" and source[1] != local[1]
        acs.sendto(b"pong", source)
        assert json.loads(probe.stdout.readline()) == {"reply": "pong", "from": [host, port]}
        assert probe.wait(REPLY_TIMEOUT) == 0


def test_the_acs_side_has_no_route_to_a_private_address(nat_lab: NatLab) -> None:
    with (
        udp(nat_lab, "lan", nat_lab.cpe_address) as cpe,
        udp(nat_lab, "pub", nat_lab.acs_address) as acs,
    ):
        with pytest.raises(OSError) as sent:
            acs.sendto(b"connection request", cpe.getsockname())
        assert sent.value.errno == errno.ENETUNREACH
        tcp = nat_lab.socket("pub", socket.AF_INET, socket.SOCK_STREAM)
        with tcp, pytest.raises(OSError) as connected:
            tcp.connect((nat_lab.cpe_address, 7547))
        assert connected.value.errno == errno.ENETUNREACH
        assert silent(cpe)


def test_even_with_a_route_the_router_lets_nothing_unsolicited_in(nat_lab: NatLab) -> None:
    """Should the ACS side route the LAN's range to the router, the filter still drops it."""
    ip, lan = nat_lab.tools["ip"], str(topology.LAN_NET)
    dropped = nat_lab.dropped()
    nat_lab.run("pub", [ip, "route", "add", lan, "via", nat_lab.router_public])
    try:
        with (
            udp(nat_lab, "lan", nat_lab.cpe_address) as cpe,
            udp(nat_lab, "pub", nat_lab.acs_address) as acs,
        ):
            acs.sendto(b"connection request", cpe.getsockname())
            assert silent(cpe)
    finally:
        nat_lab.run("pub", [ip, "route", "del", lan])
    assert nat_lab.dropped() == dropped + 1


@pytest.mark.parametrize("stranger", ["other port", "other address"])
def test_only_the_address_and_port_the_cpe_sent_to_gets_in(nat_lab: NatLab, stranger: str) -> None:
    """Address-and-port-restricted: a UDP connection request must leave from the STUN server's
    own socket; the same host's other port, or another host, is dropped."""
    with (
        udp(nat_lab, "pub", nat_lab.acs_address) as stun,
        udp(nat_lab, "lan", nat_lab.cpe_address) as cpe,
    ):
        mapping = learn_mapping(nat_lab, cpe, stun)
        host = nat_lab.acs_address if stranger == "other port" else nat_lab.pub_addresses[1]
        port = 0 if stranger == "other port" else stun.getsockname()[1]
        dropped = nat_lab.dropped()
        with udp(nat_lab, "pub", host, port) as other:
            other.sendto(b"from a stranger", mapping)
            assert silent(cpe)
        stun.sendto(b"from the STUN socket", mapping)
        assert receive(cpe) == (b"from the STUN socket", stun.getsockname())
        assert silent(cpe, 0)  # and nothing else queued
        assert nat_lab.dropped() == dropped + 1


def test_rebind_gives_the_next_packet_a_new_public_port(nat_lab: NatLab) -> None:
    with (
        udp(nat_lab, "pub", nat_lab.acs_address) as stun,
        udp(nat_lab, "lan", nat_lab.cpe_address) as cpe,
    ):
        before = learn_mapping(nat_lab, cpe, stun)
        block = nat_lab.rebind()
        after = learn_mapping(nat_lab, cpe, stun)  # the same CPE socket, the same flow
        assert after[0] == before[0] and after[1] != before[1]
        assert block == nat_lab.port_range and in_port_range(nat_lab, after[1])
        dropped = nat_lab.dropped()
        stun.sendto(b"to the old port", before)  # the NAT forgot it: a stale address fails
        stun.sendto(b"to the new port", after)
        assert receive(cpe) == (b"to the new port", stun.getsockname())
        assert silent(cpe)
        assert nat_lab.dropped() == dropped + 1


def test_rebind_without_flush_keeps_open_flows_and_moves_new_ones(nat_lab: NatLab) -> None:
    with (
        udp(nat_lab, "pub", nat_lab.acs_address) as stun,
        udp(nat_lab, "lan", nat_lab.cpe_address) as cpe,
    ):
        before = learn_mapping(nat_lab, cpe, stun)
        nat_lab.rebind(flush=False)
        assert learn_mapping(nat_lab, cpe, stun) == before  # conntrack still holds it
        with udp(nat_lab, "lan", nat_lab.cpe_address) as fresh:
            assert in_port_range(nat_lab, learn_mapping(nat_lab, fresh, stun)[1])


def test_tcp_from_the_lan_reaches_the_acs(nat_lab: NatLab) -> None:
    with tcp_listener(nat_lab, "pub", nat_lab.acs_address) as listener:
        host, port = listener.getsockname()
        client = (
            "import socket, sys\n"
            f"s = socket.create_connection(({host!r}, {port}), timeout={REPLY_TIMEOUT})\n"
            "s.sendall(b'POST /cwmp'); print(s.recv(100).decode())"
        )
        cpe = nat_lab.popen("lan", [sys.executable, "-c", client], stdout=subprocess.PIPE)
        conn, (peer, peer_port) = listener.accept()
        with conn:
            assert peer == "203.0.113.1" and in_port_range(nat_lab, peer_port)
            assert conn.recv(100) == b"POST /cwmp"
            conn.sendall(b"200 OK")
        out, _ = cpe.communicate(timeout=REPLY_TIMEOUT)
        assert out.decode().strip() == "200 OK"


async def test_http_works_cpe_to_acs_and_not_acs_to_private_cpe(nat_lab: NatLab) -> None:
    """The HTTP connection request's problem in one test: the CPE reaches the ACS (through
    the NAT), the ACS cannot reach the CPE's private address."""
    seen: list[str | None] = []

    async def inform(request: web.Request) -> web.Response:
        seen.append(request.remote)
        return web.Response(text="InformResponse")

    app = web.Application()
    app.router.add_post("/", inform)
    runner = web.AppRunner(app)
    await runner.setup()
    listener = tcp_listener(nat_lab, "pub", nat_lab.acs_address)
    port = listener.getsockname()[1]
    await web.SockSite(runner, listener).start()  # served by this loop, listening in pub
    timeout = aiohttp.ClientTimeout(total=REPLY_TIMEOUT)

    async def post_inform() -> str:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            url = f"http://{nat_lab.acs_address}:{port}/"
            async with session.post(url, data=b"Inform") as response:
                return await response.text()

    async def connection_request() -> str:
        url = f"http://{nat_lab.cpe_address}:7547/cr"
        async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as response:
            return await response.text()

    try:
        assert await nat_lab.run_coroutine("lan", post_inform) == "InformResponse"
        assert seen == ["203.0.113.1"]
        with pytest.raises(aiohttp.ClientConnectorError) as failed:
            await nat_lab.run_coroutine("pub", connection_request)
        assert failed.value.os_error.errno == errno.ENETUNREACH
    finally:
        await runner.cleanup()
