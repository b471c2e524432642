"""UDP connection requests (Annex G): the ACS learns the device's address through its own STUN
server and sends the signed datagram from the STUN socket. The device side here is scripted with
Knock's own STUN and UDP CR cores over real loopback sockets."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, cast

import aiohttp
import pytest
from scripted_cpe import ScriptedCpe

from knock.connreq.udp import verify_udp_cr
from knock.server import Running
from knock.stun.codec import MessageType, binding_request, parse
from knock.vocab import CrMethod, CrOutcome
from prom import scrape, value
from serve_support import stun_outcome_is

MS = "Device.ManagementServer."


class DeviceSocket(asyncio.DatagramProtocol):
    """The CPE's UDP connection-request port, which also talks STUN."""

    def __init__(self) -> None:
        self.received: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.put_nowait((data, addr))

    async def exchange(self, datagram: bytes, to: tuple[str, int]) -> bytes:
        assert self.transport is not None
        self.transport.sendto(datagram, to)
        data, _ = await asyncio.wait_for(self.received.get(), 5)
        return data


@dataclass
class UdpLab:
    acs: Running
    cpe: ScriptedCpe
    socket: DeviceSocket
    sent: dict[str, str]


@pytest.fixture
async def udp_lab(start_acs: Any) -> AsyncIterator[UdpLab]:
    acs: Running = await start_acs(cr_provision="random", cr_session_wait=5.0, udp_cr_interval=0.05)
    assert acs.stun is not None
    loop = asyncio.get_running_loop()
    transport, device = await loop.create_datagram_endpoint(
        DeviceSocket, local_addr=("127.0.0.1", 0)
    )
    async with ScriptedCpe(acs.acs_url) as cpe:
        cpe.params[f"{MS}STUNEnable"] = ("0", "xsd:boolean")
        cpe.params[f"{MS}ConnectionRequestURL"] = ("http://127.0.0.1:9/unreachable", "xsd:string")
        await cpe.inform("0 BOOTSTRAP")
        sent, last = await cpe.accept_provisioning(await cpe.empty())
        assert last.status == 204
        yield UdpLab(acs, cpe, device, sent)
    transport.close()


async def keep_alive(lab: UdpLab) -> None:
    """TR-111 Binding Requests: refused unsigned (401), accepted signed with STUNPassword."""
    assert lab.acs.stun is not None
    stun = ("127.0.0.1", lab.acs.stun.address[1])
    user, password = lab.sent[f"{MS}STUNUsername"], lab.sent[f"{MS}STUNPassword"]
    unsigned = binding_request(os.urandom(16), username=user, connection_request_binding=True)
    assert (
        parse(await lab.socket.exchange(unsigned, stun)).kind == MessageType.BINDING_ERROR_RESPONSE
    )
    signed = binding_request(
        os.urandom(16), username=user, password=password, connection_request_binding=True
    )
    assert parse(await lab.socket.exchange(signed, stun)).kind == MessageType.BINDING_RESPONSE


async def test_provisioning_sets_stun_on_a_stun_capable_device(udp_lab: UdpLab) -> None:
    assert udp_lab.acs.stun is not None
    assert udp_lab.sent[f"{MS}STUNEnable"] == "1"
    assert udp_lab.sent[f"{MS}STUNServerPort"] == str(udp_lab.acs.stun.address[1])
    assert udp_lab.sent[f"{MS}STUNServerAddress"] == "127.0.0.1"
    accounts = await udp_lab.acs.store.stun_passwords()
    assert accounts == {udp_lab.sent[f"{MS}STUNUsername"]: udp_lab.sent[f"{MS}STUNPassword"]}


async def test_udp_request_goes_to_the_binding_from_the_stun_port_and_is_delivered(
    udp_lab: UdpLab,
) -> None:
    lab = udp_lab
    assert lab.acs.stun is not None
    await keep_alive(lab)

    async def device() -> None:
        datagram, source = await asyncio.wait_for(lab.socket.received.get(), 5)
        assert source[1] == lab.acs.stun.address[1]  # left from the STUN socket: NATs let it in
        fields = verify_udp_cr(
            datagram,
            lab.sent[f"{MS}ConnectionRequestUsername"],
            lab.sent[f"{MS}ConnectionRequestPassword"],
            last_ts=None,
            last_id=None,
        )
        assert fields.port == lab.socket.transport.get_extra_info("sockname")[1]  # type: ignore[union-attr]
        await lab.cpe.inform("6 CONNECTION REQUEST")
        assert (await lab.cpe.empty()).status == 204

    session = asyncio.create_task(device())
    target = await lab.acs.store.get_cr_target(lab.cpe.device_id)
    assert target is not None
    assert lab.acs.dispatcher.available_methods(target) == [CrMethod.UDP, CrMethod.HTTP]
    result = await lab.acs.dispatcher.reach(lab.cpe.device_id)
    await session
    assert result.outcome is CrOutcome.DELIVERED, result
    assert result.method is CrMethod.UDP
    assert [a.method for a in result.attempts] == [CrMethod.UDP]


async def test_without_a_binding_udp_is_unreachable_and_http_is_tried(udp_lab: UdpLab) -> None:
    result = await udp_lab.acs.dispatcher.reach(udp_lab.cpe.device_id, within=3)
    assert [a.method for a in result.attempts] == [CrMethod.HTTP]
    assert result.outcome is CrOutcome.UNREACHABLE
    forced = await udp_lab.acs.dispatcher.reach(udp_lab.cpe.device_id, via=CrMethod.UDP)
    assert forced.outcome is CrOutcome.UNREACHABLE
    assert "no NAT binding" in forced.detail


async def test_a_device_groups_order_is_followed(start_acs: Any) -> None:
    acs: Running = await start_acs(cr_order_groups={"00D09E-ScriptBox": "http,udp"})
    async with ScriptedCpe(acs.acs_url) as cpe:
        cpe.params[f"{MS}UDPConnectionRequestAddress"] = ("127.0.0.1:9", "xsd:string")
        await cpe.inform("0 BOOTSTRAP")
        assert (await cpe.empty()).status == 204
    target = await acs.store.get_cr_target(cpe.device_id)
    assert target is not None
    assert acs.dispatcher.available_methods(target) == [CrMethod.HTTP, CrMethod.UDP]


async def test_no_credentials_means_no_signed_request(start_acs: Any) -> None:
    acs: Running = await start_acs(cr_provision="off")
    async with ScriptedCpe(acs.acs_url) as cpe:
        cpe.params[f"{MS}UDPConnectionRequestAddress"] = ("127.0.0.1:9", "xsd:string")
        await cpe.inform("0 BOOTSTRAP")
        assert (await cpe.empty()).status == 204
    result = await acs.dispatcher.reach(cpe.device_id, via=CrMethod.UDP)
    assert result.outcome is CrOutcome.BAD_CREDENTIALS
    assert "Knock holds none" in result.detail


async def test_a_device_with_another_stun_password_shows_in_the_log_its_document_and_metrics(
    udp_lab: UdpLab, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "knock.stun")
    lab = udp_lab
    assert lab.acs.stun is not None
    stun = ("127.0.0.1", lab.acs.stun.address[1])
    user = lab.sent[f"{MS}STUNUsername"]
    for _ in range(3):
        forged = binding_request(
            os.urandom(16), username=user, password="not-it", connection_request_binding=True
        )
        reply = parse(await lab.socket.exchange(forged, stun))
        assert reply.error is not None and reply.error.code == 401
    device_id = lab.cpe.device_id
    await stun_outcome_is(lab.acs.store, device_id, "bad-integrity")
    params = {"query": json.dumps({"_id": device_id}), "projection": "_stun"}
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{lab.acs.nbi_port}/devices/", params=params) as r,
    ):
        [document] = await r.json()
    source = lab.socket.transport.get_extra_info("sockname")  # type: ignore[union-attr]
    assert document["_stun"]["outcome"] == "bad-integrity"
    assert document["_stun"]["source"] == f"127.0.0.1:{source[1]}"
    [line] = [r.getMessage() for r in caplog.records if "refused (401" in r.getMessage()]
    assert line.startswith(
        f"device {device_id}: STUN Binding Request from 127.0.0.1:{source[1]} with username "
        f"{user!r} refused (401, bad-integrity)"
    )
    assert value(await scrape(lab.acs), "knock_stun_integrity_failures_total") == 3

    await keep_alive(lab)  # the right password again: the document says so
    await stun_outcome_is(lab.acs.store, device_id, "ok")
