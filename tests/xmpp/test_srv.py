"""DNS SRV for XMPP (RFC 6120 §3.2): the order of targets, and clients finding their server
through a real name server on loopback that the test runs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dns_server import DnsServer, running_dns
from knock.connreq.xmpp import XmppConnectionRequester
from knock.xmpp.accounts import MemoryAccounts
from knock.xmpp.c2s import Policy
from knock.xmpp.client import ClientConfig, TlsPolicy
from knock.xmpp.client_conn import ConnState, Status, XmppClient
from knock.xmpp.server import Listen, XmppServer
from knock.xmpp.srv import ServiceNotOffered, SrvRecord, SrvResolver, order_targets, targets
from xmpp_servers import account, running_knock

WAIT = 10.0


def test_targets_go_by_priority_then_weight() -> None:
    records = [
        SrvRecord(20, 0, 5222, "backup.example"),
        SrvRecord(10, 10, 5222, "light.example"),
        SrvRecord(10, 90, 5223, "heavy.example"),
    ]
    # A draw below 10/100 picks the light one first, above it the heavy one.
    assert order_targets(records, lambda: 0.05) == [
        ("light.example", 5222),
        ("heavy.example", 5223),
        ("backup.example", 5222),
    ]
    assert order_targets(records, lambda: 0.5) == [
        ("heavy.example", 5223),
        ("light.example", 5222),
        ("backup.example", 5222),
    ]


def test_no_record_falls_back_to_the_domain_and_a_dot_target_is_no_service() -> None:
    assert targets("example.net", [], 5222) == [("example.net", 5222)]
    with pytest.raises(ServiceNotOffered, match=r"_xmpp-client\._tcp\.example\.net .*'\.'"):
        targets("example.net", [SrvRecord(0, 0, 0, ".")], 5222)


@pytest.fixture
async def dns() -> AsyncIterator[DnsServer]:
    async with running_dns() as server:
        yield server


def resolver(dns: DnsServer) -> SrvResolver:
    return SrvResolver([("127.0.0.1", dns.port)], timeout=WAIT)


def client(jid: str, password: str, dns: DnsServer, port: int | None = None) -> XmppClient:
    return XmppClient(
        jid,
        password,
        port=port,
        config=ClientConfig(tls=TlsPolicy.NEVER),
        resolver=resolver(dns),
    )


async def test_the_srv_target_and_port_are_dialled(dns: DnsServer, tmp_path: Path) -> None:
    async with running_knock(tmp_path) as server:
        name = f"_xmpp-client._tcp.{server.domain}."
        # The first target has nothing listening: the client goes on to the second.
        dns.srv[name] = ["10 0 1 localhost.", f"20 0 {server.port} localhost."]
        jid, password = account(server)
        device = client(jid, password, dns)
        device.start()
        try:
            online = await asyncio.wait_for(device.wait_online(), WAIT)
        finally:
            await device.close()
        assert online.jid == jid
        assert dns.asked == [name]


async def test_the_acs_requester_finds_its_server_through_srv(
    dns: DnsServer, tmp_path: Path
) -> None:
    async with running_knock(tmp_path) as server:
        dns.srv[f"_xmpp-client._tcp.{server.domain}."] = [f"0 0 {server.port} localhost."]
        server.register("acs", "acs-pw")
        requester = XmppConnectionRequester(
            f"acs@{server.domain}/knock", "acs-pw", tls=TlsPolicy.NEVER, resolver=resolver(dns)
        )
        requester.start()
        try:
            status = await asyncio.wait_for(requester.wait_connected(), WAIT)
        finally:
            await requester.close()
        assert status.jid == f"acs@{server.domain}/knock"


async def test_without_a_record_the_domain_is_dialled(dns: DnsServer, tmp_path: Path) -> None:
    # A server for the domain "localhost", which the system resolves to this machine, on the
    # port the client is given as its fallback (5222 unless told).
    accounts = MemoryAccounts(iterations=64)
    accounts.add("dev", "dev-pw")
    server = XmppServer(Policy("localhost"), accounts, Listen("127.0.0.1", 0, 0, tmp_path))
    await server.start()
    try:
        device = client("dev@localhost/cwmp", "dev-pw", dns, port=server.port)
        device.start()
        try:
            online = await asyncio.wait_for(device.wait_online(), WAIT)
        finally:
            await device.close()
    finally:
        await server.close()
    assert online.jid == "dev@localhost/cwmp"
    assert dns.asked == ["_xmpp-client._tcp.localhost."]


async def test_a_dot_target_says_the_service_is_not_offered(dns: DnsServer) -> None:
    dns.srv["_xmpp-client._tcp.noxmpp.example."] = ["0 0 0 ."]
    failed: asyncio.Future[Status] = asyncio.get_running_loop().create_future()

    def on_status(_client: XmppClient, status: Status) -> None:
        if status.state is ConnState.DISCONNECTED and not failed.done():
            failed.set_result(status)

    device = XmppClient(
        "dev@noxmpp.example/cwmp",
        "pw",
        config=ClientConfig(tls=TlsPolicy.NEVER),
        resolver=resolver(dns),
        on_status=on_status,
    )
    device.start()
    try:
        reason = (await asyncio.wait_for(failed, WAIT)).reason
    finally:
        await device.close()
    assert "_xmpp-client._tcp.noxmpp.example has the SRV target '.'" in reason
    assert "offers no XMPP service" in reason and "give the XMPP server's host" in reason
