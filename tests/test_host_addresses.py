"""knock.hosts: host lists, dual-stack sockets, bracketed authorities, canonical addresses."""

from __future__ import annotations

import socket

import pytest

from knock.connreq.http import HttpConnectionRequester
from knock.hosts import (
    authority,
    bind_sockets,
    canonical_ip,
    dial_host,
    family,
    reachable_hosts,
    split_hosts,
    unbracketed_ipv6,
)
from knock.vocab import CrOutcome


def test_host_lists_split_on_commas_and_lose_brackets() -> None:
    assert split_hosts("0.0.0.0, [::]") == ["0.0.0.0", "::"]
    assert split_hosts("::1,::1") == ["::1"]
    assert split_hosts("") == [""]
    assert split_hosts(" , ") == [""]


def test_authorities_bracket_ipv6_literals() -> None:
    assert authority("::1", 80) == "[::1]:80"
    assert authority("192.0.2.1", 80) == "192.0.2.1:80"
    assert authority("acs.example", 7547) == "acs.example:7547"


def test_canonical_ip_follows_rfc_5952() -> None:
    assert canonical_ip("2001:DB8:0:0:0:0:0:1") == "2001:db8::1"
    assert canonical_ip("2001:db8:0:0:1:0:0:1") == "2001:db8::1:0:0:1"
    assert canonical_ip("[2001:0db8::0001]") == "2001:db8::1"
    assert canonical_ip("::ffff:192.0.2.7") == "192.0.2.7"
    assert canonical_ip("192.0.2.7") == "192.0.2.7"
    assert canonical_ip("cpe.example") == "cpe.example"


def test_the_family_of_an_exchange_is_that_of_its_peer() -> None:
    assert family("::1") == family("[2001:db8::1]") == "IPv6"
    assert family("192.0.2.7") == "IPv4"
    # A peer of a dual-stack listener came over IPv4, whatever the socket calls it.
    assert family("::ffff:127.0.0.1") == "IPv4"
    assert family("cpe.example") == ""


@pytest.mark.parametrize(
    ("hosts", "dialled"),
    [("0.0.0.0", "127.0.0.1"), ("", "127.0.0.1"), ("::", "::1"), ("::1,127.0.0.1", "::1")],
)
def test_in_process_clients_dial_loopback_for_a_wildcard(hosts: str, dialled: str) -> None:
    assert dial_host(hosts) == dialled


def _v6only(sock: socket.socket) -> int:
    return sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)


def test_a_lone_v6_wildcard_is_dual_stack_and_answers_ipv4() -> None:
    [sock] = bind_sockets("::", 0, socket.SOCK_STREAM)
    with sock:
        assert _v6only(sock) == 0
        port = sock.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            peer, _ = sock.accept()
            peer.close()
        hosts = reachable_hosts([sock])
        assert "127.0.0.1" in hosts and hosts[-1] in ("127.0.0.1", "::1")


def test_a_v6_wildcard_beside_an_ipv4_address_is_v6_only_on_the_same_port() -> None:
    sockets = bind_sockets("0.0.0.0,::", 0, socket.SOCK_DGRAM)
    try:
        v4, v6 = sockets
        assert v4.family == socket.AF_INET and v6.family == socket.AF_INET6
        assert _v6only(v6) == 1
        assert v4.getsockname()[1] == v6.getsockname()[1]
    finally:
        for sock in sockets:
            sock.close()


def test_a_taken_port_names_the_address() -> None:
    [held] = bind_sockets("::1", 0, socket.SOCK_STREAM)
    with held, pytest.raises(OSError, match=r"cannot bind \[::1\]:\d+"):
        bind_sockets("127.0.0.1,::1", held.getsockname()[1], socket.SOCK_STREAM)


@pytest.mark.parametrize(
    ("url", "unbracketed"),
    [
        ("http://::1:33889/cr", True),
        ("http://user@2001:db8::1/cr", True),
        ("http://[::1]:33889/cr", False),
        ("http://192.0.2.1:7547/cr", False),
        ("http://cpe.example/cr", False),
    ],
)
def test_unbracketed_ipv6_urls_are_told_apart(url: str, unbracketed: bool) -> None:
    assert unbracketed_ipv6(url) is unbracketed


async def test_the_acs_refuses_an_unbracketed_ipv6_connection_request_url() -> None:
    requester = HttpConnectionRequester()
    try:
        sent = await requester.send("http://::1:33889/cr", "u", "p")
    finally:
        await requester.close()
    assert sent.outcome is CrOutcome.REFUSED
    assert "names an IPv6 address without brackets" in sent.detail
    assert "http://[2001:db8::1]:port/path (RFC 3986 §3.2.2)" in sent.detail
