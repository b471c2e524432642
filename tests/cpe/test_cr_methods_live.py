"""Simulated devices taking UDP (STUN, TR-111) and XMPP (Annex K) connection requests from a real
in-process `knock serve`, over loopback sockets."""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from live_lab import MS, WAIT, Lab, lab, lab_trust, settled, until
from lxml import etree

from knock.acs.xmpp_accounts import put_account
from knock.connreq.udp import build_udp_cr
from knock.connreq.xmpp import connection_request
from knock.cpe.cr_rate import CrPolicy
from knock.cpe.device import SimulatedCpe
from knock.cpe.udp_cr import UdpAnswer
from knock.cpe.xmpp_cr import XmppAnswer
from knock.vocab import CrMethod, CrOutcome
from knock.xmpp.client_conn import XmppClient


@pytest.fixture
async def three(tmp_path: Path) -> AsyncIterator[Lab]:
    async with lab(tmp_path, count=3) as running:
        for cpe in running.devices:
            await running.provisioned(cpe)
            if cpe.in_session:  # the one that reported them
                await settled(cpe)
        yield running


def credentials(cpe: SimulatedCpe) -> tuple[str, str]:
    return cpe.model.get(f"{MS}ConnectionRequestUsername"), cpe.model.get(
        f"{MS}ConnectionRequestPassword"
    )


async def test_devices_report_their_addresses_and_every_method_delivers(three: Lab) -> None:
    stun = three.acs.stun
    assert stun is not None
    for cpe in three.devices:
        address, jid = await three.provisioned(cpe)
        stun_user = cpe.model.get(f"{MS}STUNUsername")
        await until(lambda user=stun_user: user in stun.bindings)  # type: ignore[misc]
        host, port = stun.bindings[stun_user].address
        assert address == f"{host}:{port}"
        assert cpe.model.get(f"{MS}NATDetected") == "false"  # loopback: no NAT in the way
        assert jid.startswith(cpe.model.get("Device.XMPP.Connection.1.Username") + "@knock.lab/")
        assert cpe.model.get("Device.XMPP.Connection.1.Status") == "Enabled"
        assert cpe.model.get(f"{MS}SupportedConnReqMethods") == "HTTP,STUN,XMPP"
        for method in (CrMethod.XMPP, CrMethod.UDP, CrMethod.HTTP):
            if cpe.in_session:  # a device in a session refuses (Busy.REFUSE)
                await settled(cpe)
            result = await three.acs.dispatcher.reach(three.device_id(cpe), within=5, via=method)
            assert result.outcome is CrOutcome.DELIVERED, result
            assert result.method is method
    udp = three.services.udp
    assert udp is not None
    # The ACS repeats each datagram (udp_cr_repeat 3, sent after the first): the copies are
    # dropped as replays.
    assert udp.gate.totals[UdpAnswer.ACCEPTED] == 3
    await until(lambda: udp.gate.totals[UdpAnswer.OLD_TIMESTAMP] == 6)


async def test_bad_udp_requests_are_dropped_and_counted_without_a_session(three: Lab) -> None:
    cpe = three.devices[0]
    udp = three.services.udp
    assert udp is not None
    host, port = cpe.model.get(f"{MS}UDPConnectionRequestAddress").rsplit(":", 1)
    username, password = credentials(cpe)
    now = int(time.time())
    before = cpe.counts.started

    def datagram(user: str, key: str, ts: int, msg_id: int) -> bytes:
        return build_udp_cr(host, int(port), user, key, ts, msg_id, "CN0123456789")

    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for data in (
            datagram(username, "wrong", now, 1),  # bad signature
            datagram("intruder", password, now, 2),  # wrong username
            b"GET nonsense\r\n\r\n",
            datagram(username, password, now, 3),  # accepted
            datagram(username, password, now + 1, 3),  # repeated id
            datagram(username, password, now - 100, 4),  # old timestamp
        ):
            sender.sendto(data, (host, int(port)))
        sender.sendto(datagram(username, password, now + 2, 5), (host, int(port)))
    finally:
        sender.close()
    # Datagrams on one socket are read in order: once the last is counted, all were.
    # All were sent before the device read any: the session the first good one opened ends
    # after every datagram was taken, and the second good one joined it.
    await settled(cpe)
    totals = udp.gate.totals
    assert totals[UdpAnswer.ACCEPTED] == 1
    assert totals[UdpAnswer.MERGED] == 1
    assert totals[UdpAnswer.BAD_SIGNATURE] == 1
    assert totals[UdpAnswer.WRONG_USERNAME] == 1
    assert totals[UdpAnswer.MALFORMED] == 1
    assert totals[UdpAnswer.REPEATED_ID] == 1
    assert totals[UdpAnswer.OLD_TIMESTAMP] == 1
    assert cpe.state.udp_cr_last == (now + 2, 5)
    assert cpe.counts.started == before + 1


async def test_the_rate_limit_is_shared_by_http_and_udp(tmp_path: Path) -> None:
    async with lab(tmp_path, policy=CrPolicy(rate_limit=60)) as running:
        [cpe] = running.devices
        await running.provisioned(cpe)
        device_id = running.device_id(cpe)
        dispatcher = running.acs.dispatcher
        first = await dispatcher.reach(device_id, within=5, via=CrMethod.HTTP)
        assert first.outcome is CrOutcome.DELIVERED, first
        if cpe.in_session:  # busy would refuse before the rate limit is asked
            await settled(cpe)
        second = await dispatcher.reach(device_id, within=2, via=CrMethod.UDP)
        assert second.outcome is not CrOutcome.DELIVERED
        udp = running.services.udp
        assert udp is not None
        assert udp.gate.totals[UdpAnswer.RATE_LIMITED] == 1


async def ask(lab_: Lab, account: str, target: str, username: str, password: str) -> str:
    """Send a connection request from *account* (created on the server); the error condition
    the device answered, "" for a result."""
    await put_account(lab_.acs.store, account, "pw-" + account)
    assert lab_.acs.xmpp is not None
    # Knock's server lets device accounts address only the ACS: this one plays another sender
    # that reaches the device, whose own check is what is tested.
    lab_.acs.xmpp.add_service_account(account)
    client = XmppClient(
        f"{account}@knock.lab/probe",
        "pw-" + account,
        host="127.0.0.1",
        port=lab_.acs.xmpp.port,
        ssl_context=lab_trust(lab_.acs),
    )
    client.start()
    try:
        await asyncio.wait_for(client.wait_online(), WAIT)
        answer = await client.request(target, connection_request(username, password), WAIT)
    finally:
        await client.close()
    return "" if answer.error is None else f"{answer.error.type}/{answer.error.condition}"


async def test_xmpp_requests_from_other_jids_or_with_wrong_credentials_are_refused(
    three: Lab,
) -> None:
    cpe = three.devices[0]
    _address, jid = await three.provisioned(cpe)
    username, password = credentials(cpe)
    xmpp = three.services.xmpp
    assert xmpp is not None
    before = cpe.counts.started
    # The allowed JID is acs@knock.lab; one sharing its first letters is someone else.
    assert cpe.model.get(f"{MS}ConnReqAllowedJabberIDs") == "acs@knock.lab"
    assert await ask(three, "acsx", jid, username, password) == "cancel/service-unavailable"
    assert await ask(three, "acs.evil", jid, username, password) == "cancel/service-unavailable"
    assert xmpp.gate.totals[XmppAnswer.FORBIDDEN_SENDER] == 2
    # The ACS's own account, from another resource, with wrong credentials.
    result = await three.acs.dispatcher.reach(three.device_id(cpe), within=5, via=CrMethod.XMPP)
    assert result.outcome is CrOutcome.DELIVERED
    cpe.set_value(f"{MS}ConnectionRequestPassword", "changed-behind-the-acs")
    refused = await three.acs.dispatcher.reach(three.device_id(cpe), within=5, via=CrMethod.XMPP)
    assert refused.outcome is CrOutcome.BAD_CREDENTIALS, refused
    assert xmpp.gate.totals[XmppAnswer.BAD_CREDENTIALS] == 1
    assert cpe.counts.started == before + 1


async def test_a_malformed_connection_request_is_a_bad_request(three: Lab) -> None:
    cpe = three.devices[0]
    _address, jid = await three.provisioned(cpe)
    await put_account(three.acs.store, "probe", "pw-probe")
    assert three.acs.xmpp is not None
    three.acs.xmpp.add_service_account("probe")  # a sender that reaches the device
    cpe.set_value(f"{MS}ConnReqAllowedJabberIDs", "")  # an empty list allows every sender
    request = etree.Element("{urn:broadband-forum-org:cwmp:xmppConnReq-1-0}connectionRequest")
    etree.SubElement(request, "{urn:broadband-forum-org:cwmp:xmppConnReq-1-0}username").text = "u"
    probe = XmppClient(
        "probe@knock.lab/p",
        "pw-probe",
        host="127.0.0.1",
        port=three.acs.xmpp.port,
        ssl_context=lab_trust(three.acs),
    )
    probe.start()
    try:
        await asyncio.wait_for(probe.wait_online(), WAIT)
        answer = await probe.request(jid, request, WAIT)
    finally:
        await probe.close()
    assert answer.error is not None
    assert (answer.error.type, answer.error.condition) == ("modify", "bad-request")


async def test_the_device_logs_in_again_after_the_server_restarts(tmp_path: Path) -> None:
    async with lab(tmp_path) as running:
        [cpe] = running.devices
        await running.provisioned(cpe)
        xmpp = running.services.xmpp
        assert xmpp is not None
        await running.restart_acs()
        [agent] = xmpp.agents
        assert agent.client is not None
        await asyncio.wait_for(agent.client.wait_online(), WAIT)
        result = await running.acs.dispatcher.reach(
            running.device_id(cpe), within=5, via=CrMethod.XMPP
        )
        assert result.outcome is CrOutcome.DELIVERED, result


@pytest.mark.parametrize("method", [CrMethod.HTTP, CrMethod.UDP, CrMethod.XMPP])
async def test_back_to_back_requests_wait_out_the_device_rate_limit(
    tmp_path: Path, method: CrMethod
) -> None:
    """A person typing `knock get` then `knock set` meets a device's rate limit (the
    simulator's is 2 s, like many CPEs'): the ACS waits it out by every method, within its
    session wait, instead of failing under a method-specific name."""
    async with lab(tmp_path, policy=CrPolicy(rate_limit=2)) as running:
        [cpe] = running.devices
        await running.provisioned(cpe)
        device_id = running.device_id(cpe)
        results = []
        for _request in range(2):
            if cpe.in_session:  # busy would refuse before the rate limit is asked
                await settled(cpe)
            results.append(await running.acs.dispatcher.reach(device_id, via=method))
        assert [r.outcome for r in results] == [CrOutcome.DELIVERED] * 2, results
        if method is CrMethod.UDP:  # no answer on UDP: the request went again, anew
            udp = running.services.udp
            assert udp is not None
            assert udp.gate.totals[UdpAnswer.RATE_LIMITED] >= 1
            assert "sent 2 times" in results[1].detail or "sent 3 times" in results[1].detail
        elif method is CrMethod.HTTP:  # 503 with Retry-After: one wait as long as it asked
            assert results[1].detail.startswith("rate-limited 1 time, then "), results[1]
        else:  # service-unavailable says no time: the configured pause (1 s), until it passes
            assert re.match(r"rate-limited [12] times?, then ", results[1].detail), results[1]
