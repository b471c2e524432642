"""GenieACS presets without JavaScript, applied in a device's session after Knock's own
provisioning. Pure: the plan gets the configurations of the presets that apply (lightest
first) and what the store holds for their parameters, hands out at most a GetParameterValues
(parameters unknown, or older than an `age` configuration allows) and a SetParameterValues
(only the values that do not already hold: applying a preset twice changes nothing), then says
what to store.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from knock.cwmp.rpcs import (
    Fault,
    GetParameterValues,
    GetParameterValuesResponse,
    ParameterValueStruct,
    Rpc,
    SetParameterValues,
    SetParameterValuesResponse,
)
from knock.cwmp.values import InvalidValue, from_json
from knock.store.rows import ParamValue, StoredParam


def precondition(doc: Mapping[str, Any]) -> Any:
    """A preset's precondition as a device query; None matches every device. GenieACS's UI
    writes it as JSON text, scripts as an object; raises ValueError for other text."""
    value = doc.get("precondition")
    if value in (None, "", {}):
        return None
    return json.loads(value) if isinstance(value, str) else value


def events_match(doc: Mapping[str, Any], events: Iterable[str]) -> bool:
    """GenieACS's events: each code mapped to true must be in the Inform, to false must not."""
    present = set(events)
    wanted = doc.get("events") or {}
    return all((code in present) == bool(want) for code, want in wanted.items())


@dataclass(frozen=True, slots=True)
class PresetOutcome:
    put: list[ParamValue] = field(default_factory=list)
    fault: str | None = None  # why the device refused, when it did


def tag_changes(configurations: Sequence[Mapping[str, Any]]) -> tuple[set[str], set[str]]:
    """(tags to add, tags to delete); a later configuration wins over an earlier one."""
    final: dict[str, bool] = {}
    for item in configurations:
        if item.get("type") in ("add_tag", "delete_tag"):
            final[str(item["tag"])] = item["type"] == "add_tag"
    return {t for t, on in final.items() if on}, {t for t, on in final.items() if not on}


def parameter_paths(configurations: Sequence[Mapping[str, Any]]) -> list[str]:
    """Paths the value and age configurations name: what to read from the store."""
    return sorted({str(c["name"]) for c in configurations if c.get("type") in ("value", "age")})


class PresetPlan:
    def __init__(
        self,
        configurations: Sequence[Mapping[str, Any]],
        stored: Mapping[str, StoredParam],
        now: datetime,
    ) -> None:
        self._wanted: dict[str, str | int | bool] = {}
        refresh: set[str] = set()
        for item in configurations:
            name = str(item.get("name", ""))
            if item.get("type") == "value":
                self._wanted[name] = item["value"]  # the heavier preset, later, wins
                known = stored.get(name)
                if known is None or known.value is None:
                    refresh.add(name)
            elif item.get("type") == "age":
                known = stored.get(name)
                if known is None or known.timestamp < now - timedelta(seconds=int(item["age"])):
                    refresh.add(name)
        self._known: dict[str, tuple[str, str | None]] = {
            path: (p.value, p.type) for path, p in stored.items() if p.value is not None
        }
        self._refresh = sorted(refresh)
        self._read: list[ParamValue] = []
        self._sent: list[ParameterValueStruct] = []

    def first(self) -> Rpc | None:
        """The first RPC, or None when every value holds and nothing is too old."""
        if self._refresh:
            return GetParameterValues(self._refresh)
        return self._set()

    def on_response(self, rpc: Rpc) -> Rpc | PresetOutcome:
        if isinstance(rpc, Fault):
            return PresetOutcome(self._read, f"{rpc.fault_code} {rpc.fault_string}")
        if isinstance(rpc, GetParameterValuesResponse) and not self._sent:
            for p in rpc.parameter_list:
                self._known[p.name] = (p.value, p.type)
                self._read.append(ParamValue(p.name, p.value, p.type))
            following = self._set()
            return following if following is not None else PresetOutcome(self._read)
        if isinstance(rpc, SetParameterValuesResponse):
            put = [ParamValue(p.name, p.value, p.type) for p in self._sent]
            return PresetOutcome([*self._read, *put])
        return PresetOutcome(self._read, f"unexpected {type(rpc).__name__}")

    def _set(self) -> SetParameterValues | None:
        changes = []
        for path, value in self._wanted.items():
            text, xsd_type = self._known.get(path, (None, None))
            kind = xsd_type or _type_of(value)
            try:
                desired = from_json(value, kind)
            except InvalidValue:
                continue  # not a value of the parameter's type: nothing a device would take
            if text is None or not _holds(text, desired, kind):
                changes.append(ParameterValueStruct(path, desired, kind))
        if not changes:
            return None
        self._sent = changes
        return SetParameterValues(changes, parameter_key="")


def _type_of(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "xsd:boolean"
    return "xsd:int" if isinstance(value, int) else "xsd:string"


def _holds(current: str, desired: str, xsd_type: str) -> bool:
    try:
        return from_json(current, xsd_type) == desired
    except InvalidValue:
        return current == desired
