"""XMPP connection requests (Annex K) end to end in `knock serve`: provisioning creates the
device's account on the built-in server and points the device at it; the ACS's own connection
sends the IQ; the Inform that follows proves delivery. The device's XMPP side is Knock's client
scripted by the test."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from scripted_cpe import ScriptedCpe

from knock.cwmp.rpcs import (
    AddObject,
    AddObjectResponse,
    GetParameterNames,
    GetParameterNamesResponse,
    GetParameterValuesResponse,
    ParameterValueStruct,
    SetParameterValuesResponse,
)
from knock.server import Running
from knock.vocab import CrMethod, CrOutcome
from knock.xmpp.client import ClientConfig, IqRequest, TlsPolicy
from knock.xmpp.client_conn import XmppClient

MS = "Device.ManagementServer."
CONN_REQ_NS = "urn:broadband-forum-org:cwmp:xmppConnReq-1-0"


@dataclass
class XmppLab:
    acs: Running
    cpe: ScriptedCpe
    device: XmppClient
    requests: asyncio.Queue[IqRequest]


@pytest.fixture
async def xmpp_lab(start_acs: Any) -> AsyncIterator[XmppLab]:
    acs: Running = await start_acs(cr_provision="random", cr_session_wait=5.0)
    assert acs.xmpp is not None and acs.xmpp_requester is not None
    async with ScriptedCpe(acs.acs_url) as cpe:
        cpe.params[f"{MS}ConnReqXMPPConnection"] = ("", "xsd:string")
        await cpe.inform("0 BOOTSTRAP")
        step = await cpe.empty()
        read = step.envelope.body if step.envelope else None
        assert read is not None
        # Provisioning: the ManagementServer read, the rows listed (none), the Connection row
        # added and read back, its Server row added, then the values.
        step = await cpe.answer(step, _values_under(cpe, MS))
        assert step.envelope is not None
        assert step.envelope.body == GetParameterNames("Device.XMPP.Connection.", True)
        step = await cpe.answer(step, GetParameterNamesResponse([]))
        assert step.envelope is not None
        assert step.envelope.body == AddObject("Device.XMPP.Connection.")
        step = await cpe.answer(step, AddObjectResponse(1, 0))
        assert step.envelope is not None
        assert step.envelope.body == GetParameterNames("Device.XMPP.Connection.1.Server.", True)
        step = await cpe.answer(step, GetParameterNamesResponse([]))
        assert step.envelope is not None
        assert step.envelope.body == AddObject("Device.XMPP.Connection.1.Server.")
        step = await cpe.answer(step, AddObjectResponse(1, 0))
        assert step.envelope is not None
        sent = {p.name: p.value for p in step.envelope.body.parameter_list}  # type: ignore[union-attr]
        assert (await cpe.answer(step, SetParameterValuesResponse(0))).status == 204

        conn = "Device.XMPP.Connection.1."
        assert sent[f"{MS}ConnReqAllowedJabberIDs"] == "acs@knock.lab"
        assert sent[f"{conn}Server.1.Port"] == str(acs.xmpp.port)
        assert sent[f"{conn}UseTLS"] == "1" and acs.ca is not None
        requests: asyncio.Queue[IqRequest] = asyncio.Queue()
        device = XmppClient(
            f"{sent[f'{conn}Username']}@{sent[f'{conn}Domain']}/{sent[f'{conn}Resource']}",
            sent[f"{conn}Password"],
            host="127.0.0.1",
            port=int(sent[f"{conn}Server.1.Port"]),
            # TLS by default (UseTLS true), checked against the lab CA as a real device would.
            config=ClientConfig(tls=TlsPolicy.REQUIRED),
            ssl_context=ssl.create_default_context(cafile=acs.ca.cert_path),
            on_request=lambda _client, request: requests.put_nowait(request),
        )
        device.start()
        online = await asyncio.wait_for(device.wait_online(), 5)
        # The device reports the JID the server bound (active notification).
        cpe.params[f"{MS}ConnReqJabberID"] = (str(online.jid), "xsd:string")
        await cpe.inform("4 VALUE CHANGE")
        assert (await cpe.empty()).status == 204
        await asyncio.wait_for(acs.xmpp_requester.wait_connected(), 5)
        yield XmppLab(acs, cpe, device, requests)
        await device.close()


def _values_under(cpe: ScriptedCpe, prefix: str) -> GetParameterValuesResponse:
    return GetParameterValuesResponse(
        [ParameterValueStruct(n, v, t) for n, (v, t) in cpe.params.items() if n.startswith(prefix)]
    )


async def test_xmpp_request_is_delivered_through_the_builtin_server(xmpp_lab: XmppLab) -> None:
    lab = xmpp_lab
    creds = await lab.acs.store.get_cr_target(lab.cpe.device_id)
    assert creds is not None

    async def device_side() -> None:
        request = await asyncio.wait_for(lab.requests.get(), 5)
        [payload] = list(request.stanza)
        assert payload.tag == f"{{{CONN_REQ_NS}}}connectionRequest"
        fields = {child.tag.split("}")[1]: child.text for child in payload}
        assert fields == {"username": creds.username, "password": creds.password}
        assert request.sender.startswith("acs@knock.lab/")
        lab.device.answer(request)
        await lab.cpe.inform("6 CONNECTION REQUEST")
        assert (await lab.cpe.empty()).status == 204

    answering = asyncio.create_task(device_side())
    target = await lab.acs.store.get_cr_target(lab.cpe.device_id)
    assert target is not None
    assert lab.acs.dispatcher.available_methods(target)[0] is CrMethod.XMPP
    result = await lab.acs.dispatcher.reach(lab.cpe.device_id)
    await answering
    assert result.outcome is CrOutcome.DELIVERED, result
    assert result.method is CrMethod.XMPP


async def test_an_offline_device_is_unreachable_over_xmpp(xmpp_lab: XmppLab) -> None:
    await xmpp_lab.device.close()
    result = await xmpp_lab.acs.dispatcher.reach(
        xmpp_lab.cpe.device_id, via=CrMethod.XMPP, within=5
    )
    assert result.outcome is CrOutcome.UNREACHABLE, result
