"""Typed parameter values.

A value travels and is stored as its lexical text, exactly as the peer wrote it, so a
value read from a CPE goes back out byte for byte. `to_python` and `from_python` convert
between that text and Python objects, validating against the XSD type on the way.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from typing import Final, TypeAlias

PyValue: TypeAlias = str | int | bool | datetime | bytes


class XsdType(StrEnum):
    """The value types TR-069 data models use, spelled as Knock writes them in xsi:type."""

    STRING = "xsd:string"
    INT = "xsd:int"
    UNSIGNED_INT = "xsd:unsignedInt"
    LONG = "xsd:long"
    UNSIGNED_LONG = "xsd:unsignedLong"
    BOOLEAN = "xsd:boolean"
    DATETIME = "xsd:dateTime"
    BASE64 = "xsd:base64"
    HEX_BINARY = "xsd:hexBinary"


class InvalidValue(ValueError):
    """A value does not fit its declared type."""


class UnsupportedType(InvalidValue):
    """The declared type is not one Knock can convert."""


UNKNOWN_TIME: Final = "0001-01-01T00:00:00Z"
"""TR-069's dateTime for "unknown" (and, for time windows, "never")."""

_INT_RANGES: Final = {
    XsdType.INT: (-(2**31), 2**31 - 1),
    XsdType.UNSIGNED_INT: (0, 2**32 - 1),
    XsdType.LONG: (-(2**63), 2**63 - 1),
    XsdType.UNSIGNED_LONG: (0, 2**64 - 1),
}
# The XSD name is base64Binary; CWMP's data models and most CPEs say base64 (the SOAP-ENC name).
_ALIASES: Final = {"xsd:base64Binary": XsdType.BASE64}

# XSD collapses whitespace around every non-string value, so " 1 " is a valid int.
_XML_SPACE: Final = " \t\n\r"
_INTEGER: Final = re.compile(r"[+-]?[0-9]+")
_DATETIME: Final = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})?"
)
_HEX: Final = re.compile(r"(?:[0-9A-Fa-f]{2})*")
_BASE64_SPACE: Final = re.compile(r"[ \t\n\r]+")
# Characters XML 1.0 cannot carry at all, escaped or not.
_NOT_XML_CHAR: Final = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def canonical_type(name: str) -> str:
    """``"xsd:<local>"`` for a type written with any prefix or none (``int``, ``xs:int``)."""
    local = name.rpartition(":")[2]
    return f"xsd:{local}"


def _known_type(name: str) -> XsdType:
    canon = canonical_type(name)
    try:
        return _ALIASES.get(canon) or XsdType(canon)
    except ValueError:
        raise UnsupportedType(f"unsupported value type {name!r}") from None


def check_xml_text(text: str) -> str:
    """Return *text*, or raise `InvalidValue` when XML 1.0 cannot represent one of its chars."""
    bad = _NOT_XML_CHAR.search(text)
    if bad is not None:
        raise InvalidValue(f"character U+{ord(bad.group()):04X} cannot appear in XML")
    return text


def parse_int(text: str, type: str = XsdType.LONG) -> int:
    """The integer *text* holds, checked against the range of the integer *type*."""
    kind = _known_type(type)
    bounds = _INT_RANGES.get(kind)
    if bounds is None:
        raise UnsupportedType(f"{type!r} is not an integer type")
    stripped = text.strip(_XML_SPACE)
    if _INTEGER.fullmatch(stripped) is None:
        raise InvalidValue(f"{text!r} is not a valid {kind}")
    number = int(stripped)
    _check_range(number, kind, bounds)
    return number


def _check_range(number: int, kind: XsdType, bounds: tuple[int, int]) -> None:
    low, high = bounds
    if not low <= number <= high:
        raise InvalidValue(f"{number} is out of range for {kind} ({low}..{high})")


def parse_boolean(text: str) -> bool:
    """XSD boolean, tolerating the capitalised forms some CPEs send."""
    lowered = text.strip(_XML_SPACE).lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise InvalidValue(f"{text!r} is not a valid xsd:boolean (true, false, 1 or 0)")


def parse_datetime(text: str) -> datetime:
    """XSD dateTime; naive when the text carries no zone (CPEs in local time do that)."""
    match = _DATETIME.fullmatch(text.strip(_XML_SPACE))
    if match is None:
        raise InvalidValue(f"{text!r} is not a valid xsd:dateTime (YYYY-MM-DDThh:mm:ss[.s][Z])")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    tz: timezone | None = None
    if zone == "Z":
        tz = UTC
    elif zone is not None:
        hours, minutes = int(zone[1:3]), int(zone[4:6])
        if hours > 14 or minutes > 59:
            raise InvalidValue(f"{text!r} has an invalid time zone offset {zone}")
        offset = timedelta(hours=hours, minutes=minutes)
        tz = timezone(-offset if zone[0] == "-" else offset)
    # Python keeps microseconds; finer fractions are truncated rather than refused.
    micro = int((fraction or "").ljust(6, "0")[:6])
    try:
        return datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tz
        )
    except ValueError as exc:
        raise InvalidValue(f"{text!r} is not a valid xsd:dateTime: {exc}") from None


def format_datetime(value: datetime) -> str:
    """The XSD lexical form of *value*: ``Z`` for UTC, no zone for a naive datetime."""
    text = (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}"
        f"T{value.hour:02d}:{value.minute:02d}:{value.second:02d}"
    )
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    offset = value.utcoffset()
    if offset is None:
        return text
    seconds = int(offset.total_seconds())
    if seconds % 60 or offset.microseconds:
        raise InvalidValue(f"time zone offset {offset} is not a whole number of minutes")
    if seconds == 0:
        return text + "Z"
    sign = "-" if seconds < 0 else "+"
    hours, minutes = divmod(abs(seconds) // 60, 60)
    return f"{text}{sign}{hours:02d}:{minutes:02d}"


def to_python(text: str, type: str = XsdType.STRING) -> PyValue:
    """Convert lexical *text* of XSD *type* to Python, or raise `InvalidValue`.

    string -> str, the integer types -> int, boolean -> bool, dateTime -> datetime,
    base64 and hexBinary -> bytes.
    """
    kind = _known_type(type)
    if kind is XsdType.STRING:
        return check_xml_text(text)
    if kind in _INT_RANGES:
        return parse_int(text, kind)
    if kind is XsdType.BOOLEAN:
        return parse_boolean(text)
    if kind is XsdType.DATETIME:
        return parse_datetime(text)
    if kind is XsdType.BASE64:
        try:
            return base64.b64decode(_BASE64_SPACE.sub("", text), validate=True)
        except (binascii.Error, ValueError):
            raise InvalidValue(f"{text!r} is not valid base64") from None
    stripped = text.strip(_XML_SPACE)
    if _HEX.fullmatch(stripped) is None:
        raise InvalidValue(f"{text!r} is not valid xsd:hexBinary (pairs of hex digits)")
    return bytes.fromhex(stripped)


def from_python(value: PyValue, type: str = XsdType.STRING) -> str:
    """The lexical text of *value* as XSD *type*, or raise `InvalidValue`."""
    kind = _known_type(type)
    # bool is an int in Python; a flag given for an integer is almost surely a mistake.
    if kind in _INT_RANGES and isinstance(value, int) and not isinstance(value, bool):
        _check_range(value, kind, _INT_RANGES[kind])
        return str(value)
    if kind is XsdType.BOOLEAN and isinstance(value, bool):
        # 1/0 rather than true/false: some CPE firmware reads booleans with atoi().
        return "1" if value else "0"
    if kind is XsdType.STRING and isinstance(value, str):
        return check_xml_text(value)
    if kind is XsdType.DATETIME and isinstance(value, datetime):
        return format_datetime(value)
    if kind is XsdType.BASE64 and isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if kind is XsdType.HEX_BINARY and isinstance(value, bytes):
        return value.hex().upper()
    raise InvalidValue(f"a {value.__class__.__name__} cannot be written as {kind}")


def from_json(value: str | int | bool, type: str = XsdType.STRING) -> str:
    """The lexical text of a value as JSON carries it (NBI task specs), or raise `InvalidValue`.

    A string is taken as lexical text, checked against *type* and written in its canonical form
    ("true" becomes "1"); integers and booleans are converted, and written as text for an
    xsd:string.
    """
    kind = _known_type(type)
    if isinstance(value, str):
        if kind is XsdType.STRING:
            return check_xml_text(value)
        return from_python(to_python(value, kind), kind)
    if kind is XsdType.STRING:
        return ("true" if value else "false") if isinstance(value, bool) else str(value)
    if kind is XsdType.BOOLEAN and not isinstance(value, bool) and value in (0, 1):
        return str(value)
    return from_python(value, kind)
