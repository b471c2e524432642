"""The longest text each stored column keeps, checked before a write.

PostgreSQL fails a statement whose text is longer than its column (the ACS then answered a
device's every Inform with 500); SQLite keeps any length. Checking here holds both to the
schema's lengths and names the field that is too long.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Column, String

from knock.store.errors import StoreError
from knock.store.schema import devices, parameters, sessions


class TooLongError(StoreError, ValueError):
    """A text is longer than the store keeps; the message names the field and the limit."""

    def __init__(self, field: str, length: int, limit: int) -> None:
        super().__init__(
            f"{field} is {length} characters long; Knock stores at most {limit} characters"
        )
        self.field = field
        self.limit = limit


def _limit(column: Column[Any]) -> int:
    assert isinstance(column.type, String) and column.type.length is not None
    return column.type.length


def _shown(path: str) -> str:
    return path if len(path) <= 60 else path[:60] + "..."


# The Inform's DeviceIdStruct and the device key made of it, by the names the Inform gives
# them, with the longest each column keeps. Escaping (knock.cwmp.deviceid) can make the key up
# to nine times its parts' length.
_DEVICE_FIELDS = tuple(
    (key, field, _limit(column))
    for key, field, column in (
        ("manufacturer", "DeviceId/Manufacturer", devices.c.manufacturer),
        ("oui", "DeviceId/OUI", devices.c.oui),
        ("product_class", "DeviceId/ProductClass", devices.c.product_class),
        ("serial_number", "DeviceId/SerialNumber", devices.c.serial_number),
        ("id", "the device key (OUI-ProductClass-SerialNumber, escaped)", devices.c.id),
    )
)
_NAMESPACE_LIMIT = _limit(sessions.c.cwmp_version)


def check_inform(device: Mapping[str, Any], cwmp_version: str) -> None:
    """The Inform's DeviceIdStruct, the device key made of it, and its namespace."""
    for key, field, limit in _DEVICE_FIELDS:
        value = device[key]
        if value is not None and len(value) > limit:
            raise TooLongError(field, len(value), limit)
    if len(cwmp_version) > _NAMESPACE_LIMIT:
        raise TooLongError("the CWMP namespace", len(cwmp_version), _NAMESPACE_LIMIT)


_PATH_LIMIT = _limit(parameters.c.path)
_TYPE_LIMIT = _limit(parameters.c.type)


def check_parameters(rows: Iterable[Mapping[str, Any]]) -> None:
    """Parameter rows as the store writes them (path, value, type)."""
    # Every Inform's parameters pass here: the message is made only for a text too long.
    for row in rows:
        path, type_ = row["path"], row["type"]
        if len(path) > _PATH_LIMIT:
            raise TooLongError(f"the parameter name {_shown(path)!r}", len(path), _PATH_LIMIT)
        if type_ is not None and len(type_) > _TYPE_LIMIT:
            raise TooLongError(f"the type of {_shown(path)}", len(type_), _TYPE_LIMIT)
