"""GenieACS presets without JavaScript, and device tags: checked on the way in.

A preset is {"weight": n, "precondition": <query>, "events": {"<event>": true|false},
"configurations": [...]}. The precondition is the NBI's device query (an object, or the JSON
text of one as GenieACS's UI writes it; "" matches every device). Configurations:
{"type": "value", "name": path, "value": v}, {"type": "age", "name": path, "age": seconds},
{"type": "add_tag", "tag": t}, {"type": "delete_tag", "tag": t}, and
{"type": "add_object" | "delete_object", "name": object, "object": {leaf: value, ...,
"_keys": [leaf, ...]}}: GenieACS's object document given inline (GenieACS names one stored
apart), the instance matched by its key parameters.
"""

from __future__ import annotations

import json
import re
from typing import Any

from knock.acs.presets import precondition
from knock.nbi.errors import ApiError
from knock.nbi.query import PATH, device_filter

_TAG = re.compile(r"[^\s/]{1,128}")
_MAX_NAME = 256
_MAX_AGE = 10 * 365 * 86400
_TYPES = "value, age, add_tag, delete_tag, add_object, delete_object"
_NOT_SUPPORTED = {
    "provision": f"JavaScript provisions are not supported; use configurations of types {_TYPES}",
}
PROVISIONS_NOT_SUPPORTED = (
    "Knock does not run GenieACS's JavaScript provisions; presets with configurations of types "
    f"{_TYPES} are supported (PUT /presets/<name>), and tasks (POST /devices/<id>/tasks) do "
    "the rest"
)
_MAX_OBJECT_PARAMS = 64


def check_tag(tag: str) -> str:
    if not _TAG.fullmatch(tag):
        raise ApiError(
            400, f"a tag is 1 to 128 characters without spaces or '/', not {json.dumps(tag)}"
        )
    return tag


def check_preset_name(name: str) -> str:
    if not name or len(name) > _MAX_NAME or not name.isprintable():
        raise ApiError(400, f"a preset name is 1 to {_MAX_NAME} printable characters")
    return name


def parse_preset(doc: Any) -> int:
    """Check a preset document; returns its weight."""
    if not isinstance(doc, dict):
        raise ApiError(400, 'a preset is a JSON object such as {"weight": 0, "configurations": []}')
    weight = doc.get("weight", 0)
    if not isinstance(weight, int) or isinstance(weight, bool) or abs(weight) > 2**31 - 1:
        raise ApiError(400, f"weight is a whole number, not {json.dumps(weight)}")
    if doc.get("schedule"):
        raise ApiError(400, "scheduled presets are not supported; leave schedule out")
    try:
        query = precondition(doc)
    except ValueError as exc:
        raise ApiError(
            400,
            f"precondition is a device query, as an object or its JSON text: {exc}; "
            "GenieACS's expression language is not supported",
        ) from None
    if query is not None:
        device_filter(query)  # a query the NBI cannot translate is refused now, not per session
    events = doc.get("events", {})
    if not isinstance(events, dict) or not all(isinstance(v, bool) for v in events.values()):
        raise ApiError(400, 'events maps event codes to true or false, e.g. {"0 BOOTSTRAP": true}')
    configurations = doc.get("configurations", [])
    if not isinstance(configurations, list):
        raise ApiError(400, "configurations is a list")
    for i, item in enumerate(configurations):
        _check_configuration(f"configurations[{i}]", item)
    return int(weight)


def _check_configuration(where: str, item: Any) -> None:
    kind = item.get("type") if isinstance(item, dict) else None
    if kind in _NOT_SUPPORTED:
        raise ApiError(400, f"{where}: {_NOT_SUPPORTED[kind]}")
    if kind in ("value", "age"):
        name = item.get("name")
        if not isinstance(name, str) or not PATH.fullmatch(name):
            raise ApiError(400, f"{where}: name is a parameter path, not {json.dumps(name)}")
        if kind == "value":
            value = item.get("value")
            if not isinstance(value, str | int) or name.endswith("."):
                raise ApiError(
                    400, f"{where}: value sets a parameter to a string, number or boolean"
                )
        else:
            age = item.get("age")
            if not isinstance(age, int) or isinstance(age, bool) or not 0 < age <= _MAX_AGE:
                raise ApiError(400, f"{where}: age is a number of seconds above 0")
    elif kind in ("add_tag", "delete_tag"):
        check_tag(item.get("tag") if isinstance(item.get("tag"), str) else "")
    elif kind in ("add_object", "delete_object"):
        _check_object(where, item)
    else:
        raise ApiError(400, f"{where}: type is one of {_TYPES}, not {json.dumps(kind)}")


def _check_object(where: str, item: dict[str, Any]) -> None:
    name = item.get("name")
    if not isinstance(name, str) or not PATH.fullmatch(name):
        raise ApiError(400, f"{where}: name is an object path, not {json.dumps(name)}")
    given = item.get("object")
    example = '{"ExternalPort": 8080, "Protocol": "TCP", "_keys": ["ExternalPort", "Protocol"]}'
    if not isinstance(given, dict) or not 0 < len(given) <= _MAX_OBJECT_PARAMS:
        raise ApiError(
            400,
            f"{where}: object gives the instance's parameters and which are its keys, e.g. "
            f"{example}",
        )
    values = {k: v for k, v in given.items() if k != "_keys"}
    for leaf, value in values.items():
        if not PATH.fullmatch(leaf) or leaf.endswith(".") or not isinstance(value, str | int):
            raise ApiError(
                400,
                f"{where}: object maps parameter names under an instance to a string, number "
                f"or boolean, not {json.dumps(leaf)}: {json.dumps(value)}",
            )
    keys = given.get("_keys", list(values))
    if (
        not isinstance(keys, list)
        or not keys
        or not all(isinstance(k, str) and k in values for k in keys)
    ):
        raise ApiError(
            400, f"{where}: _keys lists at least one of the object's own parameters, e.g. {example}"
        )
