"""The STUN server over real loopback sockets."""

from __future__ import annotations

import logging
import os
import socket

import pytest
from stun_support import PASSWORD, USER, OpenClient, StartServer

from knock.connreq.udp import build_udp_cr, verify_udp_cr
from knock.stun.attributes import CRB_VALUE, AttributeType, ErrorCode
from knock.stun.codec import (
    MessageType,
    binding_request,
    binding_response,
    check_integrity,
    encode,
)
from knock.stun.service import BindingLearned, Counters


def txid() -> bytes:
    return os.urandom(16)


def tr111(
    request_id: bytes | None = None, *, password: str | None = None, binding_change: bool = False
) -> bytes:
    """A TR-111 keep-alive, large enough for a full unsigned answer over IPv4 (no unsigned answer
    is larger than its request)."""
    return binding_request(
        request_id or txid(),
        username=USER,
        password=password,
        connection_request_binding=True,
        binding_change=binding_change,
    )


async def test_binding_request_answered_with_the_client_address(
    start_server: StartServer, open_client: OpenClient
) -> None:
    server, client = await start_server(), await open_client()
    request_id = txid()
    reply = await client.ask(tr111(request_id), server.address)
    assert (reply.kind, reply.txid) == (MessageType.BINDING_RESPONSE, request_id)
    assert reply.address(AttributeType.MAPPED_ADDRESS) == client.address
    assert reply.address(AttributeType.SOURCE_ADDRESS) == server.address
    assert reply.address(AttributeType.CHANGED_ADDRESS) == server.address
    assert server.counters == Counters(requests=1, responses=1)


async def test_connection_request_binding_is_learned_and_announced(
    start_server: StartServer, open_client: OpenClient
) -> None:
    events: list[BindingLearned] = []
    server, client = await start_server(on_binding=events.append), await open_client()
    await client.ask(tr111(), server.address)
    await client.ask(tr111(binding_change=True), server.address)
    assert [(e.username, e.address, e.changed, e.binding_change_flag) for e in events] == [
        (USER, client.address, True, False),
        (USER, client.address, False, True),
    ]
    assert server.bindings[USER].address == client.address


async def test_a_new_source_port_changes_the_binding(
    start_server: StartServer, open_client: OpenClient
) -> None:
    events: list[BindingLearned] = []
    server = await start_server(on_binding=events.append)
    before, after = await open_client(), await open_client()
    await before.ask(tr111(), server.address)
    await after.ask(tr111(), server.address)
    assert [(e.address, e.changed) for e in events] == [
        (before.address, True),
        (after.address, True),
    ]
    assert server.bindings[USER].address == after.address


async def test_the_same_transaction_id_twice_gets_two_fresh_answers(
    start_server: StartServer, open_client: OpenClient
) -> None:
    server = await start_server()
    first, second = await open_client(), await open_client()
    datagram = tr111()
    for client in (first, second, first):
        reply = await client.ask(datagram, server.address)
        assert reply.address(AttributeType.MAPPED_ADDRESS) == client.address
    assert server.counters == Counters(requests=3, responses=3)


async def test_authentication(start_server: StartServer, open_client: OpenClient) -> None:
    events: list[BindingLearned] = []
    server = await start_server(require_auth=True, on_binding=events.append)
    client = await open_client()
    refused = await client.ask(tr111(), server.address)
    assert refused.error == ErrorCode(401, "Unauthorized")
    forged = await client.ask(tr111(password="guess"), server.address)
    assert forged.error == ErrorCode(401, "Unauthorized")
    signed = await client.ask(tr111(password=PASSWORD), server.address)
    assert signed.address(AttributeType.MAPPED_ADDRESS) == client.address
    assert check_integrity(signed, PASSWORD)
    assert [(e.address, e.authenticated) for e in events] == [(client.address, True)]
    assert server.counters == Counters(
        requests=3, responses=1, unauthorized=2, integrity_failures=1
    )


async def test_unknown_required_attribute_answered_420(
    start_server: StartServer, open_client: OpenClient
) -> None:
    server, client = await start_server(), await open_client()
    datagram = encode(
        MessageType.BINDING_REQUEST,
        txid(),
        [
            (AttributeType.USERNAME, USER.encode()),
            (AttributeType.CONNECTION_REQUEST_BINDING, CRB_VALUE),
            (0x0023, bytes(4)),
        ],
    )
    reply = await client.ask(datagram, server.address)
    assert reply.kind is MessageType.BINDING_ERROR_RESPONSE
    assert reply.error == ErrorCode(420, "Unknown Attribute")
    assert reply.unknown_attributes == (0x0023,)
    assert server.counters == Counters(requests=1, unknown_attributes=1)


async def test_garbage_is_dropped_counted_and_the_next_request_answered(
    start_server: StartServer, open_client: OpenClient
) -> None:
    server, client = await start_server(), await open_client()
    # asyncio does not send empty datagrams, so a plain socket does.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as plain:
        plain.sendto(b"", server.address)
    for garbage in (tr111()[:25], b"\xff" * 1400, b"GET / HTTP/1.1\r\n\r\n" + bytes(8)):
        client.send(garbage, server.address)
    request_id = txid()
    reply = await client.ask(tr111(request_id), server.address)
    # Datagrams on one loopback path arrive in order: the first reply is the valid request's.
    assert reply.txid == request_id
    assert server.counters == Counters(requests=1, responses=1, malformed=4)


async def test_send_to_leaves_from_the_stun_port(
    start_server: StartServer, open_client: OpenClient
) -> None:
    """A UDP connection request goes out of the socket the CPE's NAT binding points at."""
    events: list[BindingLearned] = []
    server, cpe = await start_server(on_binding=events.append), await open_client()
    await cpe.ask(tr111(), server.address)
    host, port = events[0].address
    cr = build_udp_cr(host, port, "cr-user", "cr-pass", 1120673700, 1, "cnonce")
    server.send_to(cr, events[0].address)
    datagram, source = await cpe.next()
    assert source == server.address
    assert verify_udp_cr(datagram, "cr-user", "cr-pass", None, None).msg_id == 1


async def test_ipv6_loopback(start_server: StartServer, open_client: OpenClient) -> None:
    server, client = await start_server("::1"), await open_client("::1")
    # Signed: an unsigned answer with three IPv6 addresses would be larger than the request.
    reply = await client.ask(tr111(password=PASSWORD), server.address)
    assert reply.address(AttributeType.MAPPED_ADDRESS) == client.address
    assert reply.address(AttributeType.SOURCE_ADDRESS) == server.address


async def test_a_wildcard_bind_names_no_address_of_its_own(start_server: StartServer) -> None:
    server = await start_server("0.0.0.0")
    assert server.service.address is None
    assert server.address[0] == "0.0.0.0"


@pytest.mark.parametrize(
    ("hosts", "bound"),
    [("::", [("::", 0)]), ("127.0.0.1,::1", [("127.0.0.1", None), ("::1", 1)])],
)
async def test_one_dual_stack_socket_or_a_list_answers_and_reaches_both_families(
    start_server: StartServer,
    open_client: OpenClient,
    hosts: str,
    bound: list[tuple[str, int | None]],
) -> None:
    """(address, IPV6_V6ONLY or None for IPv4) of each socket *hosts* gives."""
    learned: list[BindingLearned] = []
    server = await start_server(hosts, on_binding=learned.append)
    found = [
        (s.getsockname()[0], s.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY))
        if s.family == socket.AF_INET6
        else (s.getsockname()[0], None)
        for s in server.sockets
    ]
    assert found == bound
    port = server.address[1]
    for host in ("127.0.0.1", "::1"):
        client = await open_client(host)
        # Signed: over IPv6 an unsigned answer would be larger than the request (withheld).
        reply = await client.ask(tr111(password=PASSWORD), (host, port))
        # An IPv4 peer of a dual-stack socket (::ffff:127.0.0.1) is named as IPv4 (family 0x01).
        assert reply.address(AttributeType.MAPPED_ADDRESS) == client.address, host
        server.send_to(b"cr", client.address)
        assert await client.next() == (b"cr", (host, port))
        # The binding keeps the peer in the same form.
        await client.ask(tr111(password=PASSWORD), (host, port))
        assert learned[-1].address == client.address
        assert server.bindings[USER].address == client.address


async def test_send_to_a_family_the_server_does_not_listen_on_is_refused(
    start_server: StartServer,
) -> None:
    server = await start_server("127.0.0.1")
    with pytest.raises(OSError, match=r"no IPv6 socket to reach \[2001:db8::1\]:7"):
        server.send_to(b"cr", ("2001:db8::1", 7))


async def test_a_failing_hook_is_logged_and_the_server_goes_on(
    start_server: StartServer, open_client: OpenClient, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: BindingLearned) -> None:
        raise ZeroDivisionError

    server, client = await start_server(on_binding=broken), await open_client()
    with caplog.at_level(logging.ERROR, "knock.stun"):
        await client.ask(tr111(), server.address)
        await client.ask(tr111(), server.address)
    assert [r.getMessage() for r in caplog.records] == [f"the binding hook failed for {USER!r}"] * 2
    assert server.counters == Counters(requests=2, responses=2)


async def test_send_to_after_close_is_refused(start_server: StartServer) -> None:
    server = await start_server()
    await server.close()
    with pytest.raises(RuntimeError, match="not listening"):
        server.send_to(b"x", ("127.0.0.1", 9))


async def test_the_reply_on_the_wire_is_what_the_codec_builds(
    start_server: StartServer, open_client: OpenClient
) -> None:
    server, client = await start_server(), await open_client()
    request_id = txid()
    client.send(tr111(request_id), server.address)
    datagram, source = await client.next()
    expected = binding_response(
        request_id, client.address, source=server.address, changed=server.address
    )
    assert (datagram, source) == (expected, server.address)
