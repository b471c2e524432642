"""GenieACS task documents: what is accepted, how it is stored, how it is shown."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from knock.nbi.tasks import TASK_NAMES, TaskError, parse_task, task_document
from knock.store.rows import TaskRow

SW = "InternetGatewayDevice.DeviceInfo.SoftwareVersion"
PII = "InternetGatewayDevice.ManagementServer.PeriodicInformInterval"


@pytest.mark.parametrize(
    ("posted", "stored"),
    [
        (
            {"name": "getParameterValues", "parameterNames": [SW, "InternetGatewayDevice.LAN."]},
            {"name": "getParameterValues", "parameterNames": [SW, "InternetGatewayDevice.LAN."]},
        ),
        (
            {
                "name": "setParameterValues",
                "parameterValues": [
                    [PII, 300, "xsd:unsignedInt"],
                    ["InternetGatewayDevice.ManagementServer.PeriodicInformEnable", True],
                    ["InternetGatewayDevice.X.Name", "a:b=c"],
                    ["InternetGatewayDevice.X.When", "2024-05-01T12:00:00Z", "xsd:dateTime"],
                    ["InternetGatewayDevice.X.Blob", "AAEC", "xsd:base64"],
                    ["InternetGatewayDevice.X.Hex", "00ff", "xsd:hexBinary"],
                ],
            },
            None,
        ),
        # Values are checked against their type and stored as given (the ACS sends each in the
        # canonical lexical text of its type, knock.acs.taskplan).
        (
            {
                "name": "setParameterValues",
                "parameterValues": [
                    [PII, "300", "xsd:unsignedInt"],
                    ["InternetGatewayDevice.X.Big", "18446744073709551615", "xsd:unsignedLong"],
                    ["InternetGatewayDevice.X.Low", "-5", "xsd:int"],
                    ["InternetGatewayDevice.X.On", "1", "xsd:boolean"],
                    ["InternetGatewayDevice.X.Off", "False", "xsd:boolean"],
                    ["InternetGatewayDevice.X.Yes", 1, "xsd:boolean"],
                    ["InternetGatewayDevice.X.Text", 5, "xsd:string"],
                    ["InternetGatewayDevice.X.Flag", True, "xsd:string"],
                ],
            },
            None,
        ),
        (
            {"name": "refreshObject", "objectName": "InternetGatewayDevice.LANDevice"},
            {"name": "refreshObject", "objectName": "InternetGatewayDevice.LANDevice"},
        ),
        (
            {"name": "getParameterNames", "parameterName": "Device."},
            None,
        ),
        ({"name": "refreshObject", "objectName": ""}, None),
        (
            {
                "name": "addObject",
                "objectName": "Device.NAT.PortMapping",
                "parameterValues": [["Enable", True, "xsd:boolean"]],
            },
            None,
        ),
        (
            {"name": "deleteObject", "objectName": "Device.NAT.PortMapping.3"},
            None,
        ),
        ({"name": "reboot"}, None),
        # A task document the NBI returned earlier can be posted again as it is.
        (
            {"name": "factoryReset", "_id": "7", "device": "x", "status": "done", "timestamp": "t"},
            {"name": "factoryReset"},
        ),
        (
            {
                "name": "download",
                "fileType": "1 Firmware Upgrade Image",
                "url": "http://files.example/fw.bin",
                "targetFileName": "fw.bin",
                "username": "u",
                "password": "",
                "fileSize": 1024,
            },
            None,
        ),
        ({"name": "download", "fileType": "3 Vendor Configuration File", "fileName": "cfg"}, None),
    ],
)
def test_accepted(posted: dict[str, Any], stored: dict[str, Any] | None) -> None:
    assert parse_task(posted) == (posted if stored is None else stored)


@pytest.mark.parametrize(
    ("posted", "message"),
    [
        ([], "a task is a JSON object"),
        ({}, "task name is one of getParameterValues, setParameterValues"),
        ({"name": "GetParameterValues"}, 'not "GetParameterValues"'),
        ({"name": "getParameterValues"}, "getParameterValues needs parameterNames"),
        ({"name": "getParameterValues", "parameterNames": []}, "non-empty list of parameter paths"),
        ({"name": "getParameterValues", "parameterNames": SW}, "non-empty list of parameter paths"),
        ({"name": "getParameterValues", "parameterNames": ["A.*.B"]}, "parameterNames[0] is a"),
        ({"name": "getParameterValues", "parameterNames": ["A" * 257]}, "up to 256 characters"),
        (
            {"name": "getParameterValues", "parameterName": [SW]},
            "getParameterValues does not take parameterName; it takes parameterNames",
        ),
        ({"name": "reboot", "delay": 5}, "reboot does not take delay; it takes no other fields"),
        ({"name": "setParameterValues", "parameterValues": [[SW]]}, "parameterValues[0] is"),
        (
            {"name": "setParameterValues", "parameterValues": [[PII, 300, "xsd:unsigned"]]},
            "the type is one of xsd:string",
        ),
        (
            {"name": "setParameterValues", "parameterValues": [[PII, -1, "xsd:unsignedInt"]]},
            "-1 is not a valid xsd:unsignedInt value",
        ),
        (
            {"name": "setParameterValues", "parameterValues": [[PII, 2**31, "xsd:int"]]},
            "is not a valid xsd:int value",
        ),
        (
            {"name": "setParameterValues", "parameterValues": [[PII, "1.5", "xsd:int"]]},
            '"1.5" is not a valid xsd:int value',
        ),
        (
            {"name": "setParameterValues", "parameterValues": [[PII, True, "xsd:int"]]},
            "true is not a valid xsd:int value",
        ),
        (
            {"name": "setParameterValues", "parameterValues": [[PII, "yes", "xsd:boolean"]]},
            "is not a valid xsd:boolean value",
        ),
        (
            {"name": "setParameterValues", "parameterValues": [[PII, 2, "xsd:boolean"]]},
            "2 is not a valid xsd:boolean value",
        ),
        (
            {"name": "setParameterValues", "parameterValues": [[PII, ["x"], "xsd:string"]]},
            "is not a valid xsd:string value",
        ),
        (
            {"name": "setParameterValues", "parameterValues": [[PII, "soon", "xsd:dateTime"]]},
            "is not a valid xsd:dateTime value",
        ),
        (
            {"name": "setParameterValues", "parameterValues": [[PII, "!!", "xsd:base64"]]},
            "is not a valid xsd:base64 value",
        ),
        (
            {"name": "setParameterValues", "parameterValues": [[PII, "abc", "xsd:hexBinary"]]},
            "is not a valid xsd:hexBinary value",
        ),
        (
            {"name": "setParameterValues", "parameterValues": [[PII, 1.5]]},
            "TR-069 has no fractional numbers",
        ),
        (
            {"name": "setParameterValues", "parameterValues": [[PII, None]]},
            "not null",
        ),
        (
            {"name": "setParameterValues", "parameterValues": [[PII, 1], [PII, 2]]},
            "sets " + PII + " a second time",
        ),
        (
            {"name": "setParameterValues", "parameterValues": [["Device.X.", 1]]},
            "names an object",
        ),
        (
            {"name": "refreshObject", "objectName": "A", "parameterName": "B"},
            "objectName or parameterName, not both",
        ),
        ({"name": "refreshObject"}, "refreshObject needs objectName"),
        ({"name": "deleteObject", "objectName": ""}, "objectName is a parameter path"),
        ({"name": "download", "fileType": "1 Firmware Upgrade Image"}, "download needs file"),
        ({"name": "download", "file": "fw.bin", "url": "http://x/fw"}, "not both"),
        ({"name": "download", "url": "http://x/fw"}, "download with a url needs fileType"),
        (
            {"name": "download", "fileType": "1 Firmware Upgrade Image", "url": "file:///etc"},
            "an http, https or ftp URL",
        ),
        (
            {"name": "download", "fileType": "1", "url": "http://x/", "fileSize": -1},
            "fileSize is a size in bytes",
        ),
        (
            {"name": "download", "fileType": "1", "url": "http://x/", "username": 5},
            "username is a string",
        ),
    ],
)
def test_refused(posted: Any, message: str) -> None:
    with pytest.raises(TaskError) as raised:
        parse_task(posted)
    assert message in str(raised.value)


CREATED = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
ID_7 = "663230f0aabbccddee000007"
ID_8 = "663230f0aabbccddee000008"


def test_document_of_a_queued_task() -> None:
    spec = {"name": "getParameterValues", "parameterNames": [SW]}
    row = TaskRow(
        7, "001122-Router-SN1", "getParameterValues", spec, "queued", CREATED, public_id=ID_7
    )
    assert task_document(row) == {
        "_id": ID_7,
        "name": "getParameterValues",
        "device": "001122-Router-SN1",
        "timestamp": "2024-05-01T12:00:00.000Z",
        "parameterNames": [SW],
        "status": "queued",
    }


def test_document_of_a_faulted_task() -> None:
    row = TaskRow(
        8,
        "d",
        "setParameterValues",
        {"name": "setParameterValues", "parameterValues": [[PII, 0, "xsd:unsignedInt"]]},
        "faulted",
        CREATED,
        finished=CREATED,
        fault_code="cwmp.9007",
        fault_string="Invalid parameter value",
        fault_detail={"faultCode": "9003", "setParameterValuesFault": [{"faultCode": "9007"}]},
        public_id=ID_8,
    )
    assert task_document(row) == {
        "_id": ID_8,
        "name": "setParameterValues",
        "device": "d",
        "timestamp": "2024-05-01T12:00:00.000Z",
        "parameterValues": [[PII, 0, "xsd:unsignedInt"]],
        "status": "faulted",
        "fault": {
            "code": "cwmp.9007",
            "message": "Invalid parameter value",
            "detail": {"faultCode": "9003", "setParameterValuesFault": [{"faultCode": "9007"}]},
        },
        "retries": 0,
    }
    waiting = replace(
        row,
        status="queued",
        attempts=2,
        not_before=CREATED + timedelta(seconds=60),
        fault_code=None,
    )
    shown = task_document(waiting)
    assert (shown["retries"], shown["retryAfter"]) == (2, "2024-05-01T12:01:00.000Z")
    assert "fault" not in shown


_NAMES = st.sampled_from(TASK_NAMES)
_FIELDS = st.sampled_from(
    [
        "parameterNames",
        "parameterValues",
        "objectName",
        "parameterName",
        "fileType",
        "url",
        "fileName",
        "fileSize",
        "username",
        "device",
        "_id",
    ]
)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=10,
)


@given(name=_NAMES, fields=st.dictionaries(_FIELDS, _JSON, max_size=3))
def test_any_task_is_accepted_as_json_or_refused(name: str, fields: dict[str, Any]) -> None:
    try:
        spec = parse_task({"name": name, **fields})
    except TaskError:
        return
    assert spec["name"] == name
    assert json.loads(json.dumps(spec, allow_nan=False)) == spec
