"""Hostile and broken CPE input: a clear error each time, and the next CPE is still served."""

from __future__ import annotations

import pytest
from scripted_cpe import NS_10, ScriptedCpe

from knock.cwmp.deviceid import device_key
from knock.cwmp.envelope import parse_envelope
from knock.cwmp.rpcs import (
    DeviceIdStruct,
    EventStruct,
    Fault,
    GetRPCMethods,
    Inform,
    ParameterValueStruct,
)
from knock.server import Running
from wire_schema import unguarded_build

BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/"><soap-env:Body>
<cwmp:Inform xmlns:cwmp="urn:dslforum-org:cwmp-1-0">&lol3;</cwmp:Inform></soap-env:Body>
</soap-env:Envelope>"""

XXE = b"""<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>
<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/"><soap-env:Body>
<cwmp:Inform xmlns:cwmp="urn:dslforum-org:cwmp-1-0"><DeviceId>&e;</DeviceId></cwmp:Inform>
</soap-env:Body></soap-env:Envelope>"""

UNKNOWN_RPC = b"""<?xml version="1.0"?>
<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/"
 xmlns:cwmp="urn:dslforum-org:cwmp-1-0"><soap-env:Header>
<cwmp:ID soap-env:mustUnderstand="1">u-1</cwmp:ID></soap-env:Header><soap-env:Body>
<cwmp:X_Vendor_Teleport><Where>moon</Where></cwmp:X_Vendor_Teleport></soap-env:Body>
</soap-env:Envelope>"""

XML = {"Content-Type": "text/xml"}


async def still_serves(acs: Running) -> None:
    async with ScriptedCpe(acs.acs_url, serial="AFTER") as cpe:
        await cpe.inform("1 BOOT")
        assert (await cpe.empty()).status == 204


@pytest.mark.parametrize(
    ("body", "status", "fault"),
    [
        (b"<soap-env:Envelope><unclosed>", 400, 8003),
        (BOMB, 400, 8003),
        (XXE, 400, 8003),
        (UNKNOWN_RPC, 500, 8000),
        (b"<a>not soap</a>", 400, 8003),
    ],
    ids=["malformed", "xml-bomb", "external-entity", "unknown-rpc", "not-soap"],
)
async def test_bad_bodies_get_a_fault(acs: Running, body: bytes, status: int, fault: int) -> None:
    async with ScriptedCpe(acs.acs_url) as cpe:
        got, data = await cpe.client.post_raw(body, XML)
    assert got == status
    envelope = parse_envelope(data)
    assert isinstance(envelope.body, Fault) and envelope.body.fault_code == fault
    if fault == 8000:
        assert envelope.id == "u-1"
        assert "X_Vendor_Teleport" in envelope.body.fault_string
    assert b"root:" not in data
    await still_serves(acs)


async def test_a_10_mib_body_is_refused_with_413(acs: Running) -> None:
    huge = b"<a>" + b"x" * (10 * 1024 * 1024) + b"</a>"
    async with ScriptedCpe(acs.acs_url) as cpe:
        status, _ = await cpe.client.post_raw(huge, XML)
    assert status == 413
    await still_serves(acs)


async def test_a_body_over_a_configured_limit_is_refused(start_acs: object) -> None:
    acs = await start_acs(cwmp_max_body=4096)  # type: ignore[operator]
    async with ScriptedCpe(acs.acs_url) as cpe:
        status, _ = await cpe.client.post_raw(b"<a>" + b"y" * 8000 + b"</a>", XML)
    assert status == 413
    await still_serves(acs)


async def test_wrong_content_type_is_refused_with_415(acs: Running) -> None:
    async with ScriptedCpe(acs.acs_url) as cpe:
        status, data = await cpe.client.post_raw(
            b'{"inform": true}', {"Content-Type": "application/json"}
        )
    assert status == 415
    assert b"text/xml" in data
    await still_serves(acs)


async def test_a_session_must_start_with_inform(acs: Running) -> None:
    async with ScriptedCpe(acs.acs_url) as cpe:
        status, _ = await cpe.client.post_raw(b"")
        assert status == 400
        reply = await cpe.send(GetRPCMethods())
    assert reply.status == 500
    assert reply.envelope is not None and isinstance(reply.envelope.body, Fault)
    assert reply.envelope.body.fault_code == 8001
    assert await acs.store.find_devices(None) == []
    await still_serves(acs)


async def test_device_id_fields_are_escaped_into_the_key(acs: Running) -> None:
    async with ScriptedCpe(acs.acs_url, serial="SN 1/é") as cpe:
        await cpe.inform("0 BOOTSTRAP")
        await cpe.empty()
    assert cpe.device_id == "00D09E-ScriptBox-SN%201%2F%C3%A9"
    assert await acs.store.get_device(cpe.device_id) is not None
    assert cpe.ident == DeviceIdStruct("Knock", "00D09E", "ScriptBox", "SN 1/é")


@pytest.mark.parametrize(
    ("ident", "params", "named"),
    [
        (DeviceIdStruct("Knock", "00D09E", "Box", "S" * 257), {}, "DeviceId/SerialNumber"),
        (DeviceIdStruct("Knock", "00D09E", "P" * 300, "SN1"), {}, "DeviceId/ProductClass"),
        # 100 characters, 600 once escaped: the key is longer than the store keeps.
        (DeviceIdStruct("Knock", "00D09E", "Box", "é" * 100), {}, "the device key"),
        (DeviceIdStruct("Knock", "00D09E", "Box", "SN1"), {"Device." + "X" * 1100: ""}, "name"),
    ],
    ids=["serial", "product-class", "escaped-key", "parameter-name"],
)
async def test_text_longer_than_the_store_keeps_gets_a_fault_naming_it(
    acs: Running, ident: DeviceIdStruct, params: dict[str, str], named: str
) -> None:
    inform = Inform(
        device_id=ident,
        events=[EventStruct("1 BOOT")],
        max_envelopes=1,
        current_time="2026-11-26T12:00:00Z",
        retry_count=0,
        parameter_list=[ParameterValueStruct(n, v, "xsd:string") for n, v in params.items()],
    )
    for _attempt in range(2):  # the same answer every time, never a 500
        async with ScriptedCpe(acs.acs_url) as cpe:
            got, data = await cpe.client.post_raw(
                # Past Annex A's lengths on purpose: built without the schema guard.
                unguarded_build(inform, cwmp_ns=NS_10, id="i-1"),
                XML,
            )
        assert got == 400
        envelope = parse_envelope(data)
        assert isinstance(envelope.body, Fault) and envelope.body.fault_code == 8003
        assert named in envelope.body.fault_string
        assert "characters long; Knock stores at most" in envelope.body.fault_string
    assert await acs.store.get_device(device_key(ident)) is None
    await still_serves(acs)
