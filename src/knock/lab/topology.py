"""What the NAT lab looks like, as data: names, addresses, routes and the router's nftables rules.

Nothing here touches the system, so the plan can be checked (documentation ranges only, no route
out) without root. Addresses come from RFC 5737's documentation ranges and nowhere else, so a
packet that ever escaped the lab could not reach a real host.
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


def hosts(net: ipaddress.IPv4Network, count: int) -> tuple[str, ...]:
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


def ruleset(ports: tuple[int, int]) -> str:
    """The router's rules: masquerade the LAN, and let in from the public side only what belongs
    to a connection the LAN opened. Linux conntrack matches a reply on the full 5-tuple, so this
    is an address-and-port-restricted NAT: a UDP connection request passes only when it leaves
    from the very socket (the STUN server's) the CPE's packets went to."""
    rules = masquerade_rules(ports)
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
        iifname "{LAN_IF}" accept
        iifname "{WAN_IF}" counter name "{DROP_COUNTER}" drop
    }}
    chain postrouting {{
        type nat hook postrouting priority srcnat; policy accept;
        {rules[0]}
        {rules[1]}
    }}
}}
"""


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

    @classmethod
    def make(cls, tag: str, *, pub_hosts: int = 1, lan_hosts: int = 1) -> Plan:
        return cls(tag, hosts(PUBLIC_NET, pub_hosts), hosts(LAN_NET, lan_hosts))

    def namespace(self, role: Role) -> str:
        return f"{self.tag}-{role}"

    def addresses(self) -> dict[Role, tuple[tuple[str, str], ...]]:
        """(interface, address/prefix) per namespace."""
        pub = tuple((PUB_IF, f"{a}/{PUBLIC_NET.prefixlen}") for a in self.pub_hosts)
        lan = tuple((CPE_IF, f"{a}/{LAN_NET.prefixlen}") for a in self.lan_hosts)
        nat = (
            (WAN_IF, f"{ROUTER_PUBLIC}/{PUBLIC_NET.prefixlen}"),
            (LAN_IF, f"{ROUTER_LAN}/{LAN_NET.prefixlen}"),
        )
        return {"pub": pub, "nat": nat, "lan": lan}

    def routes(self) -> dict[Role, tuple[str, ...]]:
        """Routes beyond the connected ones. Only the LAN has one, to the router: pub must not
        reach the LAN's private range, and nothing routes towards the host."""
        return {"pub": (), "nat": (), "lan": (f"default via {ROUTER_LAN} dev {CPE_IF}",)}
