"""What the labs look like, as data: names, addresses, routes and the router's nftables rules.

Two labs share the three namespaces (pub, the ACS side; nat, the router; lan, the CPEs): the NAT
lab (IPv4, the router masquerades the LAN) and the IPv6 lab (IPv6-only CPEs with addresses of
their own behind a stateful firewall and no NAT, as operators deploy IPv6; the ACS dual-stack).

Nothing here touches the system, so the plan can be checked (documentation ranges only, no route
out) without root. Addresses come from the documentation ranges (RFC 5737 for IPv4, 2001:db8::/32
of RFC 3849 for IPv6) and nowhere else, so a packet that ever escaped the lab could not reach a
real host.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
from dataclasses import dataclass
from typing import Final, Literal

Role = Literal["pub", "nat", "lan"]
ROLES: Final[tuple[Role, ...]] = ("pub", "nat", "lan")

PUBLIC_NET: Final = ipaddress.IPv4Network("203.0.113.0/24")  # RFC 5737 TEST-NET-3
LAN_NET: Final = ipaddress.IPv4Network("198.51.100.0/24")  # RFC 5737 TEST-NET-2
ROUTER_PUBLIC: Final = "203.0.113.1"
ROUTER_LAN: Final = "198.51.100.1"
# The IPv6 lab: no NAT, so the CPEs' prefix is routed (pub reaches it through the router).
PUBLIC_NET6: Final = ipaddress.IPv6Network("2001:db8:1::/64")
LAN_NET6: Final = ipaddress.IPv6Network("2001:db8:2::/64")
ROUTER_PUBLIC6: Final = "2001:db8:1::1"
ROUTER_LAN6: Final = "2001:db8:2::1"
FIRST_HOST: Final = 10  # .10 upwards: the ACS side's hosts, and the CPEs
MAX_HOSTS: Final = 200  # .10 to .209, clear of the router and the broadcast address

# Interface names live inside the lab's namespaces only, so they need no per-run tag.
PUB_IF: Final = "eth0"  # in pub, towards the router
WAN_IF: Final = "wan0"  # in nat, the router's public side
LAN_IF: Final = "lan0"  # in nat, the router's LAN side
CPE_IF: Final = "eth0"  # in lan, towards the router

TABLE: Final = "knock_lab"  # the router's nftables table (family inet), in the nat namespace only
DROP_COUNTER: Final = "unsolicited"
# Public ports the masquerade picks from; rebind() moves to the next block so a new mapping is
# sure to get a port the ACS has not seen. They sit above the well-known ports the ACS uses.
PORT_BLOCK: Final = 5000
PORT_BASE: Final = 20000
PORT_BLOCKS: Final = 8  # 20000-59999

PREFIX: Final = "knocklab"
# The NAT lab's roles, and the machines knock.lab.hosts adds to it.
_NAME = re.compile(
    rf"^{PREFIX}-(?P<pid>\d+)-(?P<nonce>[0-9a-f]{{6}})-(?P<role>pub|nat|lan|db|acs1|acs2|xmpp)$"
)


def new_tag(pid: int | None = None) -> str:
    """`knocklab-<pid>-<nonce>`: the pid lets a cleaner tell a dead run's leftovers from a live
    run's lab, the nonce keeps two labs of one process apart."""
    return f"{PREFIX}-{os.getpid() if pid is None else pid}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class LabName:
    """A namespace name taken apart: which run made it and which role it plays."""

    tag: str
    pid: int
    role: str  # a Role, or a machine of the multi-host lab


def parse_name(name: str) -> LabName | None:
    """The parts of a lab namespace's name, or None for a namespace that is not a lab's."""
    match = _NAME.match(name)
    if match is None:
        return None
    return LabName(tag=name.rsplit("-", 1)[0], pid=int(match["pid"]), role=match["role"])


def hosts(net: ipaddress.IPv4Network | ipaddress.IPv6Network, count: int) -> tuple[str, ...]:
    """`count` addresses from .10 up in `net`."""
    if not 1 <= count <= MAX_HOSTS:
        raise ValueError(f"a lab side has 1 to {MAX_HOSTS} hosts, not {count}")
    return tuple(str(net.network_address + FIRST_HOST + i) for i in range(count))


def port_range(generation: int) -> tuple[int, int]:
    """The masquerade's public port block for the given rebind generation (it wraps around)."""
    low = PORT_BASE + (generation % PORT_BLOCKS) * PORT_BLOCK
    return low, low + PORT_BLOCK - 1


def masquerade_rules(ports: tuple[int, int]) -> tuple[str, str]:
    """TCP and UDP get a public port from the block; anything else (ping) is masqueraded plainly,
    since only the transport protocols have ports to map."""
    # `random` makes the kernel pick a port even when the CPE's own one is free, so every
    # mapping is visibly translated (plain masquerade keeps the source port when it can).
    out = f'oifname "{WAN_IF}" ip saddr {LAN_NET}'
    return (
        f"{out} meta l4proto {{ tcp, udp }} masquerade to :{ports[0]}-{ports[1]} random",
        f"{out} masquerade",
    )


def _table(input_extra: str = "", postrouting: str = "") -> str:
    """The router's table: let in from the public side only what belongs to a connection the LAN
    opened, drop and count the rest; *input_extra* is one more accept rule for the router
    itself, *postrouting* a NAT chain."""
    extra = f"        {input_extra}\n" if input_extra else ""
    return f"""\
table inet {TABLE} {{
    counter {DROP_COUNTER} {{ }}
    chain forward {{
        type filter hook forward priority filter; policy drop;
        ct state established,related accept
        iifname "{LAN_IF}" oifname "{WAN_IF}" accept
        iifname "{WAN_IF}" counter name "{DROP_COUNTER}" drop
    }}
    chain input {{
        type filter hook input priority filter; policy drop;
        iifname "lo" accept
        ct state established,related accept
{extra}        iifname "{LAN_IF}" accept
        iifname "{WAN_IF}" counter name "{DROP_COUNTER}" drop
    }}
{postrouting}}}
"""


def ruleset(ports: tuple[int, int]) -> str:
    """The NAT lab's router: masquerade the LAN, and let in from the public side only what
    belongs to a connection the LAN opened. Linux conntrack matches a reply on the full
    5-tuple, so this is an address-and-port-restricted NAT: a UDP connection request passes
    only when it leaves from the very socket (the STUN server's) the CPE's packets went to."""
    rules = masquerade_rules(ports)
    return _table(
        postrouting=f"""\
    chain postrouting {{
        type nat hook postrouting priority srcnat; policy accept;
        {rules[0]}
        {rules[1]}
    }}
"""
    )


def firewall_ruleset() -> str:
    """The IPv6 lab's router: no NAT, and the stateful firewall an IPv6 CPE sits behind. What
    the LAN opened is let back in (a UDP pinhole lasts while the CPE keeps sending, as its STUN
    keep-alives do); a new connection from outside is dropped and counted. Neighbour discovery
    is let in, or the ACS side could not find the router at all."""
    return _table(input_extra="icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept")


def remasquerade(ports: tuple[int, int]) -> str:
    """One nft transaction that swaps the masquerade to another port block."""
    adds = "".join(
        f"add rule inet {TABLE} postrouting {rule}\n" for rule in masquerade_rules(ports)
    )
    return f"flush chain inet {TABLE} postrouting\n{adds}"


@dataclass(frozen=True)
class Plan:
    """Every address and route the lab will have; NatLab builds exactly this."""

    tag: str
    pub_hosts: tuple[str, ...]
    lan_hosts: tuple[str, ...]
    # The IPv6 lab: pub_hosts and lan_hosts are IPv6, pub has its IPv4 addresses besides.
    ipv6: bool = False

    @classmethod
    def make(cls, tag: str, *, pub_hosts: int = 1, lan_hosts: int = 1, ipv6: bool = False) -> Plan:
        if ipv6:
            return cls(tag, hosts(PUBLIC_NET6, pub_hosts), hosts(LAN_NET6, lan_hosts), ipv6=True)
        return cls(tag, hosts(PUBLIC_NET, pub_hosts), hosts(LAN_NET, lan_hosts))

    def namespace(self, role: Role) -> str:
        return f"{self.tag}-{role}"

    def addresses(self) -> dict[Role, tuple[tuple[str, str], ...]]:
        """(interface, address/prefix) per namespace."""
        if self.ipv6:
            return self._addresses6()
        pub = tuple((PUB_IF, f"{a}/{PUBLIC_NET.prefixlen}") for a in self.pub_hosts)
        lan = tuple((CPE_IF, f"{a}/{LAN_NET.prefixlen}") for a in self.lan_hosts)
        nat = (
            (WAN_IF, f"{ROUTER_PUBLIC}/{PUBLIC_NET.prefixlen}"),
            (LAN_IF, f"{ROUTER_LAN}/{LAN_NET.prefixlen}"),
        )
        return {"pub": pub, "nat": nat, "lan": lan}

    def _addresses6(self) -> dict[Role, tuple[tuple[str, str], ...]]:
        """The IPv6 lab's: pub dual-stack (its IPv4 addresses as in the NAT lab), the router on
        both IPv6 prefixes, the CPEs IPv6 only."""
        v4 = hosts(PUBLIC_NET, len(self.pub_hosts))
        pub = tuple((PUB_IF, f"{a}/{PUBLIC_NET6.prefixlen}") for a in self.pub_hosts) + tuple(
            (PUB_IF, f"{a}/{PUBLIC_NET.prefixlen}") for a in v4
        )
        lan = tuple((CPE_IF, f"{a}/{LAN_NET6.prefixlen}") for a in self.lan_hosts)
        nat = (
            (WAN_IF, f"{ROUTER_PUBLIC6}/{PUBLIC_NET6.prefixlen}"),
            (LAN_IF, f"{ROUTER_LAN6}/{LAN_NET6.prefixlen}"),
        )
        return {"pub": pub, "nat": nat, "lan": lan}

    def routes(self) -> dict[Role, tuple[str, ...]]:
        """Routes beyond the connected ones. In the NAT lab only the LAN has one, to the router:
        pub must not reach the LAN's private range. In the IPv6 lab the CPEs' prefix is routed
        (no NAT), so pub has a route to it through the router. Nothing routes towards the host."""
        if self.ipv6:
            return {
                "pub": (f"{LAN_NET6} via {ROUTER_PUBLIC6} dev {PUB_IF}",),
                "nat": (),
                "lan": (f"default via {ROUTER_LAN6} dev {CPE_IF}",),
            }
        return {"pub": (), "nat": (), "lan": (f"default via {ROUTER_LAN} dev {CPE_IF}",)}

    def ruleset(self, ports: tuple[int, int]) -> str:
        """The router's nftables rules: the NAT's, or the IPv6 lab's firewall."""
        return firewall_ruleset() if self.ipv6 else ruleset(ports)
