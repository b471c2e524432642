"""STUN through a load balancer: nftables rules for the balancer's machine, since HAProxy carries
no UDP (docs/deploy.md, "STUN and UDP connection requests").

Stateless on purpose. Inbound, a datagram to the public address's STUN port goes to the ACS its
source port hashes to, so one device's keep-alives keep reaching one ACS (which writes the
binding to PostgreSQL when it changes). Outbound, whatever any ACS sends from its STUN port
leaves with the public address as source: a UDP connection request from either ACS passes the
device's NAT, which admits only datagrams from the address and port its binding went to.
Connection tracking would get in the way: the reply tuple of an ACS that did not receive the
device's last datagram would clash with the other's, so these packets are not tracked at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

TABLE: Final = "knock_stun"


def ruleset(public: str, acs: Sequence[str], back_net: str, port: int) -> str:
    """The balancer's table: STUN spread over `acs`, their STUN replies and UDP connection
    requests sent as `public`, and the back network's TCP (HTTP connection requests to
    devices) masqueraded onto `public`."""
    spread = ", ".join(f"{i} : {address}" for i, address in enumerate(acs))
    sources = ", ".join(acs)
    return f"""\
table ip {TABLE} {{
    chain stateless {{
        type filter hook prerouting priority raw; policy accept;
        ip daddr {public} udp dport {port} notrack \\
            ip daddr set jhash udp sport mod {len(acs)} map {{ {spread} }}
        ip saddr {{ {sources} }} udp sport {port} notrack
    }}
    chain stateless_out {{
        # After routing: a packet whose source is already the balancer's own address would be
        # dropped as a martian on the way in.
        type filter hook postrouting priority srcnat; policy accept;
        ip saddr {{ {sources} }} udp sport {port} ip saddr set {public}
    }}
    chain postrouting {{
        type nat hook postrouting priority srcnat; policy accept;
        ip saddr {back_net} ip daddr != {back_net} meta l4proto tcp masquerade
    }}
}}
"""
