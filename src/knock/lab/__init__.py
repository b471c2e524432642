"""The NAT lab: a real address-and-port-restricted NAT between an ACS and its CPEs, built from
network namespaces, veth pairs and nftables (`nat`), and the `knock lab` commands (`cli`).

It shows what PROTOCOLS.md §3-4 argue: an HTTP connection request to a CPE's private address
cannot arrive, while a UDP one sent from the STUN server's own socket passes the NAT."""

from knock.lab.nat import NatLab
from knock.lab.netns import LabError
from knock.lab.stale import clean_stale

__all__ = ["LabError", "NatLab", "clean_stale"]
