"""The NBI's OpenAPI 3.1 description, served at /openapi.json. tests/nbi/test_openapi.py holds it
to the routes the app really has."""

from __future__ import annotations

from typing import Any

from knock import __version__
from knock.nbi.origin import SAFE_METHODS
from knock.store.object_ids import EXAMPLE as _EXAMPLE_ID
from knock.store.object_ids import OBJECT_ID
from knock.vocab import CrMethod, CrOutcome, TaskStatus

_OBJECT_ID = f"^{OBJECT_ID.pattern}$"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


_DEVICE_ID = {
    "name": "device_id",
    "in": "path",
    "required": True,
    "description": "The device id, percent-encoded once (encodeURIComponent).",
    "schema": {"type": "string"},
}
_TAG = {
    "name": "tag",
    "in": "path",
    "required": True,
    "description": "1 to 128 characters without spaces or '/'.",
    "schema": {"type": "string"},
}
_PRESET_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
_CONFIGURATION = {
    "oneOf": [
        {
            "type": "object",
            "properties": {
                "type": {"const": "value"},
                "name": {"type": "string"},
                "value": {"type": ["string", "integer", "boolean"]},
            },
            "required": ["type", "name", "value"],
        },
        {
            "type": "object",
            "description": "Read the parameter again when the stored value is older than age s.",
            "properties": {
                "type": {"const": "age"},
                "name": {"type": "string"},
                "age": {"type": "integer", "minimum": 1},
            },
            "required": ["type", "name", "age"],
        },
        {
            "type": "object",
            "properties": {
                "type": {"enum": ["add_tag", "delete_tag"]},
                "tag": {"type": "string"},
            },
            "required": ["type", "tag"],
        },
        {
            "type": "object",
            "description": "Add an instance of the object unless one's _keys parameters hold "
            "the values given (then set its other values there); delete_object: delete every "
            "instance that matches.",
            "properties": {
                "type": {"enum": ["add_object", "delete_object"]},
                "name": {"type": "string"},
                "object": {
                    "type": "object",
                    "properties": {"_keys": {"type": "array", "items": {"type": "string"}}},
                    "additionalProperties": {"type": ["string", "integer", "boolean"]},
                },
            },
            "required": ["type", "name", "object"],
        },
    ]
}
_FILE_NAME = {
    "name": "name",
    "in": "path",
    "required": True,
    "description": "The file's name, percent-encoded once.",
    "schema": {"type": "string"},
}
_QUERY = _query(
    "query",
    'A MongoDB-style query as GenieACS takes it, e.g. {"_deviceId._SerialNumber": "SN1"}. '
    "Operators $eq $ne $gt $gte $lt $lte $in $nin $exists, and $and / $or lists.",
    {"type": "string"},
)
_SKIP = _query("skip", "How many matches to pass over.", {"type": "integer", "minimum": 0})
_LIMIT = _query("limit", "At most this many results.", {"type": "integer", "minimum": 0})
_HISTORY_LIMIT = _query(
    "limit", "At most this many (default 50).", {"type": "integer", "minimum": 1, "maximum": 1000}
)
_UNAUTHORIZED = _error("A token is configured and the request lacks it (WWW-Authenticate: Bearer).")
_BAD_REQUEST = _error("The query, parameters or body are malformed; the message says what to fix.")

_PARAMETER_VALUE = {
    "type": "array",
    "minItems": 2,
    "maxItems": 3,
    "prefixItems": [
        {"type": "string", "description": "Parameter path"},
        {"type": ["string", "integer", "boolean"]},
        {"type": "string", "description": "xsd type, e.g. xsd:unsignedInt"},
    ],
}


def _task(name: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"name": {"const": name}, **properties},
        "required": ["name", *required],
    }


_PATH_LIST = {"type": "array", "items": {"type": "string"}, "minItems": 1}
_OBJECT_NAME = {"type": "string", "description": "Object path, e.g. Device.IP.Interface."}

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "knock NBI",
        "version": __version__,
        "description": "The northbound API of the knock ACS, compatible with GenieACS's NBI. "
        'Every route also answers with a trailing slash. Errors are JSON {"error": ...}.',
    },
    "security": [{"bearer": []}],
    "paths": {
        "/devices/": {
            "get": {
                "summary": "Find devices",
                "parameters": [
                    _QUERY,
                    _query(
                        "projection",
                        "Comma-separated paths to include, e.g. _lastInform,Device.DeviceInfo.",
                        {"type": "string"},
                    ),
                    _query(
                        "sort",
                        'JSON object of path to 1 or -1, e.g. {"_lastInform": -1}.',
                        {"type": "string"},
                    ),
                    _SKIP,
                    _LIMIT,
                ],
                "responses": {
                    "200": _json({"type": "array", "items": _ref("Device")}, "Matching devices."),
                    "400": _BAD_REQUEST,
                    "401": _UNAUTHORIZED,
                },
            }
        },
        "/devices/{device_id}": {
            "delete": {
                "summary": "Forget a device with its parameters, sessions and tasks",
                "parameters": [_DEVICE_ID],
                "responses": {
                    "200": _json(_ref("Deleted"), "Deleted, or there was no such device."),
                    "401": _UNAUTHORIZED,
                },
            }
        },
        "/devices/{device_id}/tasks": {
            "post": {
                "summary": "Queue a task; optionally make the device run it now",
                "description": "Without a body and with connection_request, only asks the "
                "device to open a session (200 when it does, 504 otherwise).",
                "parameters": [
                    _DEVICE_ID,
                    _query(
                        "connection_request",
                        "Present (no value needed): ask the device to connect and wait for "
                        "the task to finish.",
                        {"type": "string"},
                    ),
                    _query(
                        "timeout",
                        "Milliseconds to wait, default 4000 (as GenieACS).",
                        {"type": "integer", "minimum": 0, "maximum": 600000},
                    ),
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": False,
                        "description": "1 to 128 visible ASCII characters (a UUID, say). A "
                        "retried POST with the same key gets the task the first one queued "
                        "instead of a second task, whatever became of the first answer.",
                        "schema": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,128}$"},
                    },
                ],
                "requestBody": {
                    "required": False,
                    "content": {"application/json": {"schema": _ref("NewTask")}},
                },
                "responses": {
                    "200": _json(
                        {"oneOf": [_ref("Task"), _ref("Woken")]},
                        "The task is done (or, without a body, the device opened a session).",
                    ),
                    "202": _json(
                        {"oneOf": [_ref("Task"), _ref("ConnectionRequestFailed")]},
                        "Queued. Reason phrase: 'Task queued but not processed' (no wait, or "
                        "the wait timed out), 'Task faulted' (the task carries its fault: the "
                        "device's, its sessions', or code 'unknown'), or why the connection "
                        "request failed.",
                    ),
                    "400": _BAD_REQUEST,
                    "401": _UNAUTHORIZED,
                    "404": _error("No such device."),
                    "409": _error("The Idempotency-Key already names another task."),
                    "413": _error("The body is over 1 MiB."),
                    "504": _error("Without a body: the device opened no session in time."),
                },
            }
        },
        "/devices/{device_id}/connection-request": {
            "post": {
                "summary": "Send a connection request now and report how it went (Knock's own)",
                "description": "Delivered means the device's Inform with 6 CONNECTION REQUEST "
                "arrived. Every attempt is listed, in the order the methods were tried.",
                "parameters": [
                    _DEVICE_ID,
                    _query(
                        "via",
                        "Only this method; default: the device's methods in order.",
                        {"type": "string", "enum": [m.value for m in CrMethod]},
                    ),
                    _query(
                        "timeout",
                        "Milliseconds allowed, default 30000.",
                        {"type": "integer", "minimum": 0, "maximum": 600000},
                    ),
                ],
                "responses": {
                    "200": _json(_ref("ConnectionRequestResult"), "Delivered."),
                    "400": _BAD_REQUEST,
                    "401": _UNAUTHORIZED,
                    "404": _error("No such device."),
                    "502": _json(_ref("ConnectionRequestResult"), "Not delivered; see outcome."),
                },
            }
        },
        "/tasks/": {
            "get": {
                "summary": "Find pending and faulted tasks, oldest first",
                "description": "As GenieACS: a task leaves this list once it has run; a faulted "
                "one stays with its fault. With ?history, every task Knock keeps, done ones "
                "too.",
                "parameters": [
                    {**_QUERY, "description": "Query over _id, device, name, status, timestamp."},
                    _query("history", "Also list done tasks (Knock's own).", {"type": "boolean"}),
                    _SKIP,
                    _LIMIT,
                ],
                "responses": {
                    "200": _json({"type": "array", "items": _ref("Task")}, "Matching tasks."),
                    "400": _BAD_REQUEST,
                    "401": _UNAUTHORIZED,
                },
            }
        },
        "/tasks/{task_id}": {
            "delete": {
                "summary": "Delete a task",
                "parameters": [
                    {
                        "name": "task_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "pattern": _OBJECT_ID},
                    }
                ],
                "responses": {
                    "200": _json(_ref("Deleted"), "Deleted."),
                    "401": _UNAUTHORIZED,
                    "404": _error("No such task."),
                },
            }
        },
        "/devices/{device_id}/tags/{tag}": {
            "post": {
                "summary": "Tag a device (GenieACS's _tags)",
                "parameters": [_DEVICE_ID, _TAG],
                "responses": {
                    "200": _json({"type": "object"}, "Tagged (a tag it had stays)."),
                    "400": _BAD_REQUEST,
                    "401": _UNAUTHORIZED,
                    "404": _error("No such device."),
                },
            },
            "delete": {
                "summary": "Untag a device",
                "parameters": [_DEVICE_ID, _TAG],
                "responses": {
                    "200": _json(_ref("Deleted"), "Untagged."),
                    "401": _UNAUTHORIZED,
                    "404": _error("The device has no such tag."),
                },
            },
        },
        "/presets/": {
            "get": {
                "summary": "Find presets, lightest first (the order they apply in)",
                "parameters": [
                    {**_QUERY, "description": 'Query over _id and weight, e.g. {"weight": 0}.'},
                    _SKIP,
                    _LIMIT,
                ],
                "responses": {
                    "200": _json({"type": "array", "items": _ref("Preset")}, "Matching presets."),
                    "400": _BAD_REQUEST,
                    "401": _UNAUTHORIZED,
                },
            }
        },
        "/presets/{name}": {
            "put": {
                "summary": "Create or replace a preset",
                "description": "Applied in every session of a device it matches (events and "
                "precondition), after Knock's own provisioning and before the device's tasks; "
                "only values that do not already hold are set.",
                "parameters": [_PRESET_NAME],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("Preset")}},
                },
                "responses": {
                    "200": _json(_ref("Preset"), "Stored."),
                    "400": _BAD_REQUEST,
                    "401": _UNAUTHORIZED,
                    "413": _error("The body is over 1 MiB."),
                },
            },
            "delete": {
                "summary": "Delete a preset",
                "parameters": [_PRESET_NAME],
                "responses": {
                    "200": _json(_ref("Deleted"), "Deleted."),
                    "401": _UNAUTHORIZED,
                    "404": _error("No such preset."),
                },
            },
        },
        "/provisions/{name}": {
            "put": {
                "summary": "Not supported: GenieACS's JavaScript provisions",
                "parameters": [_PRESET_NAME],
                "responses": {
                    "401": _UNAUTHORIZED,
                    "501": _error("Says what to use instead: presets with configurations."),
                },
            }
        },
        "/faults/": {
            "get": {
                "summary": "Find faults: tasks that faulted or ran out of retries",
                "parameters": [
                    {
                        **_QUERY,
                        "description": "Query over _id, channel, device, code (a device's "
                        'CWMP fault as "cwmp.9005"), timestamp.',
                    },
                    _SKIP,
                    _LIMIT,
                ],
                "responses": {
                    "200": _json({"type": "array", "items": _ref("Fault")}, "Matching faults."),
                    "400": _BAD_REQUEST,
                    "401": _UNAUTHORIZED,
                },
            }
        },
        "/faults/{fault_id}": {
            "delete": {
                "summary": "Retry: queue the faulted task again for the device's next session",
                "parameters": [
                    {
                        "name": "fault_id",
                        "in": "path",
                        "required": True,
                        "description": "<device>:task_<id>, percent-encoded once.",
                        "schema": {"type": "string"},
                    }
                ],
                "responses": {
                    "200": _json(_ref("Task"), "The task, queued again."),
                    "401": _UNAUTHORIZED,
                    "404": _error("No such fault."),
                },
            }
        },
        "/files/": {
            "get": {
                "summary": "Find stored files, by name",
                "parameters": [
                    {
                        **_QUERY,
                        "description": "Query over _id, filename, length, md5, uploadDate, "
                        "metadata.fileType, metadata.oui, metadata.productClass, "
                        "metadata.version.",
                    },
                    _query(
                        "projection",
                        "Comma-separated fields to include, e.g. length,metadata.version.",
                        {"type": "string"},
                    ),
                    _SKIP,
                    _LIMIT,
                ],
                "responses": {
                    "200": _json({"type": "array", "items": _ref("File")}, "Matching files."),
                    "400": _BAD_REQUEST,
                    "401": _UNAUTHORIZED,
                },
            }
        },
        "/files/{name}": {
            "put": {
                "summary": "Store a file CPEs download (firmware, configuration)",
                "description": "The body is the file, streamed into the store's database; a "
                "file of that name is replaced once the upload is whole. The file server "
                "(files_port, 7567) serves it to CPEs; a download task names it with file.",
                "parameters": [
                    _FILE_NAME,
                    *(
                        {
                            "name": header,
                            "in": "header",
                            "required": False,
                            "description": description,
                            "schema": {"type": "string"},
                        }
                        for header, description in (
                            ("fileType", 'TR-069 FileType, e.g. "1 Firmware Upgrade Image".'),
                            ("oui", "OUI of the devices it is for."),
                            ("productClass", "Product class it is for."),
                            ("version", "Version it installs."),
                        )
                    ),
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/octet-stream": {}},
                },
                "responses": {
                    "201": _json(_ref("File"), "Stored."),
                    "400": _BAD_REQUEST,
                    "401": _UNAUTHORIZED,
                    "408": _error("The upload stalled."),
                    "413": _error("Over 4294967295 bytes (TR-069's FileSize)."),
                },
            },
            "delete": {
                "summary": "Delete a stored file",
                "parameters": [_FILE_NAME],
                "responses": {
                    "200": _json(_ref("Deleted"), "Deleted."),
                    "401": _UNAUTHORIZED,
                    "404": _error("No such file."),
                },
            },
        },
        # The web dashboard: its pages need no token (they hold no data), its JSON does.
        "/": {
            "get": {
                "summary": "The web dashboard",
                "security": [],
                "responses": {"200": {"description": "HTML", "content": {"text/html": {}}}},
            }
        },
        "/dashboard/static/{name}": {
            "get": {
                "summary": "The dashboard's scripts and style sheet",
                "security": [],
                "parameters": [
                    {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {"200": {"description": "The file."}, "404": _error("No such file.")},
            }
        },
        "/dashboard/api/devices/{device_id}/sessions": {
            "get": {
                "summary": "The device's latest sessions, newest first",
                "parameters": [_DEVICE_ID, _HISTORY_LIMIT],
                "responses": {
                    "200": _json({"type": "array", "items": _ref("Session")}, "Sessions."),
                    "400": _BAD_REQUEST,
                    "401": _UNAUTHORIZED,
                    "404": _error("No such device."),
                },
            }
        },
        "/dashboard/api/devices/{device_id}/cr-attempts": {
            "get": {
                "summary": "The device's latest connection-request attempts, newest first",
                "parameters": [_DEVICE_ID, _HISTORY_LIMIT],
                "responses": {
                    "200": _json({"type": "array", "items": _ref("CrAttempt")}, "Attempts."),
                    "400": _BAD_REQUEST,
                    "401": _UNAUTHORIZED,
                    "404": _error("No such device."),
                },
            }
        },
        "/dashboard/api/devices/{device_id}/parameters": {
            "get": {
                "summary": "The device's stored parameters by path, with whether it reported "
                "each writable",
                "parameters": [_DEVICE_ID],
                "responses": {
                    "200": _json(
                        {"type": "array", "items": _ref("StoredParameter")}, "Parameters."
                    ),
                    "401": _UNAUTHORIZED,
                    "404": _error("No such device."),
                },
            }
        },
        "/dashboard/api/cr-stats": {
            "get": {
                "summary": "Connection requests of every device by method: latency histogram, "
                "failures by outcome and delivered share over time",
                "parameters": [
                    _query(
                        "window",
                        "Seconds back from now (default 3600).",
                        {"type": "integer", "minimum": 1, "maximum": 90 * 86400},
                    ),
                    _query(
                        "slices",
                        "Equal slices of the window (default 30), from the first that "
                        "holds an attempt to now: the answer's since is where they begin.",
                        {"type": "integer", "minimum": 1, "maximum": 500},
                    ),
                ],
                "responses": {
                    "200": _json(_ref("CrStats"), "Per method."),
                    "400": _BAD_REQUEST,
                    "401": _UNAUTHORIZED,
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics (text exposition 0.0.4); see docs/observability.md",
                "responses": {
                    "200": {
                        "description": "Counters, gauges and histograms of this ACS process.",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    "401": _UNAUTHORIZED,
                },
            }
        },
        "/ca.pem": {
            "get": {
                "summary": "The lab CA's certificate, for devices to trust (docs/security.md); "
                "served when a certificate Knock serves is one the lab CA signed",
                "security": [],
                "responses": {
                    "200": {
                        "description": "PEM.",
                        "content": {"application/x-pem-file": {"schema": {"type": "string"}}},
                    },
                },
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "responses": {
                    "200": _json({"type": "object"}, "OpenAPI 3.1."),
                    "401": _UNAUTHORIZED,
                },
            }
        },
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": {
                "type": "object",
                "properties": {"error": {"type": "string"}},
                "required": ["error"],
            },
            "Deleted": {"type": "object", "properties": {"deleted": {"type": "string"}}},
            "Woken": {
                "type": "object",
                "properties": {
                    "device": {"type": "string"},
                    "events": {"type": "array", "items": {"type": "string"}},
                },
            },
            "ConnectionRequestResult": {
                "type": "object",
                "properties": {
                    "device": {"type": "string"},
                    "outcome": {"type": "string", "enum": [o.value for o in CrOutcome]},
                    "method": {"type": ["string", "null"]},
                    "latencyMs": {
                        "type": ["number", "null"],
                        "description": "From sending the request to the device's Inform.",
                    },
                    "detail": {"type": "string"},
                    "attempts": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "method": {"type": "string"},
                                "outcome": {"type": "string"},
                                "detail": {"type": "string"},
                                "ms": {"type": "number"},
                            },
                        },
                    },
                },
            },
            "Device": {
                "type": "object",
                "description": "Parameters nest by path; a leaf is {_value, _type, _timestamp, "
                "_writable}, an object node has _object: true.",
                "properties": {
                    "_id": {"type": "string"},
                    "_deviceId": {
                        "type": "object",
                        "properties": {
                            k: {"type": "string"}
                            for k in ("_Manufacturer", "_OUI", "_ProductClass", "_SerialNumber")
                        },
                    },
                    **{
                        k: {"type": "string", "format": "date-time"}
                        for k in ("_lastInform", "_registered", "_lastBoot", "_lastBootstrap")
                    },
                    "_stun": {
                        "type": "object",
                        "description": "How the STUN server last answered the device's signed "
                        "Binding Requests, from where, since when (written when it changes).",
                        "properties": {
                            "outcome": {"type": "string", "enum": ["ok", "bad-integrity"]},
                            "source": {"type": "string"},
                            "since": {"type": "string", "format": "date-time"},
                        },
                    },
                    "_xmppLogin": {
                        "type": "object",
                        "description": "The device's last login to the built-in XMPP server, "
                        "written when it changes: outcome ok, or tls-refused (detail: the TLS "
                        "alert it sent over the server's certificate); the address it came from "
                        "and since when. Queryable as _xmppLogin.outcome.",
                        "properties": {
                            "outcome": {"type": "string", "enum": ["ok", "tls-refused"]},
                            "detail": {"type": "string"},
                            "source": {"type": "string"},
                            "since": {"type": "string", "format": "date-time"},
                        },
                    },
                    "_xmppSetup": {
                        "type": "object",
                        "description": "How provisioning XMPP connection requests last ended: "
                        "the row used, or why the device got none.",
                        "properties": {
                            "outcome": {"type": "string", "enum": ["ok", "failed"]},
                            "detail": {"type": "string"},
                            "time": {"type": "string", "format": "date-time"},
                        },
                    },
                    "_tags": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "Only when the device has tags.",
                    },
                },
                "required": ["_id"],
                "additionalProperties": {"type": "object"},
            },
            "NewTask": {
                "oneOf": [
                    _task("getParameterValues", {"parameterNames": _PATH_LIST}, ["parameterNames"]),
                    _task(
                        "setParameterValues",
                        {"parameterValues": {"type": "array", "items": _PARAMETER_VALUE}},
                        ["parameterValues"],
                    ),
                    _task(
                        "getParameterAttributes", {"parameterNames": _PATH_LIST}, ["parameterNames"]
                    ),
                    *(
                        _task(name, {"objectName": _OBJECT_NAME, "parameterName": _OBJECT_NAME}, [])
                        for name in ("refreshObject", "getParameterNames")
                    ),
                    _task(
                        "addObject",
                        {
                            "objectName": _OBJECT_NAME,
                            "parameterValues": {"type": "array", "items": _PARAMETER_VALUE},
                        },
                        ["objectName"],
                    ),
                    _task("deleteObject", {"objectName": _OBJECT_NAME}, ["objectName"]),
                    _task("reboot", {}, []),
                    _task("factoryReset", {}, []),
                    {
                        **_task(
                            "download",
                            {
                                "file": {
                                    "type": "string",
                                    "description": "A stored file (PUT /files/<name>): Knock "
                                    "fills in url, fileType, fileSize and the file server's "
                                    "credentials.",
                                },
                                "fileType": {
                                    "type": "string",
                                    "examples": ["1 Firmware Upgrade Image"],
                                },
                                "url": {"type": "string", "format": "uri"},
                                "fileName": {
                                    "type": "string",
                                    "description": "Without url: the stored file's name (as "
                                    "file); refused when no such file is stored.",
                                },
                                "targetFileName": {"type": "string"},
                                "username": {"type": "string"},
                                "password": {"type": "string"},
                                "fileSize": {"type": "integer", "minimum": 0},
                            },
                            [],
                        ),
                        "anyOf": [
                            {"required": ["file"]},
                            {"required": ["fileName"]},
                            {"required": ["url", "fileType"]},
                        ],
                    },
                ],
            },
            "Preset": {
                "type": "object",
                "properties": {
                    "_id": {"type": "string"},
                    "weight": {"type": "integer", "description": "heavier applies later, wins"},
                    "precondition": {
                        "type": ["string", "object"],
                        "description": "A device query (as for GET /devices/), or its JSON "
                        'text; "" matches every device.',
                    },
                    "events": {
                        "type": "object",
                        "additionalProperties": {"type": "boolean"},
                        "description": "Event codes that must (true) or must not (false) be in "
                        "the Inform.",
                    },
                    "configurations": {"type": "array", "items": _CONFIGURATION},
                },
                "additionalProperties": True,
            },
            "Fault": {
                "type": "object",
                "description": "GenieACS's fault document; one per faulted task.",
                "properties": {
                    "_id": {
                        "type": "string",
                        "examples": [f"001122-Router-SN1:task_{_EXAMPLE_ID}"],
                    },
                    "device": {"type": "string"},
                    "channel": {"type": "string", "examples": [f"task_{_EXAMPLE_ID}"]},
                    "code": {
                        "type": "string",
                        "description": "a device's CWMP fault as \"cwmp.9005\"; Knock's own: "
                        '"knock", or how the sessions it ran in ended ("timeout", "closed", ...)',
                    },
                    "message": {"type": "string"},
                    "detail": {},
                    "retries": {"type": "integer"},
                    "timestamp": {"type": "string", "format": "date-time"},
                },
                "required": ["_id", "device", "channel", "code", "message", "timestamp"],
            },
            "File": {
                "type": "object",
                "description": "A stored file as GenieACS lists one (GridFS's fields).",
                "properties": {
                    "_id": {"type": "string"},
                    "filename": {"type": "string"},
                    "length": {"type": "integer"},
                    "chunkSize": {"type": "integer"},
                    "md5": {"type": "string"},
                    "uploadDate": {"type": "string", "format": "date-time"},
                    "metadata": {
                        "type": "object",
                        "properties": {
                            k: {"type": "string"}
                            for k in ("fileType", "oui", "productClass", "version")
                        },
                    },
                },
                "required": ["_id"],
            },
            "Task": {
                "type": "object",
                "properties": {
                    "_id": {
                        "type": "string",
                        "pattern": _OBJECT_ID,
                        "description": "shaped as a MongoDB ObjectId; never reused",
                        "examples": [_EXAMPLE_ID],
                    },
                    "name": {"type": "string"},
                    "device": {"type": "string"},
                    "timestamp": {"type": "string", "format": "date-time"},
                    "status": {"enum": [status.value for status in TaskStatus]},
                    "fault": {
                        "type": "object",
                        "properties": {
                            "code": {"type": ["string", "null"]},
                            "message": {"type": ["string", "null"]},
                            "detail": {},
                        },
                    },
                    "retries": {
                        "type": "integer",
                        "description": "sessions that died while the task ran",
                    },
                    "retryAfter": {
                        "type": "string",
                        "format": "date-time",
                        "description": "a retried task waits until then; other tasks run",
                    },
                },
                "required": ["_id", "name", "device", "timestamp", "status"],
                "additionalProperties": True,
            },
            "Session": {
                "type": "object",
                "properties": {
                    "id": {"type": "integer"},
                    "started": {"type": "string", "format": "date-time"},
                    "ended": {"type": ["string", "null"], "format": "date-time"},
                    "events": {"type": "array", "items": {"type": "string"}},
                    "cwmpVersion": {"type": "string"},
                    "outcome": {"type": ["string", "null"]},
                },
            },
            "StoredParameter": {
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "an object node's ends in ."},
                    "value": {"type": ["string", "null"], "description": "as the device sent it"},
                    "type": {"type": ["string", "null"]},
                    "writable": {
                        "type": ["boolean", "null"],
                        "description": "as GetParameterNames reported it; null: never asked",
                    },
                    "timestamp": {"type": "string", "format": "date-time"},
                },
            },
            "CrAttempt": {
                "type": "object",
                "properties": {
                    "id": {"type": "integer"},
                    "method": {"enum": [m.value for m in CrMethod]},
                    "started": {"type": "string", "format": "date-time"},
                    "ended": {"type": ["string", "null"], "format": "date-time"},
                    "outcome": {"enum": [*(o.value for o in CrOutcome), None]},
                    "detail": {"type": ["string", "null"]},
                    "latencyMs": {"type": ["number", "null"]},
                },
            },
            "CrStats": {
                "type": "object",
                "properties": {
                    "since": {"type": "string", "format": "date-time"},
                    "until": {"type": "string", "format": "date-time"},
                    "sliceSeconds": {"type": "number"},
                    "latencyEdgesMs": {
                        "type": "array",
                        "items": {"type": "number"},
                        "description": "Upper bounds of the histogram's bins; one more bin "
                        "holds the slower ones.",
                    },
                    "methods": {
                        "type": "object",
                        "additionalProperties": {
                            "type": "object",
                            "properties": {
                                "attempts": {"type": "integer"},
                                "delivered": {"type": "integer"},
                                "pending": {"type": "integer"},
                                "medianMs": {"type": ["number", "null"]},
                                "histogram": {"type": "array", "items": {"type": "integer"}},
                                "failed": {
                                    "type": "object",
                                    "description": "Finished requests not delivered, by "
                                    "outcome, most first.",
                                    "additionalProperties": {"type": "integer"},
                                },
                                "slices": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "properties": {
                                            "finished": {"type": "integer"},
                                            "delivered": {"type": "integer"},
                                        },
                                    },
                                },
                            },
                        },
                    },
                },
            },
            "ConnectionRequestFailed": {
                "type": "object",
                "properties": {
                    "task": _ref("Task"),
                    "connectionRequestError": {"type": "string"},
                },
                "required": ["task", "connectionRequestError"],
            },
        },
    },
}


def _add_totals(document: dict[str, Any]) -> None:
    """GenieACS's collections answer with a `total` header, and HEAD with it alone."""
    for path in ("/devices/", "/tasks/", "/faults/", "/files/", "/presets/"):
        operation = document["paths"][path]["get"]
        operation["description"] = (
            "HEAD takes the same parameters and answers with the total header alone."
        )
        operation["responses"]["200"]["headers"] = {
            "total": {
                "description": "How many match the query, skip and limit aside.",
                "schema": {"type": "integer"},
            }
        }


_add_totals(OPENAPI)


def _answer_browser_refusals(document: dict[str, Any]) -> None:
    """Every route answers 421 to a Host that is not one of the NBI's names, and every change
    403 to another site's page (knock.nbi.origin), so every operation lists them."""
    misdirected = _error("The Host is not one of the NBI's names; add it to nbi_allowed_hosts.")
    cross_site = _error("A browser sent this change from another site's page.")
    for operations in document["paths"].values():
        for method, operation in operations.items():
            operation["responses"]["421"] = misdirected
            if method.upper() not in SAFE_METHODS:
                operation["responses"]["403"] = cross_site


_QUERY_STOPPED = _error(
    "The query ran past nbi_query_timeout and was stopped, or Knock is shutting down; the "
    "message says which."
)
# The routes whose reads the store bounds (Database.read).
_BOUNDED_READS = (
    ("/devices/", "get"),
    ("/tasks/", "get"),
    ("/presets/", "get"),
    ("/dashboard/api/cr-stats", "get"),
    ("/dashboard/api/devices/{device_id}/parameters", "get"),
)
_PATH_TEXT = _error("An id in the URL path holds a NUL character or a lone surrogate.")


def _answer_bounds(document: dict[str, Any]) -> None:
    """The bounded reads answer 503; every route with an id in its path 400 for text no
    database holds (knock.nbi.app's _text_in_path)."""
    for path, method in _BOUNDED_READS:
        document["paths"][path][method]["responses"]["503"] = _QUERY_STOPPED
    for path, operations in document["paths"].items():
        if "{" in path:
            for operation in operations.values():
                operation["responses"].setdefault("400", _PATH_TEXT)


_answer_browser_refusals(OPENAPI)
_answer_bounds(OPENAPI)
