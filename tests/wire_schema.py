"""Every envelope Knock builds, held to the CWMP schemas of tests/cwmp/schema/.

The XSDs there are written from TR-069 Annex A's tables (element names, order, types,
occurrences, lengths), one per namespace whose messages differ; they are not derived from
Knock's codec, so a renamed, reordered or missing element fails even when the ACS and the
simulator, sharing that codec, would still understand each other.

XSD 1.0 cannot say everything a peer relies on, so `wire_errors` adds what it cannot: the
literal `cwmp` prefix, an arrayType whose item type and count match the items, and an xsi:type
on every parameter value.

`guard_build_envelope` wraps `knock.cwmp.envelope.build_envelope` for the whole test session
(tests/conftest.py installs it), so every message any test makes Knock build is checked.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

from lxml import etree

import knock.cwmp.envelope
from knock.cwmp.namespaces import CWMP_1_0, CWMP_1_1, CWMP_1_2, CWMP_1_3, CWMP_1_4, SOAP_ENC, XSI
from knock.cwmp.rpcs import (
    AutonomousTransferComplete,
    AutonomousTransferCompleteResponse,
    CancelTransfer,
    CancelTransferResponse,
    GetAllQueuedTransfers,
    GetAllQueuedTransfersResponse,
    Rpc,
    ScheduleDownload,
    ScheduleDownloadResponse,
)
from knock.xmlsafe import parse_xml

SCHEMA_DIR = Path(__file__).parent / "cwmp" / "schema"

# CWMP 1.3 and 1.4 kept the cwmp-1-2 URI; the URIs a few CPEs invent for them are held to the
# 1.2 schema.
_SCHEMA_OF: dict[str, tuple[str, str]] = {
    CWMP_1_0: ("cwmp-1-0.xsd", CWMP_1_0),
    CWMP_1_1: ("cwmp-1-1.xsd", CWMP_1_1),
    CWMP_1_2: ("cwmp-1-2.xsd", CWMP_1_2),
    CWMP_1_3: ("cwmp-1-2.xsd", CWMP_1_2),
    CWMP_1_4: ("cwmp-1-2.xsd", CWMP_1_2),
}

# Namespaces whose message sets differ (1.3 and 1.4 kept cwmp-1-2), oldest first.
VERSIONS = (CWMP_1_0, CWMP_1_1, CWMP_1_2)

# Messages a later namespace added (TR-069 Amendment 2: cwmp-1-1; Amendment 3: cwmp-1-2).
ADDED_IN: dict[type[Rpc], str] = {
    GetAllQueuedTransfers: CWMP_1_1,
    GetAllQueuedTransfersResponse: CWMP_1_1,
    AutonomousTransferComplete: CWMP_1_1,
    AutonomousTransferCompleteResponse: CWMP_1_1,
    ScheduleDownload: CWMP_1_2,
    ScheduleDownloadResponse: CWMP_1_2,
    CancelTransfer: CWMP_1_2,
    CancelTransferResponse: CWMP_1_2,
}


def has_message(cwmp_ns: str, message: type[Rpc]) -> bool:
    """Whether namespace *cwmp_ns* defines *message* (1.3 and 1.4 URIs count as cwmp-1-2)."""
    added = ADDED_IN.get(message, CWMP_1_0)
    return cwmp_ns not in VERSIONS or VERSIONS.index(cwmp_ns) >= VERSIONS.index(added)


_ARRAY_TYPE = f"{{{SOAP_ENC}}}arrayType"
_XSI_TYPE = f"{{{XSI}}}type"
_ARRAY = re.compile(r"(xsd|cwmp):(\w+)\[([0-9]+)\]")
# SOAP-ENC's name for base64 (which Knock and most CPEs write as xsd:base64) has no XSD twin
# of that name; it is validated as the XSD type it means.
_TYPE_ALIASES = {"xsd:base64": "xsd:base64Binary"}


@cache
def schema(file: str) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(SCHEMA_DIR / file)))


def wire_errors(data: bytes) -> list[str]:
    """What makes envelope *data* break the CWMP schema of its namespace; empty when nothing."""
    root = parse_xml(data)
    cwmp_ns = root.nsmap.get("cwmp")
    if cwmp_ns not in _SCHEMA_OF:
        return [f"no CWMP namespace bound to the literal prefix cwmp: {root.nsmap}"]
    file, schema_ns = _SCHEMA_OF[cwmp_ns]
    errors = _array_errors(root) + _value_type_errors(root)
    if schema_ns != cwmp_ns:
        root = parse_xml(data.replace(cwmp_ns.encode(), schema_ns.encode()))
    for value in root.iter("Value"):
        alias = _TYPE_ALIASES.get(value.get(_XSI_TYPE, ""))
        if alias is not None:
            value.set(_XSI_TYPE, alias)
    checker = schema(file)
    if not checker.validate(root):
        errors += [f"line {e.line}: {e.message}" for e in checker.error_log]
    return errors


def _array_errors(root: etree._Element) -> list[str]:
    errors = []
    for array in root.iter():
        declared = array.get(_ARRAY_TYPE)
        if declared is None:
            continue
        name = etree.QName(array).localname
        match = _ARRAY.fullmatch(declared)
        if match is None:
            errors.append(f"{name}: arrayType {declared!r} is not xsd:T[n] or cwmp:T[n]")
            continue
        prefix, item, count = match.groups()
        if (prefix == "xsd") != (item == "string"):
            errors.append(f"{name}: arrayType {declared!r} has the wrong prefix for {item}")
        if int(count) != len(array):
            errors.append(f"{name}: arrayType {declared!r} but {len(array)} items")
        errors += [
            f"{name}: item <{child.tag}> in an array of {item}"
            for child in array
            if child.tag != item
        ]
    return errors


def _value_type_errors(root: etree._Element) -> list[str]:
    return [
        f"ParameterValueStruct {value.getprevious().text!r}: Value without xsi:type"
        for value in root.iter("Value")
        if value.getparent().tag == "ParameterValueStruct" and value.get(_XSI_TYPE) is None
    ]


# --- The guard the test session runs under ------------------------------------------------

VIOLATIONS: list[str] = []
"""Messages built since the current test began that broke the schema (tests/conftest.py
fails the test that built them)."""

_original_build = knock.cwmp.envelope.build_envelope
unguarded_build = _original_build
"""The codec's own build_envelope, for checks that report failures themselves (the goldens,
the mutation check, which expects them)."""


def guarded_build(body: Any, **kwargs: Any) -> bytes:
    data = _original_build(body, **kwargs)
    errors = wire_errors(data)
    if errors:
        VIOLATIONS.append(f"{type(body).__name__} built off-schema: " + "; ".join(errors))
    return data


def guard_build_envelope() -> None:
    """Route every call of build_envelope through the schema check, for modules loaded now
    and (through the module attribute) for every one imported later."""
    import sys

    for module in list(sys.modules.values()):
        if getattr(module, "build_envelope", None) is _original_build:
            module.build_envelope = guarded_build  # type: ignore[attr-defined]
