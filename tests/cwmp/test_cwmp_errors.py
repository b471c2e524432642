"""Hostile and broken input fails with an error the service can turn into a fault."""

from __future__ import annotations

import pytest

from knock.cwmp import (
    CWMP_1_2,
    CwmpError,
    InvalidArguments,
    MalformedEnvelope,
    UnknownMethod,
    parse_envelope,
)
from knock.xmlsafe import XmlError, XmlTooLarge

HEAD = (
    b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"'
    b' xmlns:cwmp="urn:dslforum-org:cwmp-1-2"><soap:Header>'
    b'<cwmp:ID soap:mustUnderstand="1">req-9</cwmp:ID></soap:Header><soap:Body>'
)
TAIL = b"</soap:Body></soap:Envelope>"


def message(body: bytes) -> bytes:
    return HEAD + body + TAIL


@pytest.mark.parametrize("data", [b"", b"not xml", b"<a><b></a>", message(b"<cwmp:Inform>")[:-10]])
def test_malformed_xml(data: bytes) -> None:
    with pytest.raises(XmlError):
        parse_envelope(data)


def test_doctype_bomb_is_refused() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
        b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
        + message(
            b"<cwmp:GetParameterValues><ParameterNames><string>&lol3;</string>"
            b"</ParameterNames></cwmp:GetParameterValues>"
        )
    )
    with pytest.raises(XmlError):
        parse_envelope(bomb)


def test_oversize_is_refused_before_parsing() -> None:
    data = message(b"<cwmp:GetRPCMethods/>")
    with pytest.raises(XmlTooLarge):
        parse_envelope(data, max_bytes=len(data) - 1)
    assert parse_envelope(data, max_bytes=len(data)).id == "req-9"


def test_unknown_method_carries_its_name_namespace_and_id() -> None:
    with pytest.raises(UnknownMethod) as info:
        parse_envelope(
            message(b"<cwmp:X_ACME_Frobnicate><Level>3</Level></cwmp:X_ACME_Frobnicate>")
        )
    assert info.value.name == "X_ACME_Frobnicate"
    assert info.value.cwmp_ns == CWMP_1_2
    assert info.value.envelope_id == "req-9"
    assert "X_ACME_Frobnicate" in str(info.value)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            b"<cwmp:GetParameterNames><NextLevel>1</NextLevel></cwmp:GetParameterNames>",
            "GetParameterNames: missing required element ParameterPath",
        ),
        (
            b"<cwmp:Inform><Event/><MaxEnvelopes>1</MaxEnvelopes></cwmp:Inform>",
            "Inform: missing required element DeviceId",
        ),
        (
            b"<cwmp:GetParameterValuesResponse><ParameterList><ParameterValueStruct>"
            b"<Name>A</Name><Value>1</Value></ParameterValueStruct><ParameterValueStruct>"
            b"<Name>B</Name></ParameterValueStruct></ParameterList>"
            b"</cwmp:GetParameterValuesResponse>",
            "GetParameterValuesResponse/ParameterList[1]: missing required element Value",
        ),
        (
            b"<cwmp:AddObjectResponse><InstanceNumber>seven</InstanceNumber>"
            b"<Status>0</Status></cwmp:AddObjectResponse>",
            "AddObjectResponse/InstanceNumber: 'seven' is not a valid xsd:long",
        ),
        (
            b"<cwmp:GetParameterNames><ParameterPath/><NextLevel>maybe</NextLevel>"
            b"</cwmp:GetParameterNames>",
            "GetParameterNames/NextLevel: 'maybe' is not a valid xsd:boolean",
        ),
        (
            b"<soap:Fault><faultcode>Client</faultcode></soap:Fault>",
            "Fault: no CWMP Fault in the SOAP Fault detail",
        ),
    ],
)
def test_invalid_arguments_say_what_is_wrong(body: bytes, expected: str) -> None:
    with pytest.raises(InvalidArguments) as info:
        parse_envelope(message(body))
    assert str(info.value).startswith(expected)
    assert (info.value.cwmp_ns, info.value.envelope_id) == (CWMP_1_2, "req-9")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"<html><body>login</body></html>", "root element is 'html'"),
        (message(b""), "empty SOAP Body"),
        (b'<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"/>', "no SOAP Body"),
        (
            b'<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body>'
            b"<Inform/></e:Body></e:Envelope>",
            "no CWMP namespace",
        ),
    ],
)
def test_malformed_envelope(data: bytes, expected: str) -> None:
    with pytest.raises(MalformedEnvelope, match=expected):
        parse_envelope(data)


def test_bad_header_value_is_invalid_arguments() -> None:
    data = message(b"<cwmp:GetRPCMethods/>").replace(
        b"</soap:Header>", b"<cwmp:HoldRequests>perhaps</cwmp:HoldRequests></soap:Header>"
    )
    with pytest.raises(InvalidArguments, match="HoldRequests"):
        parse_envelope(data)


def test_all_errors_are_value_errors() -> None:
    assert issubclass(CwmpError, ValueError)
    assert issubclass(XmlError, ValueError)
