"""Byte-exact envelopes: what Knock sends never drifts without a test noticing."""

from __future__ import annotations

import pytest

from knock.cwmp import (
    CWMP_1_0,
    CWMP_1_2,
    CwmpError,
    GetParameterValues,
    InformResponse,
    ParameterValueStruct,
    Rpc,
    SetParameterValues,
    SetParameterValuesFault,
    acs_fault,
    build_envelope,
    cpe_fault,
)

DECL = b'<?xml version="1.0" encoding="UTF-8"?>\n'


def envelope(cwmp_ns: str, header: bytes, body: bytes) -> bytes:
    return (
        DECL + b'<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/"'
        b' xmlns:soap-enc="http://schemas.xmlsoap.org/soap/encoding/"'
        b' xmlns:xsd="http://www.w3.org/2001/XMLSchema"'
        b' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
        b' xmlns:cwmp="'
        + cwmp_ns.encode()
        + b'">'
        + header
        + b"<soap-env:Body>"
        + body
        + b"</soap-env:Body></soap-env:Envelope>"
    )


def id_header(id_: str) -> bytes:
    return (
        b'<soap-env:Header><cwmp:ID soap-env:mustUnderstand="1">'
        + id_.encode()
        + b"</cwmp:ID></soap-env:Header>"
    )


def test_inform_response() -> None:
    got = build_envelope(InformResponse(), cwmp_ns=CWMP_1_0, id="1804289383")
    assert got == envelope(
        CWMP_1_0,
        id_header("1804289383"),
        b"<cwmp:InformResponse><MaxEnvelopes>1</MaxEnvelopes></cwmp:InformResponse>",
    )


def test_get_parameter_values() -> None:
    got = build_envelope(
        GetParameterValues(["Device.DeviceInfo.", "Device.ManagementServer.URL"]),
        cwmp_ns=CWMP_1_2,
        id="knock-1",
    )
    assert got == envelope(
        CWMP_1_2,
        id_header("knock-1"),
        b"<cwmp:GetParameterValues>"
        b'<ParameterNames soap-enc:arrayType="xsd:string[2]">'
        b"<string>Device.DeviceInfo.</string><string>Device.ManagementServer.URL</string>"
        b"</ParameterNames></cwmp:GetParameterValues>",
    )


def test_set_parameter_values_escapes_and_types() -> None:
    got = build_envelope(
        SetParameterValues(
            [
                ParameterValueStruct("Device.WiFi.SSID.1.SSID", 'Caf\u00e9 <"&">\r', "xsd:string"),
                ParameterValueStruct(
                    "Device.ManagementServer.PeriodicInformInterval", "300", "unsignedInt"
                ),
                ParameterValueStruct("Device.WiFi.Radio.1.Enable", "1", "xsd:boolean"),
            ],
            parameter_key="pk-9",
        ),
        cwmp_ns=CWMP_1_0,
        id="knock-2",
        hold_requests=False,
    )
    assert got == envelope(
        CWMP_1_0,
        b'<soap-env:Header><cwmp:ID soap-env:mustUnderstand="1">knock-2</cwmp:ID>'
        b'<cwmp:HoldRequests soap-env:mustUnderstand="1">0</cwmp:HoldRequests></soap-env:Header>',
        b"<cwmp:SetParameterValues>"
        b'<ParameterList soap-enc:arrayType="cwmp:ParameterValueStruct[3]">'
        b"<ParameterValueStruct><Name>Device.WiFi.SSID.1.SSID</Name>"
        b'<Value xsi:type="xsd:string">Caf\xc3\xa9 &lt;"&amp;"&gt;&#13;</Value>'
        b"</ParameterValueStruct>"
        b"<ParameterValueStruct><Name>Device.ManagementServer.PeriodicInformInterval</Name>"
        b'<Value xsi:type="xsd:unsignedInt">300</Value></ParameterValueStruct>'
        b"<ParameterValueStruct><Name>Device.WiFi.Radio.1.Enable</Name>"
        b'<Value xsi:type="xsd:boolean">1</Value></ParameterValueStruct>'
        b"</ParameterList><ParameterKey>pk-9</ParameterKey></cwmp:SetParameterValues>",
    )


def test_fault() -> None:
    fault = cpe_fault(9003, set_parameter_values_faults=[SetParameterValuesFault("Device.X", 9008)])
    got = build_envelope(fault, cwmp_ns=CWMP_1_0, id="knock-4")
    assert got == envelope(
        CWMP_1_0,
        id_header("knock-4"),
        b"<soap-env:Fault><faultcode>Client</faultcode><faultstring>CWMP fault</faultstring>"
        b"<detail><cwmp:Fault><FaultCode>9003</FaultCode>"
        b"<FaultString>Invalid arguments</FaultString>"
        b"<SetParameterValuesFault><ParameterName>Device.X</ParameterName>"
        b"<FaultCode>9008</FaultCode><FaultString></FaultString></SetParameterValuesFault>"
        b"</cwmp:Fault></detail></soap-env:Fault>",
    )


def test_acs_fault_without_id_has_no_header() -> None:
    got = build_envelope(acs_fault(8000), cwmp_ns=CWMP_1_2, id=None, session_timeout=30)
    assert got == envelope(
        CWMP_1_2,
        b'<soap-env:Header><cwmp:SessionTimeout soap-env:mustUnderstand="0">30'
        b"</cwmp:SessionTimeout></soap-env:Header>",
        b"<soap-env:Fault><faultcode>Server</faultcode><faultstring>CWMP fault</faultstring>"
        b"<detail><cwmp:Fault><FaultCode>8000</FaultCode>"
        b"<FaultString>Method not supported</FaultString></cwmp:Fault></detail></soap-env:Fault>",
    )
    assert b"Header" not in build_envelope(InformResponse(), cwmp_ns=CWMP_1_0, id=None)


@pytest.mark.parametrize(
    "body",
    [
        GetParameterValues(["Device.\x00"]),
        SetParameterValues([ParameterValueStruct("Device.X", "bell\x07")]),
    ],
)
def test_text_xml_cannot_carry_is_a_cwmp_error(body: Rpc) -> None:
    with pytest.raises(CwmpError, match="cannot encode"):
        build_envelope(body, cwmp_ns=CWMP_1_0, id="1")


def test_unknown_namespace_is_a_cwmp_error() -> None:
    with pytest.raises(CwmpError, match="not a CWMP namespace"):
        build_envelope(InformResponse(), cwmp_ns="urn:example:not-cwmp", id="1")
