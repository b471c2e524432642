"""The device key: how Knock names a CPE, the way GenieACS does so NBI scripts carry over."""

from __future__ import annotations

import re
from typing import Final

from knock.cwmp.rpcs import DeviceIdStruct

_UNSAFE: Final = re.compile(r"[^A-Za-z0-9_]+")


def _escape_run(match: re.Match[str]) -> str:
    return "".join(f"%{byte:02X}" for byte in match.group().encode("utf-8"))


def escape(part: str) -> str:
    """*part* with every character but ``[A-Za-z0-9_]`` as %XX of each of its UTF-8 bytes."""
    return _UNSAFE.sub(_escape_run, part)


def device_key(d: DeviceIdStruct) -> str:
    """``OUI-ProductClass-SerialNumber``, each part escaped; no ProductClass part when empty.

    Escaping ``-`` keeps the key unambiguous: the separators are the only bare dashes.
    """
    parts = (
        (d.oui, d.product_class, d.serial_number) if d.product_class else (d.oui, d.serial_number)
    )
    return "-".join(escape(part) for part in parts)
