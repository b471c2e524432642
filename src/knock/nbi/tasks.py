"""GenieACS task documents: checked on the way in, shaped on the way out.

The stored spec is the task in GenieACS's own words, {"name": ..., <fields>}, as the client sent
it, so that it is echoed unchanged; every field is checked first. The ACS reads each accepted
form: getParameterNames and refreshObject take their path in `objectName` or `parameterName`;
refreshObject, addObject and deleteObject paths get the "." the RPCs require;
setParameterValues entries are [path, value] or [path, value, type], the value checked against
the type. Without a type the ACS takes the type the device reported for that parameter.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from knock.cwmp.values import InvalidValue, from_json
from knock.nbi.documents import iso
from knock.nbi.query import PATH
from knock.store.rows import TaskRow
from knock.vocab import TaskStatus

XSD_TYPES = (
    "xsd:string",
    "xsd:int",
    "xsd:unsignedInt",
    "xsd:long",
    "xsd:unsignedLong",
    "xsd:boolean",
    "xsd:dateTime",
    "xsd:base64",
    "xsd:hexBinary",
)
_MAX_PATH = 256  # TR-069 ParameterName is string(256)
# Fields of a task document the NBI itself writes; a script that posts a task document it got
# back earlier carries them, and they are ignored rather than refused.
_SERVER_FIELDS = frozenset(
    {"_id", "device", "timestamp", "status", "fault", "retries", "retryAfter"}
)


class TaskError(ValueError):
    """A task the NBI refuses; the message says what to change."""


Check = Callable[[str, Any], Any]


def _path(where: str, value: Any) -> str:
    if not isinstance(value, str) or not PATH.fullmatch(value) or len(value) > _MAX_PATH:
        raise TaskError(
            f"{where} is a parameter path such as "
            f'"InternetGatewayDevice.DeviceInfo.SoftwareVersion" (letters, digits, "_", "-", '
            f"dot-separated, up to {_MAX_PATH} characters, no wildcards), not {json.dumps(value)}"
        )
    return value


def _tree_path(where: str, value: Any) -> str:
    """A path to refresh: "" is the whole data model."""
    return "" if value == "" else _path(where, value)


def _object_path(where: str, value: Any) -> str:
    path = _path(where, value)
    return path if path.endswith(".") else path + "."


def _paths(where: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not value:
        raise TaskError(f'{where} is a non-empty list of parameter paths, e.g. ["Device.X.Y"]')
    return [_path(f"{where}[{i}]", item) for i, item in enumerate(value)]


def _parameter_values(where: str, value: Any) -> list[list[Any]]:
    if not isinstance(value, list) or not value:
        raise TaskError(
            f"{where} is a non-empty list of [path, value] or [path, value, type], "
            'e.g. [["Device.ManagementServer.PeriodicInformInterval", 300, "xsd:unsignedInt"]]'
        )
    entries: list[list[Any]] = []
    seen: set[str] = set()
    for i, item in enumerate(value):
        at = f"{where}[{i}]"
        if not isinstance(item, list) or len(item) not in (2, 3):
            raise TaskError(f"{at} is [path, value] or [path, value, type], not {json.dumps(item)}")
        path = _path(f"{at}[0]", item[0])
        if path.endswith("."):
            raise TaskError(f"{at}[0] names an object ({path}); set its parameters instead")
        if path in seen:
            raise TaskError(f"{at}[0] sets {path} a second time; set each parameter once")
        seen.add(path)
        if len(item) == 3:
            entries.append([path, _typed_value(at, item[1], item[2]), item[2]])
        else:
            entries.append([path, _untyped_value(at, item[1])])
    return entries


def _untyped_value(where: str, value: Any) -> str | int:
    if not isinstance(value, str | int):
        raise TaskError(
            f"{where}: the value is a string, an integer or a boolean, not {json.dumps(value)}; "
            "TR-069 has no fractional numbers, send them as text"
        )
    return value


def _typed_value(where: str, value: Any, xsd_type: Any) -> str:
    """`value` as the lexical text of `xsd_type` ("300" or 300 for xsd:unsignedInt), so that the
    ACS meets one form."""
    if xsd_type not in XSD_TYPES:
        raise TaskError(f"{where}: the type is one of {', '.join(XSD_TYPES)}, not {xsd_type!r}")
    if not isinstance(value, str | int):
        raise TaskError(f"{where}: {json.dumps(value)} is not a valid {xsd_type} value")
    try:
        return from_json(value, xsd_type)
    except InvalidValue as exc:
        shown = json.dumps(value)
        raise TaskError(f"{where}: {shown} is not a valid {xsd_type} value: {exc}") from None


def _text(where: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise TaskError(f"{where} is a non-empty string, not {json.dumps(value)}")
    return value


def _credential(where: str, value: Any) -> str:
    if not isinstance(value, str):
        raise TaskError(f"{where} is a string, not {json.dumps(value)}")
    return value


def _url(where: str, value: Any) -> str:
    text = _text(where, value)
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https", "ftp") or not parts.netloc:
        raise TaskError(f"{where} is an http, https or ftp URL the device can fetch, not {text!r}")
    return text


def _size(where: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**32:
        raise TaskError(f"{where} is a size in bytes (0 to 4294967295), not {json.dumps(value)}")
    return value


_REFRESH: dict[str, tuple[bool, Check]] = {"objectName": (True, _tree_path)}
# name -> field -> (required, check)
_FIELDS: dict[str, dict[str, tuple[bool, Check]]] = {
    "getParameterValues": {"parameterNames": (True, _paths)},
    "setParameterValues": {"parameterValues": (True, _parameter_values)},
    "getParameterAttributes": {"parameterNames": (True, _paths)},
    "refreshObject": _REFRESH,
    "getParameterNames": _REFRESH,
    "addObject": {
        "objectName": (True, _object_path),
        "parameterValues": (False, _parameter_values),
    },
    "deleteObject": {"objectName": (True, _object_path)},
    "reboot": {},
    "factoryReset": {},
    "download": {
        "file": (False, _text),
        "fileType": (False, _text),
        "url": (False, _url),
        "fileName": (False, _text),
        "targetFileName": (False, _text),
        "username": (False, _credential),
        "password": (False, _credential),
        "fileSize": (False, _size),
    },
}
TASK_NAMES = tuple(_FIELDS)


def parse_task(doc: Any) -> dict[str, Any]:
    """Check a posted task and return the spec to store, `name` included: the task as it was
    given (300 stays 300, an objectName keeps what was sent), less the fields the NBI writes
    itself; the ACS reads each form it accepts (knock.acs.taskplan)."""
    if not isinstance(doc, dict):
        raise TaskError(
            'a task is a JSON object such as {"name": "getParameterValues", '
            '"parameterNames": ["InternetGatewayDevice.DeviceInfo.SoftwareVersion"]}'
        )
    name = doc.get("name")
    if name not in _FIELDS:
        raise TaskError(f"task name is one of {', '.join(TASK_NAMES)}, not {json.dumps(name)}")
    given = {k: v for k, v in doc.items() if k != "name" and k not in _SERVER_FIELDS}
    as_given: dict[str, Any] = {"name": name, **given}
    if name in ("refreshObject", "getParameterNames") and "parameterName" in given:
        if "objectName" in given:
            raise TaskError(f"{name} takes objectName or parameterName, not both")
        given["objectName"] = given.pop("parameterName")
    fields = _FIELDS[name]
    unknown = sorted(given.keys() - fields.keys())
    if unknown:
        takes = ", ".join(fields) or "no other fields"
        raise TaskError(f"{name} does not take {', '.join(unknown)}; it takes {takes}")
    spec: dict[str, Any] = {"name": name}
    for field, (required, check) in fields.items():
        if field in given:
            spec[field] = check(field, given[field])
        elif required:
            raise TaskError(f"{name} needs {field}")
    if name == "download":
        _check_download(spec)
    return as_given


def _check_download(spec: dict[str, Any]) -> None:
    if "url" in spec and "file" in spec:
        raise TaskError(
            "download takes file (a file stored with PUT /files/<name>) or url, not both"
        )
    if "url" in spec and "fileType" not in spec:
        raise TaskError('download with a url needs fileType, e.g. "1 Firmware Upgrade Image"')
    if "url" not in spec and "file" not in spec and "fileName" not in spec:
        raise TaskError(
            "download needs file (the name of a file stored with PUT /files/<name>: Knock "
            "fills in the URL, type and size) or url and fileType (a file served elsewhere)"
        )


def task_document(row: TaskRow) -> dict[str, Any]:
    """The task as GenieACS shows one, plus its knock status."""
    doc: dict[str, Any] = {
        "_id": row.public_id,
        "name": row.name,
        "device": row.device_id,
        "timestamp": iso(row.created),
    }
    doc.update((k, v) for k, v in row.spec.items() if k not in doc)
    doc["status"] = row.status
    if row.status == TaskStatus.FAULTED:
        doc["fault"] = {
            "code": row.fault_code,
            "message": row.fault_string,
            "detail": row.fault_detail,
        }
    elif row.status == TaskStatus.UNKNOWN:
        # GenieACS clients look for "fault" to tell a task that did not surely run.
        doc["fault"] = {
            "code": TaskStatus.UNKNOWN.value,
            "message": (
                f"the session ended after {row.name} was sent and before the device answered, "
                "so whether it ran only the device can tell; Knock does not send it again "
                "unasked: check the device, and post the task again if it did not run"
            ),
            "detail": None,
        }
    if row.attempts or row.status == TaskStatus.FAULTED:
        # Sessions that died while it ran (knock.store.retry); a CPE fault is final at once.
        doc["retries"] = row.attempts
    if row.status == TaskStatus.QUEUED and row.not_before is not None:
        doc["retryAfter"] = iso(row.not_before)
    return doc
