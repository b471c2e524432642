"""Device documents shaped as GenieACS serves them, so scripts written for it read them as-is."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from knock.connreq.dispatcher import CrResult
from knock.nbi.query import INTEGER_TYPES
from knock.store.rows import DeviceRow, StoredParam

_INTEGER = re.compile(r"[-+]?[0-9]+")


def iso(moment: datetime) -> str:
    """A date as GenieACS prints one (JavaScript's toISOString): UTC, milliseconds, "Z"."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def json_value(text: str, xsd_type: str | None) -> bool | int | str:
    """A stored value typed as GenieACS types it; text a CPE garbled stays text."""
    if xsd_type == "xsd:boolean":
        lowered = text.strip().lower()
        if lowered in ("true", "1"):
            return True
        if lowered in ("false", "0"):
            return False
    elif xsd_type in INTEGER_TYPES:
        if _INTEGER.fullmatch(text.strip()):
            return int(text)
    elif xsd_type == "xsd:dateTime":
        try:
            moment = datetime.fromisoformat(text.strip())
            return iso(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
        except (ValueError, OverflowError):
            pass
    return text


def selects(projection: Sequence[str] | None, key: str) -> bool:
    """Whether a projection keeps the document node at dotted `key`."""
    return projection is None or any(key == p or key.startswith(p + ".") for p in projection)


def parameters_to_fetch(projection: Sequence[str] | None) -> tuple[str, ...] | None:
    """Path prefixes to ask the store for: () means all parameters, None means none at all."""
    if projection is None:
        return ()
    wanted = tuple(p for p in projection if not p.startswith("_"))
    return wanted or None


def device_document(
    device: DeviceRow,
    params: Sequence[StoredParam],
    projection: Sequence[str] | None = None,
    tags: Sequence[str] = (),
) -> dict[str, Any]:
    """The GenieACS document of one device. `projection` (see `query.parse_projection`) limits
    it to some paths; `_id` is always there, as in MongoDB. `_tags` only when it has some, as
    in GenieACS."""
    doc: dict[str, Any] = {"_id": device.id}
    if tags and selects(projection, "_tags"):
        doc["_tags"] = list(tags)
    identity = {
        "_deviceId._Manufacturer": device.manufacturer,
        "_deviceId._OUI": device.oui,
        "_deviceId._ProductClass": device.product_class,
        "_deviceId._SerialNumber": device.serial_number,
    }
    moments = {
        "_lastInform": device.last_inform,
        "_registered": device.registered,
        "_lastBoot": device.last_boot,
        "_lastBootstrap": device.last_bootstrap,
    }
    fields: dict[str, Any] = identity | {k: iso(v) for k, v in moments.items() if v is not None}
    fields |= _outcomes(device)
    for key, value in fields.items():
        if selects(projection, key):
            *parents, last = key.split(".")
            _node(doc, parents)[last] = value
    for param in params:
        key = param.path.removesuffix(".")
        parts = key.split(".")
        # A name starting with "_" would overwrite the document's own attributes.
        if any(part.startswith("_") for part in parts) or not selects(projection, key):
            continue
        _node(doc, parts).update(_attributes(param))
        # A node with children is an object even where the store holds no row of its own (its
        # parameters were read by value): GenieACS marks it so. Only where the projection keeps
        # the node itself, as MongoDB projects.
        for depth in range(1, len(parts)):
            if selects(projection, ".".join(parts[:depth])):
                _node(doc, parts[:depth])["_object"] = True
    return doc


def _outcomes(device: DeviceRow) -> dict[str, Any]:
    """What Knock saw of the device besides its parameters: how the STUN server last answered
    it (`_stun`), how provisioning XMPP ended (`_xmppSetup`) and its last login to the built-in
    XMPP server (`_xmppLogin`), where it has."""
    found: dict[str, Any] = {}
    if device.stun_outcome is not None and device.stun_since is not None:
        found["_stun.outcome"] = device.stun_outcome
        found["_stun.source"] = device.stun_source
        found["_stun.since"] = iso(device.stun_since)
    if device.xmpp_setup is not None and device.xmpp_setup_at is not None:
        found["_xmppSetup.outcome"] = device.xmpp_setup
        found["_xmppSetup.detail"] = device.xmpp_setup_detail
        found["_xmppSetup.time"] = iso(device.xmpp_setup_at)
    if device.xmpp_login_since is not None:
        # ok, or tls-refused (detail: the TLS alert the device sent over the server's
        # certificate), from source, since when.
        found["_xmppLogin.outcome"] = device.xmpp_login_outcome
        found["_xmppLogin.detail"] = device.xmpp_login_detail or ""
        found["_xmppLogin.source"] = device.xmpp_login_source or ""
        found["_xmppLogin.since"] = iso(device.xmpp_login_since)
    return found


def _node(doc: dict[str, Any], parts: Sequence[str]) -> dict[str, Any]:
    node = doc
    for part in parts:
        node = node.setdefault(part, {})
    return node


def _attributes(param: StoredParam) -> dict[str, Any]:
    attrs: dict[str, Any] = {"_object": param.path.endswith(".")}
    if param.value is not None:
        attrs["_value"] = json_value(param.value, param.type)
        if param.type is not None:
            attrs["_type"] = param.type
    attrs["_timestamp"] = iso(param.timestamp)
    if param.writable is not None:
        attrs["_writable"] = param.writable
    return attrs


def cr_result_document(result: CrResult) -> dict[str, Any]:
    """A connection request's outcome as the NBI shows it; times in milliseconds."""
    return {
        "device": result.device_id,
        "outcome": result.outcome.value,
        "method": result.method.value if result.method else None,
        "latencyMs": None if result.latency is None else round(result.latency * 1000, 1),
        "detail": result.detail,
        "attempts": [
            {
                "method": a.method.value,
                "outcome": a.outcome.value,
                "detail": a.detail,
                "ms": round(a.seconds * 1000, 1),
            }
            for a in result.attempts
        ],
    }
