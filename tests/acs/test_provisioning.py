"""The ACS sets connection-request credentials on devices so that connection requests just work."""

from __future__ import annotations

import json
import logging
from typing import Any

import aiohttp
import pytest
from scripted_cpe import ScriptedCpe

from knock.cwmp.faults import cpe_fault
from knock.cwmp.rpcs import (
    AddObject,
    AddObjectResponse,
    DeleteObject,
    DeleteObjectResponse,
    GetParameterNames,
    GetParameterNamesResponse,
    GetParameterValuesResponse,
    ParameterValueStruct,
    SetParameterValues,
    SetParameterValuesResponse,
)
from knock.server import Running

USER = "Device.ManagementServer.ConnectionRequestUsername"
PASSWORD = "Device.ManagementServer.ConnectionRequestPassword"


async def provisioned_pair(cpe: ScriptedCpe, *events: str) -> dict[str, str]:
    """Run a session that must start with provisioning; accept it; return what was set."""
    await cpe.inform(*events)
    sent, last = await cpe.accept_provisioning(await cpe.empty())
    assert last.status == 204
    return sent


async def test_random_credentials_are_set_stored_and_not_sent_again(
    start_acs: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    acs: Running = await start_acs(cr_provision="random")
    async with ScriptedCpe(acs.acs_url) as cpe:
        sent = await provisioned_pair(cpe, "0 BOOTSTRAP", "1 BOOT")
        assert set(sent) == {USER, PASSWORD}
        assert len(sent[PASSWORD]) >= 24
        target = await acs.store.get_cr_target(cpe.device_id)
        assert target is not None
        assert (target.username, target.password) == (sent[USER], sent[PASSWORD])

        await cpe.inform("2 PERIODIC")
        assert (await cpe.empty()).status == 204  # nothing to set any more

        again = await provisioned_pair(cpe, "0 BOOTSTRAP")  # a factory reset forgets them
        assert again[PASSWORD] != sent[PASSWORD]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert sent[PASSWORD] not in logged and again[PASSWORD] not in logged
    assert "connection-request credentials set" in logged


async def test_a_restarted_acs_knows_the_device_has_them(start_acs: Any) -> None:
    acs: Running = await start_acs(cr_provision="random")
    async with ScriptedCpe(acs.acs_url) as cpe:
        await provisioned_pair(cpe, "0 BOOTSTRAP")
    await acs.close()
    again: Running = await start_acs(cr_provision="random")
    async with ScriptedCpe(again.acs_url) as cpe:
        await cpe.inform("1 BOOT")
        assert (await cpe.empty()).status == 204


async def test_a_refusing_device_is_asked_again_next_session(start_acs: Any) -> None:
    acs: Running = await start_acs(cr_provision="random")
    async with ScriptedCpe(acs.acs_url) as cpe:
        await cpe.inform("0 BOOTSTRAP")
        read = await cpe.empty()
        request = await cpe.answer(read, GetParameterValuesResponse([]))
        assert isinstance(request.envelope and request.envelope.body, SetParameterValues)
        assert (await cpe.answer(request, cpe_fault(9008, "non-writable"))).status == 204
        target = await acs.store.get_cr_target(cpe.device_id)
        assert target is not None and target.password is None
        await provisioned_pair(cpe, "2 PERIODIC")


async def test_fixed_credentials_on_a_tr098_device(start_acs: Any) -> None:
    acs: Running = await start_acs(cr_provision="fixed", cr_username="ops", cr_password="pw-1")
    async with ScriptedCpe(acs.acs_url) as cpe:
        cpe.params = {
            "InternetGatewayDevice.ManagementServer.ConnectionRequestURL": (
                "http://127.0.0.1:1/x",
                "xsd:string",
            )
        }
        sent = await provisioned_pair(cpe, "0 BOOTSTRAP")
    assert sent == {
        "InternetGatewayDevice.ManagementServer.ConnectionRequestUsername": "ops",
        "InternetGatewayDevice.ManagementServer.ConnectionRequestPassword": "pw-1",
    }


async def test_off_leaves_devices_alone(start_acs: Any) -> None:
    acs: Running = await start_acs(cr_provision="off")
    async with ScriptedCpe(acs.acs_url) as cpe:
        await cpe.inform("0 BOOTSTRAP")
        assert (await cpe.empty()).status == 204


async def test_values_the_device_accepted_are_its_values_at_once(start_acs: Any) -> None:
    """As GenieACS records them: the NBI shows what was set without waiting for a re-read."""
    acs: Running = await start_acs(cr_provision="random")
    ms = "Device.ManagementServer."
    async with ScriptedCpe(acs.acs_url) as cpe:
        cpe.params[f"{ms}STUNEnable"] = ("0", "xsd:boolean")
        cpe.params[f"{ms}STUNUsername"] = ("", "xsd:string")
        sent = await provisioned_pair(cpe, "0 BOOTSTRAP")
    stored = await acs.store.get_parameters([cpe.device_id], [ms])
    values = {p.path: (p.value, p.type) for p in stored[cpe.device_id]}
    assert values[f"{ms}STUNEnable"] == ("1", "xsd:boolean")
    assert values[f"{ms}STUNUsername"] == (sent[f"{ms}STUNUsername"], "xsd:string")
    assert values[USER] == (sent[USER], "xsd:string")
    # Secrets stay out of the document, as the device reads them back: empty.
    assert values[PASSWORD] == ("", "xsd:string")
    assert values[f"{ms}STUNPassword"] == ("", "xsd:string")
    params = {"query": json.dumps({"_id": cpe.device_id}), "projection": f"{ms}STUNEnable"}
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{acs.nbi_port}/devices/", params=params) as r,
    ):
        [document] = await r.json()
    assert document["Device"]["ManagementServer"]["STUNEnable"]["_value"] is True


async def test_a_refused_xmpp_row_leaves_no_orphan_and_the_reason_shows(
    start_acs: Any, caplog: pytest.LogCaptureFixture
) -> None:
    acs: Running = await start_acs(cr_provision="random")
    ms, conn = "Device.ManagementServer.", "Device.XMPP.Connection."
    async with ScriptedCpe(acs.acs_url) as cpe:
        await cpe.inform("0 BOOTSTRAP")
        step = await cpe.empty()
        reported = [ParameterValueStruct(f"{ms}ConnReqXMPPConnection", "")]
        script = [
            (GetParameterValuesResponse(reported), GetParameterNames(conn, True)),
            (GetParameterNamesResponse([]), AddObject(conn)),
            (AddObjectResponse(3, 0), GetParameterNames(f"{conn}3.Server.", True)),
            (GetParameterNamesResponse([]), AddObject(f"{conn}3.Server.")),
            # The Connection this provisioning added goes again.
            (cpe_fault(9005, "Invalid parameter name"), DeleteObject(f"{conn}3.")),
        ]
        for answer, expected in script:
            step = await cpe.answer(step, answer)
            assert step.envelope is not None and step.envelope.body == expected
        step = await cpe.answer(step, DeleteObjectResponse(0))
        assert step.envelope is not None
        write = step.envelope.body
        assert isinstance(write, SetParameterValues)
        assert [p.name for p in write.parameter_list] == [USER, PASSWORD]
        assert (await cpe.answer(step, SetParameterValuesResponse(0))).status == 204
    reason = f"AddObject {conn}3.Server. was answered with fault 9005 Invalid parameter name"
    device = await acs.store.get_device(cpe.device_id)
    assert device is not None and (device.xmpp_setup, device.xmpp_setup_detail) == (
        "failed",
        reason,
    )
    target = await acs.store.get_cr_target(cpe.device_id)
    assert target is not None and target.password is not None
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert f"device {cpe.device_id}: no XMPP connection requests: {reason}." in " ".join(warnings)
