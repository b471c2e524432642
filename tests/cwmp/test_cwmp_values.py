"""Typed values: validation, conversion, and lexical round trips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from knock.cwmp.values import (
    InvalidValue,
    PyValue,
    UnsupportedType,
    XsdType,
    canonical_type,
    from_json,
    from_python,
    to_python,
)

INT_RANGES = {
    XsdType.INT: (-(2**31), 2**31 - 1),
    XsdType.UNSIGNED_INT: (0, 2**32 - 1),
    XsdType.LONG: (-(2**63), 2**63 - 1),
    XsdType.UNSIGNED_LONG: (0, 2**64 - 1),
}
zones = st.sampled_from(
    [None, UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]
)
xml_text = st.text(
    st.one_of(
        st.sampled_from("\t\n\r"),
        st.characters(min_codepoint=0x20, max_codepoint=0xD7FF),
        st.characters(min_codepoint=0xE000, max_codepoint=0xFFFD),
        st.characters(min_codepoint=0x10000),
    )
)


def values_of(kind: XsdType) -> st.SearchStrategy[PyValue]:
    if kind in INT_RANGES:
        low, high = INT_RANGES[kind]
        return st.integers(low, high)
    others: dict[XsdType, st.SearchStrategy[PyValue]] = {
        XsdType.STRING: xml_text,
        XsdType.BOOLEAN: st.booleans(),
        XsdType.DATETIME: st.datetimes(timezones=zones),
        XsdType.BASE64: st.binary(),
        XsdType.HEX_BINARY: st.binary(),
    }
    return others[kind]


typed_values = st.sampled_from(list(XsdType)).flatmap(
    lambda kind: st.tuples(st.just(kind), values_of(kind))
)


@given(typed_values)
def test_python_round_trip(typed: tuple[XsdType, PyValue]) -> None:
    kind, value = typed
    text = from_python(value, kind)
    assert to_python(text, kind) == value
    # The text Knock writes is canonical: reading and writing it again changes nothing.
    assert from_python(to_python(text, kind), kind) == text


@pytest.mark.parametrize("kind", list(INT_RANGES))
def test_integer_bounds(kind: XsdType) -> None:
    low, high = INT_RANGES[kind]
    assert to_python(str(low), kind) == low
    assert to_python(str(high), kind) == high
    for outside in (low - 1, high + 1):
        with pytest.raises(InvalidValue, match="out of range"):
            to_python(str(outside), kind)
        with pytest.raises(InvalidValue, match="out of range"):
            from_python(outside, kind)


@pytest.mark.parametrize("text", ["", "1.5", "0x10", "1_000", "\u0661", "- 1", "1e3"])
def test_not_an_integer(text: str) -> None:
    with pytest.raises(InvalidValue, match="not a valid xsd:int"):
        to_python(text, "xsd:int")


def test_integer_lexical_tolerance() -> None:
    assert to_python(" +7\n", "int") == 7
    assert to_python("-0", "xsd:long") == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [("true", True), ("false", False), ("1", True), ("0", False), (" True ", True)],
)
def test_boolean(text: str, expected: bool) -> None:
    assert to_python(text, "xsd:boolean") is expected


@pytest.mark.parametrize("text", ["", "yes", "2", "on"])
def test_bad_boolean(text: str) -> None:
    with pytest.raises(InvalidValue, match="xsd:boolean"):
        to_python(text, "xsd:boolean")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0001-01-01T00:00:00Z", datetime(1, 1, 1, tzinfo=UTC)),
        ("2024-02-29T23:59:59", datetime(2024, 2, 29, 23, 59, 59)),
        (
            "2024-03-05T10:15:30.1234567+01:00",
            datetime(2024, 3, 5, 10, 15, 30, 123456, timezone(timedelta(hours=1))),
        ),
        ("2024-03-05T10:15:30-05:30", datetime(2024, 3, 5, 15, 45, 30, tzinfo=UTC)),
    ],
)
def test_datetime(text: str, expected: datetime) -> None:
    assert to_python(text, "xsd:dateTime") == expected


def test_unknown_time_round_trips_exactly() -> None:
    assert from_python(to_python("0001-01-01T00:00:00Z", "dateTime"), "dateTime") == (
        "0001-01-01T00:00:00Z"
    )


@pytest.mark.parametrize(
    "text",
    [
        "2024-02-30T00:00:00Z",
        "2024-01-01",
        "2024-01-01 10:00:00",
        "2024-01-01T25:00:00Z",
        "2024-01-01T00:00:00+15:00",
        "yesterday",
    ],
)
def test_bad_datetime(text: str) -> None:
    with pytest.raises(InvalidValue, match=r"xsd:dateTime|time zone"):
        to_python(text, "xsd:dateTime")


def test_binary_types() -> None:
    assert to_python("AAEC\n/w==", "xsd:base64") == b"\x00\x01\x02\xff"
    assert to_python("AAEC", "base64Binary") == b"\x00\x01\x02"
    assert to_python("00ff1A", "xsd:hexBinary") == b"\x00\xff\x1a"
    assert from_python(b"\x00\xff\x1a", "xsd:hexBinary") == "00FF1A"
    for text, kind in [
        ("AAE", "xsd:base64"),
        ("A*==", "xsd:base64"),
        ("0f0", "xsd:hexBinary"),
        ("zz", "xsd:hexBinary"),
    ]:
        with pytest.raises(InvalidValue):
            to_python(text, kind)


def test_string_must_be_xml_text() -> None:
    assert to_python("  as is \r\n", "string") == "  as is \r\n"
    with pytest.raises(InvalidValue, match="U\\+0000"):
        from_python("nul\x00", "xsd:string")


def test_python_type_must_match() -> None:
    mismatches: list[tuple[PyValue, str]] = [
        (True, "xsd:int"),
        ("1", "xsd:int"),
        (1, "xsd:boolean"),
        (b"", "string"),
        ("2024-01-01T00:00:00Z", "xsd:dateTime"),
    ]
    for value, kind in mismatches:
        with pytest.raises(InvalidValue, match="cannot be written"):
            from_python(value, kind)


def test_unsupported_type() -> None:
    with pytest.raises(UnsupportedType, match="xsd:decimal"):
        to_python("1.5", "xsd:decimal")
    assert issubclass(UnsupportedType, ValueError)


def test_canonical_type() -> None:
    assert canonical_type("unsignedInt") == "xsd:unsignedInt"
    assert canonical_type("xs:boolean") == "xsd:boolean"
    assert canonical_type("xsd:string") == "xsd:string"


@pytest.mark.parametrize(
    ("value", "xsd_type", "text"),
    [
        ("300", "xsd:unsignedInt", "300"),
        (300, "xsd:unsignedInt", "300"),
        ("true", "xsd:boolean", "1"),
        ("False", "xsd:boolean", "0"),
        (1, "xsd:boolean", "1"),
        (True, "xsd:string", "true"),
        (5, "xsd:string", "5"),
        ("00ff", "xsd:hexBinary", "00FF"),
        ("2024-05-01T12:00:00Z", "xsd:dateTime", "2024-05-01T12:00:00Z"),
    ],
)
def test_from_json_gives_canonical_text(value: str | int | bool, xsd_type: str, text: str) -> None:
    assert from_json(value, xsd_type) == text


@pytest.mark.parametrize(
    ("value", "xsd_type"),
    [("-1", "xsd:unsignedInt"), (True, "xsd:int"), (2, "xsd:boolean"), ("soon", "xsd:dateTime")],
)
def test_from_json_refuses(value: str | int | bool, xsd_type: str) -> None:
    with pytest.raises(InvalidValue):
        from_json(value, xsd_type)
