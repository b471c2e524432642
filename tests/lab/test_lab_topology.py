"""The lab's plan, checked without building it: documentation addresses only, no route out,
the router's rules, and names a cleaner can read."""

from __future__ import annotations

import ipaddress
import shutil
import subprocess

import pytest

from knock.lab import hosts, stun_lb, topology
from knock.lab.topology import Plan


def test_every_address_is_a_documentation_address() -> None:
    plan = Plan.make(topology.new_tag(), pub_hosts=200, lan_hosts=200)
    documentation = (topology.PUBLIC_NET, topology.LAN_NET)
    for pairs in plan.addresses().values():
        for _, address in pairs:
            interface = ipaddress.IPv4Interface(address)
            assert any(interface.network == net for net in documentation), address
    assert plan.pub_hosts[0] == "203.0.113.10" and plan.pub_hosts[-1] == "203.0.113.209"
    assert plan.lan_hosts[0] == "198.51.100.10" and plan.lan_hosts[-1] == "198.51.100.209"


def test_only_the_lan_has_a_route_and_it_goes_to_the_router() -> None:
    routes = Plan.make("knocklab-1-abcdef").routes()
    assert routes == {"pub": (), "nat": (), "lan": ("default via 198.51.100.1 dev eth0",)}


@pytest.mark.parametrize("count", [0, 201])
def test_host_counts_are_bounded(count: int) -> None:
    with pytest.raises(ValueError, match="1 to 200"):
        Plan.make("knocklab-1-abcdef", lan_hosts=count)


def test_the_router_masquerades_with_random_ports_and_admits_only_replies() -> None:
    rules = topology.ruleset((20000, 24999))
    assert "masquerade to :20000-24999 random" in rules
    assert "ct state established,related accept" in rules
    assert rules.count("policy drop") == 2  # forward and input: nothing unsolicited gets in
    assert 'oifname "wan0" ip saddr 198.51.100.0/24' in rules


def test_each_rebind_moves_to_a_new_port_block() -> None:
    blocks = [topology.port_range(generation) for generation in range(topology.PORT_BLOCKS)]
    assert len(set(blocks)) == topology.PORT_BLOCKS
    assert all(low >= 20000 and high <= 59999 for low, high in blocks)
    assert topology.port_range(topology.PORT_BLOCKS) == blocks[0]
    swap = topology.remasquerade(blocks[1])
    assert swap.startswith("flush chain inet knock_lab postrouting\n")
    assert ":25000-29999 random" in swap


def test_names_carry_the_owner_and_role() -> None:
    tag = topology.new_tag(pid=4242)
    parsed = topology.parse_name(f"{tag}-nat")
    assert parsed is not None
    assert (parsed.tag, parsed.pid, parsed.role) == (tag, 4242, "nat")
    for other in ("knocklab-1-abcdef-wan", "docker-1-abcdef-nat", "knocklab-x-abcdef-pub"):
        assert topology.parse_name(other) is None


def test_the_ipv6_plan_uses_documentation_prefixes_and_routes_the_cpes_prefix() -> None:
    plan = Plan.make("knocklab-1-abcdef", pub_hosts=2, lan_hosts=200, ipv6=True)
    documentation6 = ipaddress.IPv6Network("2001:db8::/32")
    for role, pairs in plan.addresses().items():
        for _, address in pairs:
            interface = ipaddress.ip_interface(address)
            if interface.version == 6:
                assert interface.network.subnet_of(documentation6), address
            else:  # pub alone is dual-stack, on RFC 5737's range
                assert role == "pub" and interface.network == topology.PUBLIC_NET, address
    assert plan.lan_hosts[0] == "2001:db8:2::a" and plan.pub_hosts[0] == "2001:db8:1::a"
    assert plan.routes() == {
        "pub": ("2001:db8:2::/64 via 2001:db8:1::1 dev eth0",),
        "nat": (),
        "lan": ("default via 2001:db8:2::1 dev eth0",),
    }


def test_the_ipv6_router_is_a_stateful_firewall_without_nat() -> None:
    rules = Plan.make("knocklab-1-abcdef", ipv6=True).ruleset((20000, 24999))
    assert "masquerade" not in rules and "type nat" not in rules
    assert "ct state established,related accept" in rules
    assert rules.count("policy drop") == 2
    assert 'iifname "wan0" counter name "unsolicited" drop' in rules


TEST_NETS = ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")


def test_the_hosts_lab_uses_documentation_addresses_only() -> None:
    documentation = [ipaddress.ip_network(n) for n in TEST_NETS]  # RFC 5737
    for address in [*hosts.MACHINES.values(), hosts.LB_BACK]:
        assert any(ipaddress.ip_address(address) in net for net in documentation), address


def test_stun_is_spread_statelessly_and_leaves_from_the_public_address() -> None:
    rules = stun_lb.ruleset("203.0.113.10", ["192.0.2.11", "192.0.2.12"], "192.0.2.0/24", 3478)
    assert "jhash udp sport mod 2 map { 0 : 192.0.2.11, 1 : 192.0.2.12 }" in rules
    assert rules.count("notrack") == 2  # both ways: no conntrack entry to clash
    assert "udp sport 3478 ip saddr set 203.0.113.10" in rules
    assert "hook postrouting priority srcnat" in rules  # after routing: no martian source
    nft = shutil.which("nft", path="/usr/sbin:/sbin:/usr/bin")
    assert nft is not None, "nft is missing: sh scripts/prepare-test-host.sh as root"
    done = subprocess.run([nft, "-c", "-f", "-"], input=rules, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
