"""GenieACS presets without JavaScript, and device tags: checked on the way in.

A preset is {"weight": n, "precondition": <query>, "events": {"<event>": true|false},
"configurations": [...]}. The precondition is the NBI's device query (an object, or the JSON
text of one as GenieACS's UI writes it; "" matches every device). Configurations:
{"type": "value", "name": path, "value": v}, {"type": "age", "name": path, "age": seconds},
{"type": "add_tag", "tag": t}, {"type": "delete_tag", "tag": t}.
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
_NOT_SUPPORTED = {
    "provision": "JavaScript provisions are not supported; use value, age, add_tag and "
    "delete_tag configurations",
    "add_object": "add_object is not supported yet; queue an addObject task instead",
    "delete_object": "delete_object is not supported yet; queue a deleteObject task instead",
}
PROVISIONS_NOT_SUPPORTED = (
    "Knock does not run GenieACS's JavaScript provisions; presets with configurations of types "
    "value, age, add_tag and delete_tag are supported (PUT /presets/<name>), and tasks "
    "(POST /devices/<id>/tasks) do the rest"
)


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
    else:
        raise ApiError(
            400,
            f"{where}: type is one of value, age, add_tag, delete_tag, not {json.dumps(kind)}",
        )
