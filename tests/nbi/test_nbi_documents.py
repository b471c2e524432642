"""Device documents: exactly the JSON GenieACS serves."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from knock.nbi.documents import (
    device_document,
    iso,
    json_value,
    parameters_to_fetch,
    selects,
)
from knock.store.rows import DeviceRow, StoredParam

T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
T1 = datetime(2024, 5, 1, 12, 5, tzinfo=UTC)

DEVICE = DeviceRow(
    id="001122-Router%2DX-SN1",
    manufacturer="Acme",
    oui="001122",
    product_class="Router-X",
    serial_number="SN1",
    registered=T0 - timedelta(days=1),
    last_inform=T1,
    last_boot=T0,
    last_bootstrap=None,
)
PARAMS = [
    StoredParam("InternetGatewayDevice.", None, None, False, T0),
    StoredParam("InternetGatewayDevice.DeviceInfo.", None, None, False, T0),
    StoredParam("InternetGatewayDevice.DeviceInfo.SoftwareVersion", "1.2", "xsd:string", False, T1),
    StoredParam("InternetGatewayDevice.DeviceInfo.UpTime", "3600", "xsd:unsignedInt", None, T1),
    StoredParam(
        "InternetGatewayDevice.ManagementServer.PeriodicInformEnable", "1", "xsd:boolean", True, T1
    ),
    StoredParam("InternetGatewayDevice.ManagementServer.URL", None, None, True, T0),
    StoredParam(
        "InternetGatewayDevice.Time.CurrentLocalTime",
        "2024-05-01T14:05:00+02:00",
        "xsd:dateTime",
        False,
        T1,
    ),
    # A name starting with "_" would clobber attributes; it is left out.
    StoredParam("InternetGatewayDevice.DeviceInfo._value", "evil", "xsd:string", False, T1),
]


def test_full_document() -> None:
    assert device_document(DEVICE, PARAMS) == {
        "_id": "001122-Router%2DX-SN1",
        "_deviceId": {
            "_Manufacturer": "Acme",
            "_OUI": "001122",
            "_ProductClass": "Router-X",
            "_SerialNumber": "SN1",
        },
        "_lastInform": "2024-05-01T12:05:00.000Z",
        "_registered": "2024-04-30T12:00:00.123Z",
        "_lastBoot": "2024-05-01T12:00:00.123Z",
        "InternetGatewayDevice": {
            "_object": True,
            "_timestamp": "2024-05-01T12:00:00.123Z",
            "_writable": False,
            "DeviceInfo": {
                "_object": True,
                "_timestamp": "2024-05-01T12:00:00.123Z",
                "_writable": False,
                "SoftwareVersion": {
                    "_object": False,
                    "_value": "1.2",
                    "_type": "xsd:string",
                    "_timestamp": "2024-05-01T12:05:00.000Z",
                    "_writable": False,
                },
                "UpTime": {
                    "_object": False,
                    "_value": 3600,
                    "_type": "xsd:unsignedInt",
                    "_timestamp": "2024-05-01T12:05:00.000Z",
                },
            },
            "ManagementServer": {
                "_object": True,  # implied: it has parameters, though no row of its own
                "PeriodicInformEnable": {
                    "_object": False,
                    "_value": True,
                    "_type": "xsd:boolean",
                    "_timestamp": "2024-05-01T12:05:00.000Z",
                    "_writable": True,
                },
                "URL": {
                    "_object": False,
                    "_timestamp": "2024-05-01T12:00:00.123Z",
                    "_writable": True,
                },
            },
            "Time": {
                "_object": True,
                "CurrentLocalTime": {
                    "_object": False,
                    "_value": "2024-05-01T12:05:00.000Z",
                    "_type": "xsd:dateTime",
                    "_timestamp": "2024-05-01T12:05:00.000Z",
                    "_writable": False,
                },
            },
        },
    }


def test_document_is_json() -> None:
    doc = device_document(DEVICE, PARAMS)
    assert json.loads(json.dumps(doc)) == doc


@pytest.mark.parametrize(
    ("projection", "expected"),
    [
        (["_lastInform"], {"_id": DEVICE.id, "_lastInform": "2024-05-01T12:05:00.000Z"}),
        (["_deviceId._SerialNumber"], {"_id": DEVICE.id, "_deviceId": {"_SerialNumber": "SN1"}}),
        (
            ["InternetGatewayDevice.DeviceInfo.UpTime", "_lastBootstrap"],
            {
                "_id": DEVICE.id,
                "InternetGatewayDevice": {
                    "DeviceInfo": {
                        "UpTime": {
                            "_object": False,
                            "_value": 3600,
                            "_type": "xsd:unsignedInt",
                            "_timestamp": "2024-05-01T12:05:00.000Z",
                        }
                    }
                },
            },
        ),
        # A prefix keeps the node itself with its attributes, and only whole path segments match.
        (
            ["InternetGatewayDevice.Time"],
            {
                "_id": DEVICE.id,
                "InternetGatewayDevice": {
                    "Time": {
                        "_object": True,
                        "CurrentLocalTime": {
                            "_object": False,
                            "_value": "2024-05-01T12:05:00.000Z",
                            "_type": "xsd:dateTime",
                            "_timestamp": "2024-05-01T12:05:00.000Z",
                            "_writable": False,
                        },
                    }
                },
            },
        ),
        (["InternetGatewayDevice.Tim"], {"_id": DEVICE.id}),
    ],
)
def test_projection(projection: list[str], expected: dict[str, object]) -> None:
    assert device_document(DEVICE, PARAMS, projection) == expected


def test_the_last_stun_outcome_and_xmpp_set_up_are_underscore_attributes() -> None:
    seen = replace(
        DEVICE,
        stun_outcome="bad-integrity",
        stun_source="[2001:db8::1]:3478",
        stun_since=T0,
        xmpp_setup="failed",
        xmpp_setup_detail="AddObject Device.XMPP.Connection.1.Server. faulted 9005",
        xmpp_setup_at=T1,
    )
    assert device_document(seen, [], ["_stun", "_xmppSetup"]) == {
        "_id": DEVICE.id,
        "_stun": {
            "outcome": "bad-integrity",
            "source": "[2001:db8::1]:3478",
            "since": "2024-05-01T12:00:00.123Z",
        },
        "_xmppSetup": {
            "outcome": "failed",
            "detail": "AddObject Device.XMPP.Connection.1.Server. faulted 9005",
            "time": "2024-05-01T12:05:00.000Z",
        },
    }
    assert "_stun" not in device_document(DEVICE, [])


def test_parameters_to_fetch() -> None:
    assert parameters_to_fetch(None) == ()
    assert parameters_to_fetch(["_id", "_lastInform"]) is None
    assert parameters_to_fetch(["_id", "Device.DeviceInfo"]) == ("Device.DeviceInfo",)


def test_selects() -> None:
    assert selects(None, "anything")
    assert selects(["A.B"], "A.B") and selects(["A.B"], "A.B.C")
    assert not selects(["A.B"], "A.BC") and not selects(["A.B"], "A")


@pytest.mark.parametrize(
    ("text", "xsd", "expected"),
    [
        ("1", "xsd:boolean", True),
        ("TRUE", "xsd:boolean", True),
        ("0", "xsd:boolean", False),
        ("false", "xsd:boolean", False),
        ("maybe", "xsd:boolean", "maybe"),
        ("42", "xsd:int", 42),
        ("-42", "xsd:long", -42),
        ("18446744073709551615", "xsd:unsignedLong", 18446744073709551615),
        ("4_2", "xsd:unsignedInt", "4_2"),
        ("n/a", "xsd:unsignedInt", "n/a"),
        ("42", "xsd:string", "42"),
        ("42", None, "42"),
        ("2024-05-01T12:00:00Z", "xsd:dateTime", "2024-05-01T12:00:00.000Z"),
        ("2024-05-01T12:00:00", "xsd:dateTime", "2024-05-01T12:00:00.000Z"),
        ("0001-01-01T00:00:00Z", "xsd:dateTime", "0001-01-01T00:00:00.000Z"),
        ("yesterday", "xsd:dateTime", "yesterday"),
        ("AAEC", "xsd:base64", "AAEC"),
    ],
)
def test_json_value(text: str, xsd: str | None, expected: object) -> None:
    assert json_value(text, xsd) == expected


def test_iso_is_utc_with_milliseconds() -> None:
    moment = datetime(2024, 1, 2, 3, 4, 5, 678900, tzinfo=timezone(timedelta(hours=2)))
    assert iso(moment) == "2024-01-02T01:04:05.678Z"
