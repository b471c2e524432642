"""Small probes for the NAT lab tests: sockets bound inside a namespace, and bounded waits."""

from __future__ import annotations

import select
import socket
from pathlib import Path

from knock.lab import NatLab

REPLY_TIMEOUT = 5.0  # a safety net for a lost packet, never a wait for something to happen
# How long "nothing arrives" is watched for: a packet that passes a veth pair arrives in well
# under a millisecond, so this is generous and still keeps the module fast.
SILENCE = 0.2
PROBE = str(Path(__file__).with_name("udp_probe.py"))

Address = tuple[str, int]


def udp(lab: NatLab, role: str, host: str, port: int = 0) -> socket.socket:
    """A UDP socket in a namespace, bound to host:port (0: any free port)."""
    sock = lab.socket(role)
    sock.bind((host, port))
    sock.settimeout(REPLY_TIMEOUT)
    return sock


def tcp_listener(lab: NatLab, role: str, host: str) -> socket.socket:
    sock = lab.socket(role, socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((host, 0))
    sock.listen()
    sock.settimeout(REPLY_TIMEOUT)
    return sock


def receive(sock: socket.socket) -> tuple[bytes, Address]:
    data, (host, port) = sock.recvfrom(2048)
    return data, (host, port)


def silent(sock: socket.socket, within: float = SILENCE) -> bool:
    """True when nothing arrives on the socket within `within` seconds."""
    readable, _, _ = select.select([sock], [], [], within)
    return not readable


def learn_mapping(lab: NatLab, cpe: socket.socket, acs: socket.socket) -> Address:
    """The public address the NAT gives the CPE socket's flow to the ACS socket, as the ACS
    (a STUN server) sees it."""
    cpe.sendto(b"binding", acs.getsockname())
    data, source = receive(acs)
    assert data == b"binding"
    return source
