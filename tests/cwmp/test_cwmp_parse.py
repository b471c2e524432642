"""Parsing messages the way deployed CPEs write them."""

from __future__ import annotations

from pathlib import Path

import pytest

from knock.cwmp import (
    CWMP_1_0,
    CWMP_1_2,
    DeviceIdStruct,
    EventStruct,
    Fault,
    GetParameterNamesResponse,
    Inform,
    ParameterInfoStruct,
    ParameterValueStruct,
    SetParameterValuesFault,
    TransferComplete,
    TransferCompleteFaultStruct,
    build_envelope,
    device_key,
    parse_envelope,
)
from knock.cwmp.namespaces import CWMP_1_3

DATA = Path(__file__).parent / "data"


def test_inform_cwmp_1_0() -> None:
    env = parse_envelope((DATA / "inform-cwmp-1-0.xml").read_bytes())
    assert env.cwmp_ns == CWMP_1_0
    assert env.id == "1804289383"
    assert env.hold_requests is None and env.session_timeout is None
    inform = env.body
    assert isinstance(inform, Inform)
    assert inform.device_id == DeviceIdStruct("TP-Link", "50C7BF", "Archer C7", "2176295000123")
    assert inform.events == [EventStruct("0 BOOTSTRAP", ""), EventStruct("M Reboot", "reboot-17")]
    assert (inform.max_envelopes, inform.retry_count) == (1, 0)
    assert inform.current_time == "2024-03-05T10:15:30+01:00"
    params = {p.name: p for p in inform.parameter_list}
    assert len(params) == 6
    assert params["InternetGatewayDevice.DeviceInfo.UpTime"] == ParameterValueStruct(
        "InternetGatewayDevice.DeviceInfo.UpTime", "73", "xsd:unsignedInt"
    )
    assert (
        params["InternetGatewayDevice.ManagementServer.ConnectionRequestURL"].value
        == "http://198.51.100.23:7547/tr069?a=1&b=2"
    )
    assert params["InternetGatewayDevice.ManagementServer.ParameterKey"].value == ""
    assert params["InternetGatewayDevice.DeviceInfo.ProvisioningCode"].value == ""
    assert device_key(inform.device_id) == "50C7BF-Archer%20C7-2176295000123"


def test_inform_cwmp_1_2_with_odd_prefixes() -> None:
    env = parse_envelope((DATA / "inform-cwmp-1-2.xml").read_bytes())
    assert env.cwmp_ns == CWMP_1_2
    assert env.id == "abc-42"
    assert env.session_timeout == 60
    inform = env.body
    assert isinstance(inform, Inform)
    assert inform.device_id == DeviceIdStruct("Acme & Sons", "00236A", "", "SN 1/\u00e9")
    assert device_key(inform.device_id) == "00236A-SN%201%2F%C3%A9"
    assert [e.event_code for e in inform.events] == ["6 CONNECTION REQUEST", "4 VALUE CHANGE"]
    assert inform.max_envelopes == 1
    assert inform.current_time == "0001-01-01T00:00:00Z"
    assert inform.retry_count == 3
    assert [(p.value, p.type) for p in inform.parameter_list] == [
        ("2.15", "xsd:string"),
        ("3600", "xsd:unsignedInt"),
        ("true", "xsd:boolean"),
        # No xsi:type means string; a string's whitespace is kept as sent.
        ("  spaced <note>  ", "xsd:string"),
        # SOAP-ENC's base64 is the type CWMP data models call base64.
        ("AAEC", "xsd:base64"),
        # A type from a vendor's own namespace travels as a string.
        ("192.0.2.1", "xsd:string"),
        # The CPE forgot to declare xsd; it still means XML Schema.
        ("-5", "xsd:int"),
    ]


def test_answer_in_the_namespace_the_cpe_used() -> None:
    data = (DATA / "inform-cwmp-1-2.xml").read_bytes().replace(b"cwmp-1-2", b"cwmp-1-3")
    env = parse_envelope(data)
    assert env.cwmp_ns == CWMP_1_3
    reply = build_envelope(GetParameterNamesResponse([]), cwmp_ns=env.cwmp_ns, id=env.id)
    assert b'xmlns:cwmp="urn:dslforum-org:cwmp-1-3"' in reply
    assert b'<cwmp:ID soap-env:mustUnderstand="1">abc-42</cwmp:ID>' in reply


def test_get_parameter_names_response_booleans_and_whitespace() -> None:
    data = b"""<?xml version="1.0" encoding="UTF-8"?>
    <s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"
                xmlns:c="urn:dslforum-org:cwmp-1-0">
      <s:Header><c:ID s:mustUnderstand="1">7</c:ID>
        <c:HoldRequests s:mustUnderstand="1">TRUE</c:HoldRequests></s:Header>
      <s:Body>
        <c:GetParameterNamesResponse>
          <ParameterList>
            <ParameterInfoStruct>
              <Name>Device.WiFi.</Name>
              <Writable>0</Writable>
            </ParameterInfoStruct>
            <ParameterInfoStruct>
              <Writable> true </Writable>
              <Name>Device.WiFi.SSID.1.SSID</Name>
              <X_VENDOR_Extra>ignored</X_VENDOR_Extra>
            </ParameterInfoStruct>
          </ParameterList>
        </c:GetParameterNamesResponse>
      </s:Body>
    </s:Envelope>"""
    env = parse_envelope(data)
    assert env.hold_requests is True
    assert env.body == GetParameterNamesResponse(
        [
            ParameterInfoStruct("Device.WiFi.", False),
            ParameterInfoStruct("Device.WiFi.SSID.1.SSID", True),
        ]
    )


def test_cpe_fault_with_qualified_faultcode() -> None:
    data = b"""<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"
        xmlns:cwmp="urn:dslforum-org:cwmp-1-0"><soap:Header>
        <cwmp:ID soap:mustUnderstand="1">knock-3</cwmp:ID></soap:Header><soap:Body>
        <soap:Fault><faultcode>soap:Client</faultcode><faultstring>CWMP fault</faultstring>
        <detail><cwmp:Fault><FaultCode>9003</FaultCode><FaultString>Invalid arguments</FaultString>
        <SetParameterValuesFault><ParameterName>Device.A</ParameterName><FaultCode>9007</FaultCode>
        <FaultString>bad value</FaultString></SetParameterValuesFault>
        <SetParameterValuesFault><ParameterName>Device.B</ParameterName><FaultCode>9008</FaultCode>
        </SetParameterValuesFault></cwmp:Fault></detail></soap:Fault></soap:Body></soap:Envelope>"""
    env = parse_envelope(data)
    assert env.id == "knock-3"
    assert env.cwmp_ns == CWMP_1_0
    assert env.body == Fault(
        "Client",
        9003,
        "Invalid arguments",
        [
            SetParameterValuesFault("Device.A", 9007, "bad value"),
            SetParameterValuesFault("Device.B", 9008, ""),
        ],
    )


@pytest.mark.parametrize("faultcode", [b"", b"<faultcode>Weird</faultcode>"])
def test_fault_without_usable_faultcode_takes_it_from_the_code(faultcode: bytes) -> None:
    data = (
        b'<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body><e:Fault>'
        + faultcode
        + b'<detail><Fault xmlns="urn:dslforum-org:cwmp-1-2"><FaultCode>9002</FaultCode>'
        b"</Fault></detail></e:Fault></e:Body></e:Envelope>"
    )
    env = parse_envelope(data)
    assert env.cwmp_ns == CWMP_1_2
    assert env.id is None
    assert env.body == Fault("Server", 9002, "")


def test_optional_elements_may_be_absent() -> None:
    data = b"""<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"
        xmlns:cwmp="urn:dslforum-org:cwmp-1-1"><e:Body><cwmp:TransferComplete>
        <CommandKey>fw-1</CommandKey><StartTime>2024-01-01T00:00:00Z</StartTime>
        </cwmp:TransferComplete></e:Body></e:Envelope>"""
    env = parse_envelope(data)
    assert env.body == TransferComplete(
        "fw-1", TransferCompleteFaultStruct(0, ""), "2024-01-01T00:00:00Z", "0001-01-01T00:00:00Z"
    )


def test_default_namespace_and_qualified_array_items() -> None:
    data = b"""<Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/"><Body>
        <GetRPCMethodsResponse xmlns="urn:dslforum-org:cwmp-1-0"><MethodList>
        <xsd:string xmlns:xsd="http://www.w3.org/2001/XMLSchema">Inform</xsd:string>
        <string>TransferComplete</string></MethodList></GetRPCMethodsResponse></Body></Envelope>"""
    env = parse_envelope(data)
    assert env.cwmp_ns == CWMP_1_0
    assert getattr(env.body, "method_list", None) == ["Inform", "TransferComplete"]
