"""The lab as a rich table, read back from the namespaces themselves rather than from the plan,
so what it shows is what the kernel has."""

from __future__ import annotations

import json
from typing import Any, Final

from rich.table import Table

from knock.lab import topology
from knock.lab.hosts import HostsLab
from knock.lab.nat import NatLab
from knock.lab.topology import Role

ROLE_TEXT: Final[dict[Role, str]] = {
    "pub": "ACS side",
    "nat": "router",
    "lan": "CPEs",
}


def _ip_json(lab: NatLab, role: Role, family: str, *what: str) -> list[dict[str, Any]]:
    out = lab.run(role, [lab.tools["ip"], "-j", family, *what]).stdout
    return list(json.loads(out or "[]"))


def _families(lab: NatLab) -> tuple[str, ...]:
    return ("-6", "-4") if lab.ipv6 else ("-4",)


def addresses(lab: NatLab, role: Role) -> list[str]:
    """`ifname address/prefix` for each address but loopback's and IPv6 link-local ones."""
    rows = []
    for family in _families(lab):
        for link in _ip_json(lab, role, family, "addr", "show"):
            if link["ifname"] == "lo":
                continue
            for info in link.get("addr_info", []):
                if info.get("scope") != "link":
                    rows.append(f"{link['ifname']} {info['local']}/{info['prefixlen']}")
    return rows


def routes(lab: NatLab, role: Role) -> list[str]:
    rows = []
    found = [r for f in _families(lab) for r in _ip_json(lab, role, f, "route", "show")]
    for route in found:
        if route["dst"].startswith("fe80:") or ("gateway" not in route and ":" in route["dst"]):
            continue  # link-local and connected IPv6 prefixes: the addresses say as much
        via = f" via {route['gateway']}" if "gateway" in route else ""
        rows.append(f"{route['dst']}{via} dev {route['dev']}")
    return rows


def lab_table(lab: NatLab) -> Table:
    """One row per namespace, then the router's rules, in a width a terminal can take."""
    kind = "IPv6 lab (firewall, no NAT)" if lab.ipv6 else "NAT lab"
    title = f"{kind}: namespaces {lab.tag}-{{pub,nat,lan}}"
    table = Table(title=title, show_lines=True)
    table.add_column("namespace", style="bold", no_wrap=True)
    table.add_column("addresses", no_wrap=True)
    table.add_column("routes", no_wrap=True)
    for role in topology.ROLES:
        table.add_row(
            f"{role}: {ROLE_TEXT[role]}",
            "\n".join(addresses(lab, role)),
            "\n".join(routes(lab, role)) or "[dim]none[/]",
        )
    return table


def rules_table(lab: NatLab) -> Table:
    """The router's behaviour, and the one route pub lacks on purpose."""
    table = Table(title="what the router does", show_header=False, show_lines=True)
    table.add_column("what", style="bold", no_wrap=True)
    table.add_column("rule", overflow="fold")
    if lab.ipv6:
        table.add_row(
            "firewall (nft)",
            "no NAT: the CPEs keep their own addresses. Only ct state established,related gets "
            "in (what a CPE opened, a UDP pinhole while its STUN keep-alives flow); a new "
            "connection from outside is dropped and counted",
        )
        table.add_row("forwarding", "net.ipv6.conf.all.forwarding=1 in the nat namespace only")
        table.add_row("pub", f"dual-stack; route to {topology.LAN_NET6} via the router")
        return table
    for rule in lab.nat_rules():
        table.add_row("NAT (nft)", rule)
    table.add_row(
        "inbound filter",
        "only ct state established,related: a reply passes only from the address and port "
        "the LAN sent to (address-and-port-restricted); the rest is dropped and counted",
    )
    table.add_row("forwarding", "net.ipv4.ip_forward=1 in the nat namespace only")
    table.add_row("pub", f"no route to {topology.LAN_NET}: private addresses are unreachable")
    return table


HOST_TEXT: Final = {
    "db": "PostgreSQL",
    "acs1": "knock serve --workers 2",
    "acs2": "knock serve --workers 2",
    "xmpp": "ejabberd",
    "lb": "HAProxy (CWMP, XMPP) + nftables (STUN)",
    "nat": "home gateway (a knock sim device) + NAT",
    "lan": "knock sim fleet behind the NAT",
}


def hosts_table(lab: HostsLab) -> Table:
    """The multi-host lab's machines, with the addresses the kernel has for them."""
    table = Table(title=f"Knock on several machines ({lab.tag}); devices use {lab.acs_url}")
    for column in ("machine", "namespace", "runs", "addresses"):
        table.add_column(column)
    ip = lab.nat.tools["ip"]
    for machine in lab.machines():
        out = lab.run(machine, [ip, "-j", "-4", "addr", "show"])
        found = [
            f"{link['ifname']} {info['local']}/{info['prefixlen']}"
            for link in json.loads(out or "[]")
            if link["ifname"] != "lo"
            for info in link.get("addr_info", [])
        ]
        table.add_row(machine, lab.namespace(machine), HOST_TEXT[machine], "\n".join(found))
    return table
