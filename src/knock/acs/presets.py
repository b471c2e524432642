"""GenieACS presets without JavaScript, applied in a device's session after Knock's own
provisioning. Pure: the plan gets the configurations of the presets that apply (lightest
first) and what the store holds for their parameters, hands out at most a GetParameterValues
(parameters unknown, or older than an `age` configuration allows; an object the store knows no
instance of), an AddObject for each `add_object` no instance matches by its key parameters and
a DeleteObject for each instance a `delete_object` matches, and a SetParameterValues (only the
values that do not already hold, a new instance's among them: applying a preset twice changes
nothing), then says what to store.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from knock.cwmp.rpcs import (
    AddObject,
    AddObjectResponse,
    DeleteObject,
    DeleteObjectResponse,
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


Value = str | int | bool
OBJECT_TYPES = ("add_object", "delete_object")


@dataclass(frozen=True, slots=True)
class PresetOutcome:
    put: list[ParamValue] = field(default_factory=list)
    fault: str | None = None  # why the device refused, when it did
    delete_under: list[str] = field(default_factory=list)  # instances deleted


@dataclass(frozen=True, slots=True)
class ObjectSpec:
    """An add_object or delete_object configuration: {"name": table, "object": {leaf: value,
    ..., "_keys": [leaf, ...]}}; the instance is the one whose key parameters hold the values
    given (every parameter given is a key when `_keys` is left out)."""

    add: bool
    table: str  # the multi-instance object, ending in "."
    values: Mapping[str, Value]  # relative to an instance
    keys: tuple[str, ...]

    @classmethod
    def of(cls, item: Mapping[str, Any]) -> ObjectSpec:
        name = str(item["name"])
        given = dict(item.get("object") or {})
        keys = given.pop("_keys", None)
        return cls(
            item["type"] == "add_object",
            name if name.endswith(".") else name + ".",
            given,
            tuple(keys) if keys else tuple(given),
        )


def tag_changes(configurations: Sequence[Mapping[str, Any]]) -> tuple[set[str], set[str]]:
    """(tags to add, tags to delete); a later configuration wins over an earlier one."""
    final: dict[str, bool] = {}
    for item in configurations:
        if item.get("type") in ("add_tag", "delete_tag"):
            final[str(item["tag"])] = item["type"] == "add_tag"
    return {t for t, on in final.items() if on}, {t for t, on in final.items() if not on}


def parameter_paths(configurations: Sequence[Mapping[str, Any]]) -> list[str]:
    """Paths the configurations name (objects as prefixes): what to read from the store."""
    named = {str(c["name"]) for c in configurations if c.get("type") in ("value", "age")}
    tables = {ObjectSpec.of(c).table for c in configurations if c.get("type") in OBJECT_TYPES}
    return sorted(named | tables)


def relevant(
    configurations: Sequence[Mapping[str, Any]], params: Iterable[StoredParam]
) -> dict[str, StoredParam]:
    """The stored parameters a plan needs: those named, and every one under an object."""
    paths = parameter_paths(configurations)
    named, tables = {p for p in paths if not p.endswith(".")}, [p for p in paths if p.endswith(".")]
    return {p.path: p for p in params if p.path in named or p.path.startswith(tuple(tables))}


Step = tuple[ObjectSpec, AddObject | DeleteObject]


class PresetPlan:
    def __init__(
        self,
        configurations: Sequence[Mapping[str, Any]],
        stored: Mapping[str, StoredParam],
        now: datetime,
    ) -> None:
        self._wanted: dict[str, Value] = {}
        self._objects = [ObjectSpec.of(c) for c in configurations if c.get("type") in OBJECT_TYPES]
        refresh = {o.table for o in self._objects if not any(p.startswith(o.table) for p in stored)}
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
        self._queue: list[Step] | None = None
        self._waiting: Step | None = None
        self._deleted: list[str] = []
        self._added: list[Step] = []  # how to take each back
        self._fault: str | None = None  # the refusal being answered by taking them back

    def first(self) -> Rpc | None:
        """The first RPC, or None when every value holds, every object is as the presets
        want it and nothing is too old."""
        if self._refresh:
            return GetParameterValues(self._refresh)
        return self._next()

    def on_response(self, rpc: Rpc) -> Rpc | PresetOutcome:
        if isinstance(rpc, Fault):
            return self._refused(f"{rpc.fault_code} {rpc.fault_string}")
        waiting, self._waiting = self._waiting, None
        if isinstance(rpc, GetParameterValuesResponse) and self._queue is None:
            for p in rpc.parameter_list:
                self._known[p.name] = (p.value, p.type)
                self._read.append(ParamValue(p.name, p.value, p.type))
        elif isinstance(rpc, AddObjectResponse) and waiting is not None:
            spec, instance = waiting[0], f"{waiting[0].table}{rpc.instance_number}."
            self._added.append((spec, DeleteObject(instance)))
            for leaf, value in spec.values.items():
                self._wanted[instance + leaf] = value
        elif isinstance(rpc, DeleteObjectResponse) and waiting is not None:
            prefix = waiting[1].object_name
            self._deleted.append(prefix)
            self._known = {k: v for k, v in self._known.items() if not k.startswith(prefix)}
        elif isinstance(rpc, SetParameterValuesResponse) and self._sent:
            return self._outcome(None, [ParamValue(p.name, p.value, p.type) for p in self._sent])
        else:
            return self._outcome(f"unexpected {type(rpc).__name__}")
        following = self._next()
        return following if following is not None else self._outcome(self._fault)

    def _refused(self, fault: str) -> Rpc | PresetOutcome:
        """A refusal ends the plan; instances it added are deleted first, since without their
        key values no later session would recognise them and each would add another."""
        if self._fault is not None or not self._added:
            return self._outcome(self._fault or fault)
        self._fault = fault
        self._queue, self._added = self._added, []
        return self._next() or self._outcome(fault)

    def _outcome(self, fault: str | None, put: Sequence[ParamValue] = ()) -> PresetOutcome:
        """What to store: what was read (less what was deleted since) and what was set."""
        gone = tuple(self._deleted)
        read = [p for p in self._read if not p.path.startswith(gone)] if gone else self._read
        return PresetOutcome([*read, *put], fault, list(self._deleted))

    def _next(self) -> Rpc | None:
        if self._queue is None:
            self._queue = [step for spec in self._objects for step in self._object_steps(spec)]
        if self._queue:
            self._waiting = self._queue.pop(0)
            return self._waiting[1]
        return None if self._fault is not None else self._set()

    def _object_steps(self, spec: ObjectSpec) -> list[Step]:
        """An AddObject when no instance matches (its values are set once it exists), else the
        values on the first that does; a DeleteObject for every instance that matches."""
        matching = self._matching(spec)
        if not spec.add:
            return [(spec, DeleteObject(f"{spec.table}{n}.")) for n in matching]
        if not matching:
            return [(spec, AddObject(spec.table))]
        for leaf, value in spec.values.items():
            self._wanted[f"{spec.table}{matching[0]}.{leaf}"] = value
        return []

    def _matching(self, spec: ObjectSpec) -> list[int]:
        """The instances of the object whose key parameters hold the values given."""
        instances: dict[int, dict[str, tuple[str, str | None]]] = {}
        for path, known in self._known.items():
            if path.startswith(spec.table):
                number, _, leaf = path[len(spec.table) :].partition(".")
                if number.isdigit() and leaf:
                    instances.setdefault(int(number), {})[leaf] = known
        return [
            n
            for n, leaves in sorted(instances.items())
            if all(_matches(leaves.get(key), spec.values[key]) for key in spec.keys)
        ]

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


def _matches(known: tuple[str, str | None] | None, value: Value) -> bool:
    if known is None:
        return False
    text, xsd_type = known
    kind = xsd_type or _type_of(value)
    try:
        return _holds(text, from_json(value, kind), kind)
    except InvalidValue:
        return False


def _type_of(value: Value) -> str:
    if isinstance(value, bool):
        return "xsd:boolean"
    return "xsd:int" if isinstance(value, int) else "xsd:string"


def _holds(current: str, desired: str, xsd_type: str) -> bool:
    try:
        return from_json(current, xsd_type) == desired
    except InvalidValue:
        return current == desired
