"""The simulated CPE's data model: a schema loaded once from JSON, one tree of values per device.

A `ModelSchema` describes objects and parameters as TR-181/TR-098 name them (multi-instance
objects as ``X.{i}.``) and is shared by every device using it, so a fleet of thousands pays for
its definitions once. A `DataModel` holds what one device has: concrete parameter values,
object instances, attributes and pending value-change notifications. Its methods implement the
parameter RPCs with TR-069 Annex A semantics and raise `ModelFault` with the CPE fault to answer.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Final

from knock.cwmp.faults import CpeFault, cpe_fault, fault_string
from knock.cwmp.rpcs import (
    DeviceIdStruct,
    Fault,
    ParameterAttributeStruct,
    ParameterInfoStruct,
    ParameterValueStruct,
    SetParameterAttributesStruct,
    SetParameterValuesFault,
)
from knock.cwmp.values import UNKNOWN_TIME, InvalidValue, XsdType, canonical_type, to_python

BUILTIN_MODELS: Final = ("tr181", "tr098", "tr098-http")
# The ManagementServer parameters of UDP connection requests (UDPConnReq:1, TR-111 part 2).
UDP_PARAMETERS: Final = (
    "UDPConnectionRequestAddress",
    "NATDetected",
    "STUNEnable",
    "STUNServerAddress",
    "STUNServerPort",
    "STUNUsername",
    "STUNPassword",
    "STUNMinimumKeepAlivePeriod",
    "STUNMaximumKeepAlivePeriod",
)
# Built-in variants: a base model less ManagementServer parameters. tr098-http is the device
# load-test simulators and many small CPEs are: HTTP connection requests only, no STUN (no
# UDPConnReq:1 parameters) and no SupportedConnReqMethods to say so.
_VARIANTS: Final = {"tr098-http": ("tr098", (*UDP_PARAMETERS, "SupportedConnReqMethods"))}

_INSTANCE: Final = "{i}."
_SUBSCRIBER: Final = "Subscriber"
_TYPE_DEFAULTS: Final = {
    XsdType.BOOLEAN: "false",
    XsdType.DATETIME: UNKNOWN_TIME,
    XsdType.INT: "0",
    XsdType.UNSIGNED_INT: "0",
    XsdType.LONG: "0",
    XsdType.UNSIGNED_LONG: "0",
}


class ModelError(ValueError):
    """A model file that cannot be used; the message names the file and the culprit."""


class ModelFault(Exception):
    """A CPE fault an RPC on the data model ends with."""

    def __init__(
        self,
        code: CpeFault,
        message: str,
        parameter_faults: Sequence[SetParameterValuesFault] = (),
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.parameter_faults = tuple(parameter_faults)

    def to_fault(self) -> Fault:
        return cpe_fault(self.code, self.message, list(self.parameter_faults))


class ActiveNotify(StrEnum):
    """How a parameter treats active notification (TR-106 ``activeNotify``)."""

    NORMAL = "normal"
    CAN_DENY = "canDeny"  # transient values (UpTime): the CPE may refuse active notification
    FORCE_ENABLED = "forceEnabled"  # always active, whatever the ACS sets
    FORCE_DEFAULT_ENABLED = "forceDefaultEnabled"  # active until the ACS says otherwise


def template_of(path: str) -> str:
    """``Device.IP.Interface.2.Name`` -> ``Device.IP.Interface.{i}.Name``."""
    return ".".join(
        "{i}" if part.isascii() and part.isdigit() else part for part in path.split(".")
    )


def parent_of(path: str) -> str:
    """The object holding *path* (a parameter or an object); "" for the root object."""
    return path[: path.rstrip(".").rfind(".") + 1]


@dataclass(frozen=True, slots=True)
class ParamDef:
    leaf: str
    type: XsdType
    writable: bool
    default: str
    active_notify: ActiveNotify = ActiveNotify.NORMAL
    hidden: bool = False  # passwords read back as "" (TR-106 hidden/secured)
    is_list: bool = False  # comma-separated; enumeration and maxLength apply to each item
    enumeration: frozenset[str] = frozenset()
    minimum: int | None = None
    maximum: int | None = None
    max_length: int | None = None
    max_items: int | None = None

    @property
    def default_notification(self) -> int:
        return 0 if self.active_notify in (ActiveNotify.NORMAL, ActiveNotify.CAN_DENY) else 2

    def check(self, value: str) -> None:
        """Raise `InvalidValue` unless *value* is acceptable for this parameter."""
        items = [item.strip() for item in value.split(",")] if self.is_list else [value]
        if self.is_list and value == "":
            items = []
        if self.max_items is not None and len(items) > self.max_items:
            raise InvalidValue(f"more than {self.max_items} items")
        for item in items:
            converted = to_python(item, self.type)
            if self.max_length is not None and len(item) > self.max_length:
                raise InvalidValue(f"longer than {self.max_length} characters")
            if self.enumeration and item not in self.enumeration:
                raise InvalidValue(f"{item!r} is not one of {', '.join(sorted(self.enumeration))}")
            if isinstance(converted, int) and not isinstance(converted, bool):
                if self.minimum is not None and converted < self.minimum:
                    raise InvalidValue(f"{converted} is below the minimum {self.minimum}")
                if self.maximum is not None and converted > self.maximum:
                    raise InvalidValue(f"{converted} is above the maximum {self.maximum}")


@dataclass(frozen=True, slots=True)
class ObjectDef:
    name: str  # template, e.g. "Device.Hosts.Host.{i}."
    multi: bool
    writable: bool  # for a multi-instance object: AddObject and DeleteObject allowed
    count: str | None  # the NumberOfEntries parameter, in the table's parent object
    params: tuple[ParamDef, ...]
    children: tuple[str, ...]  # templates of the objects directly below
    # How a table that is not writable refuses AddObject: TR-069 leaves the fault code open, and
    # devices answer 9001 (request denied) or 9005 (as if the table did not exist).
    refusal: CpeFault = CpeFault.REQUEST_DENIED
    # Tables below each new row that the device gives a row of its own on AddObject
    # ("Server." for an XMPP.Connection row on some stacks).
    rows_with: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ModelSchema:
    name: str
    root: str
    objects: Mapping[str, ObjectDef]
    tables: Mapping[str, ObjectDef]  # "Device.Hosts.Host." -> the "Device.Hosts.Host.{i}." def
    params: Mapping[str, ParamDef]  # by template name
    inform: tuple[str, ...]  # forced Inform parameters, concrete names
    instances: tuple[tuple[str, Mapping[str, str]], ...]  # created with every new device
    order: Mapping[str, int] = field(repr=False)  # definition order, for tree-ordered listings

    def management(self, leaf: str) -> str:
        return f"{self.root}ManagementServer.{leaf}"

    def device_info(self, leaf: str) -> str:
        return f"{self.root}DeviceInfo.{leaf}"


# --- Loading a model file ----------------------------------------------------------------

_OBJECT_KEYS: Final = frozenset({"access", "numEntriesParameter", "parameters"})
_PARAM_KEYS: Final = frozenset(
    {"type", "access", "value", "activeNotify", "hidden", "list", "enumeration", "range"}
    | {"maxLength", "maxItems"}
)
_MODEL_KEYS: Final = frozenset(
    {"name", "description", "root", "informParameters", "objects", "instances"}
)


def load_model(source: str | Path) -> ModelSchema:
    """The schema of a built-in model (`BUILTIN_MODELS`) or of a JSON model file.

    Schemas are cached by source, so every device of a fleet shares one.
    """
    return _load_cached(str(source))


@lru_cache(maxsize=32)
def _load_cached(source: str) -> ModelSchema:
    if source in BUILTIN_MODELS:
        doc = _builtin(source)
    else:
        try:
            text = Path(source).read_text("utf-8")
        except OSError as exc:
            raise ModelError(f"cannot read model file {source}: {exc.strerror}") from None
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise ModelError(f"model {source}: {exc}") from None
    try:
        schema = _build_schema(doc)
        DataModel.fresh(schema)  # proves the initial instances fit the definitions
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ModelError(f"model {source}: {exc}") from None
    except ModelFault as exc:
        raise ModelError(f"model {source}: instances: {exc.message}") from None
    return schema


def _builtin(name: str) -> dict[str, Any]:
    base, dropped = _VARIANTS.get(name, (name, ()))
    text = resources.files("knock.cpe").joinpath(f"models/{base}.json").read_text("utf-8")
    doc: dict[str, Any] = json.loads(text)
    if dropped:
        management = doc["objects"][doc["root"] + "ManagementServer."]["parameters"]
        for leaf in dropped:
            del management[leaf]
        doc["name"] = name
        doc["description"] += f" Without ManagementServer.{', '.join(dropped)}."
    return doc


def _build_schema(doc: dict[str, Any]) -> ModelSchema:
    _no_unknown_keys(doc, _MODEL_KEYS, "the model")
    root: str = doc["root"]
    raw_objects: dict[str, dict[str, Any]] = doc["objects"]
    if root not in raw_objects:
        raise ValueError(f"root object {root!r} is not defined")
    order: dict[str, int] = {}
    params: dict[str, ParamDef] = {}
    children: dict[str, list[str]] = {name: [] for name in raw_objects}
    for name, raw in raw_objects.items():
        _no_unknown_keys(raw, _OBJECT_KEYS, name)
        multi = name.endswith("." + _INSTANCE)
        if multi:
            order[name[: -len(_INSTANCE)]] = len(order)
        order[name] = len(order)
        if name != root:
            parent = _parent_template(name)
            if parent not in children:
                raise ValueError(f"{name}: parent object {parent} is not defined")
            children[parent].append(name)
        for leaf, raw_param in raw.get("parameters", {}).items():
            params[name + leaf] = _param_def(name + leaf, leaf, raw_param)
            order[name + leaf] = len(order)
    objects = {
        name: _object_def(name, raw, params, tuple(children[name]))
        for name, raw in raw_objects.items()
    }
    for obj in objects.values():
        if obj.count is not None and _parent_template(obj.name) + obj.count not in params:
            raise ValueError(f"{obj.name}: numEntriesParameter {obj.count} is not defined")
    inform = tuple(doc.get("informParameters", ()))
    for name in inform:
        if template_of(name) not in params:
            raise ValueError(f"inform parameter {name} is not defined")
    instances = tuple((path, dict(values)) for path, values in doc.get("instances", {}).items())
    return ModelSchema(
        name=doc["name"],
        root=root,
        objects=objects,
        tables={name[: -len(_INSTANCE)]: obj for name, obj in objects.items() if obj.multi},
        params=params,
        inform=inform,
        instances=instances,
        order=order,
    )


def _parent_template(name: str) -> str:
    if name.endswith("." + _INSTANCE):
        name = name[: -len(_INSTANCE)]
    return parent_of(name)


def _no_unknown_keys(raw: Mapping[str, Any], known: frozenset[str], where: str) -> None:
    unknown = set(raw) - known
    if unknown:
        raise ValueError(f"{where}: unknown keys {', '.join(sorted(unknown))}")


def _access(raw: Mapping[str, Any], where: str) -> bool:
    access: str = raw.get("access", "readOnly")
    if access not in ("readOnly", "readWrite"):
        raise ValueError(f"{where}: access must be readOnly or readWrite, not {access!r}")
    return access == "readWrite"


def _param_def(name: str, leaf: str, raw: Mapping[str, Any]) -> ParamDef:
    _no_unknown_keys(raw, _PARAM_KEYS, name)
    try:
        type_ = XsdType(canonical_type(raw.get("type", "string")))
    except ValueError:
        raise ValueError(f"{name}: unknown type {raw.get('type')!r}") from None
    minimum, maximum = raw.get("range", (None, None))
    definition = ParamDef(
        leaf=leaf,
        type=type_,
        writable=_access(raw, name),
        default=raw.get("value", _TYPE_DEFAULTS.get(type_, "")),
        active_notify=ActiveNotify(raw.get("activeNotify", "normal")),
        hidden=bool(raw.get("hidden", False)),
        is_list=bool(raw.get("list", False)),
        enumeration=frozenset(raw.get("enumeration", ())),
        minimum=minimum,
        maximum=maximum,
        max_length=raw.get("maxLength"),
        max_items=raw.get("maxItems"),
    )
    try:
        definition.check(definition.default)
    except InvalidValue as exc:
        raise ValueError(f"{name}: default value {definition.default!r}: {exc}") from None
    return definition


def _object_def(
    name: str, raw: Mapping[str, Any], params: Mapping[str, ParamDef], children: tuple[str, ...]
) -> ObjectDef:
    multi = name.endswith("." + _INSTANCE)
    count = raw.get("numEntriesParameter")
    if count is not None and not multi:
        raise ValueError(f"{name}: only a multi-instance object has a numEntriesParameter")
    return ObjectDef(
        name=name,
        multi=multi,
        writable=_access(raw, name),
        count=count,
        params=tuple(params[name + leaf] for leaf in raw.get("parameters", {})),
        children=children,
    )


# --- One device's data model -------------------------------------------------------------

Attributes = tuple[int, tuple[str, ...]]  # notification, access list


class DataModel:
    """One device's parameters and objects. Create with `fresh` or `from_json`."""

    def __init__(self, schema: ModelSchema) -> None:
        self.schema = schema
        self._values: dict[str, str] = {}
        self._objects: set[str] = set()
        self._next_instance: dict[str, int] = {}
        self._attributes: dict[str, Attributes] = {}  # only where they differ from defaults
        self._changed: dict[str, None] = {}  # notified parameters changed by the device itself
        self._tree: list[str] | None = None  # every name in tree order, rebuilt after changes

    @classmethod
    def fresh(cls, schema: ModelSchema, values: Mapping[str, str] | None = None) -> DataModel:
        """A device as it leaves the factory: the schema's instances, then *values*."""
        model = cls(schema)
        model._create(schema.root, schema.root)
        for path, instance_values in schema.instances:
            table, _, number = path[:-1].rpartition(".")
            model._instantiate(f"{table}.", int(number), instance_values)
        for name, value in (values or {}).items():
            model._check(name, value)
            model._values[name] = value
        return model

    # --- reading --------------------------------------------------------------------------

    def has(self, name: str) -> bool:
        return name in self._values or name in self._objects

    def get(self, name: str) -> str:
        """The raw value of parameter *name* (hidden ones included); KeyError if none."""
        return self._values[name]

    def definition(self, name: str) -> ParamDef:
        return self.schema.params[template_of(name)]

    def notification(self, name: str) -> int:
        definition = self.definition(name)
        if definition.active_notify is ActiveNotify.FORCE_ENABLED:
            return 2
        return self._attributes.get(name, (definition.default_notification, ()))[0]

    def device_id(self) -> DeviceIdStruct:
        info = self.schema.device_info
        return DeviceIdStruct(
            manufacturer=self._values.get(info("Manufacturer"), ""),
            oui=self._values.get(info("ManufacturerOUI"), ""),
            product_class=self._values.get(info("ProductClass"), ""),
            serial_number=self._values.get(info("SerialNumber"), ""),
        )

    def inform_parameters(self) -> list[ParameterValueStruct]:
        """The forced Inform parameters, then the notified ones that changed."""
        names = [name for name in self.schema.inform if name in self._values]
        names += [name for name in self._changed if name not in names]
        return [self._value_struct(name) for name in names]

    def changes(self) -> dict[str, str]:
        """Notified parameters changed by the device, with their current values."""
        return {name: self._values[name] for name in self._changed}

    def clear_changes(self, delivered: Mapping[str, str]) -> None:
        """Forget changes an accepted Inform reported, unless the value moved on since."""
        for name, value in delivered.items():
            if self._values.get(name) == value:
                self._changed.pop(name, None)

    # --- the parameter RPCs ---------------------------------------------------------------

    def get_parameter_names(self, path: str, next_level: bool) -> list[ParameterInfoStruct]:
        if path == "" and next_level:
            return [self._info(self.schema.root)]
        if path and not path.endswith("."):
            if path not in self._values:
                raise _invalid_name(path)
            if next_level:
                raise ModelFault(
                    CpeFault.INVALID_ARGUMENTS,
                    f"{path} is a parameter: NextLevel true needs an object path",
                )
            return [self._info(path)]
        if path and path not in self._objects:
            raise _invalid_name(path)
        names = (name for name in self._sorted() if name.startswith(path))
        if next_level:
            names = (name for name in names if parent_of(name) == path and name != path)
        return [self._info(name) for name in names]

    def get_parameter_values(self, names: Iterable[str]) -> list[ParameterValueStruct]:
        return [self._value_struct(name) for path in names for name in self._parameters(path)]

    def get_parameter_attributes(self, names: Iterable[str]) -> list[ParameterAttributeStruct]:
        return [
            ParameterAttributeStruct(
                name, self.notification(name), list(self._attributes.get(name, (0, ()))[1])
            )
            for path in names
            for name in self._parameters(path)
        ]

    def set_parameter_values(
        self, parameters: Sequence[ParameterValueStruct], parameter_key: str
    ) -> None:
        """Apply all of *parameters* or, with a fault naming each bad one, none of them."""
        faults: list[SetParameterValuesFault] = []
        seen: set[str] = set()
        for struct in parameters:
            code, reason = self._spv_problem(struct, seen)
            seen.add(struct.name)
            if code is not None:
                faults.append(
                    SetParameterValuesFault(struct.name, code, f"{fault_string(code)}: {reason}")
                )
        if faults:
            names = ", ".join(fault.parameter_name for fault in faults)
            raise ModelFault(CpeFault.INVALID_ARGUMENTS, f"rejected: {names}", faults)
        self._check_parameter_key(parameter_key)
        for struct in parameters:
            self._values[struct.name] = struct.value
            # The ACS knows what it set: a pending notification of the old value is moot.
            self._changed.pop(struct.name, None)
        self._set_parameter_key(parameter_key)

    def set_parameter_attributes(
        self, structs: Sequence[SetParameterAttributesStruct], *, deny_active: bool = False
    ) -> None:
        """Apply every attribute change or, on the first invalid one, none. *deny_active*:
        refuse active notification where the data model lets the CPE deny it (canDeny)."""
        plan = [(struct, self._parameters(struct.name)) for struct in structs]
        for struct, names in plan:
            if struct.notification_change:
                if struct.notification not in (0, 1, 2):
                    raise ModelFault(
                        CpeFault.INVALID_ARGUMENTS,
                        f"{struct.name}: notification {struct.notification} is not 0, 1 or 2",
                    )
                denied = [
                    name
                    for name in names
                    if deny_active
                    and struct.notification == 2
                    and self.definition(name).active_notify is ActiveNotify.CAN_DENY
                ]
                if denied:
                    raise ModelFault(
                        CpeFault.NOTIFICATION_REQUEST_REJECTED,
                        f"active notification refused for {', '.join(denied)}",
                    )
            if struct.access_list_change and set(struct.access_list) - {_SUBSCRIBER}:
                raise ModelFault(
                    CpeFault.INVALID_ARGUMENTS,
                    f"{struct.name}: the only access list entry is {_SUBSCRIBER!r}",
                )
        for struct, names in plan:
            for name in names:
                self._set_attributes(name, struct)

    def add_object(self, path: str, parameter_key: str) -> int:
        definition = self._table(path)
        if not definition.writable:
            raise ModelFault(definition.refusal, f"{path} does not accept AddObject")
        self._check_parameter_key(parameter_key)
        number = self._instantiate(path, self._next_instance.get(path, 1), {})
        for table in definition.rows_with:
            self._instantiate(f"{path}{number}.{table}", 1, {})
        self._set_parameter_key(parameter_key)
        return number

    def delete_object(self, path: str, parameter_key: str) -> None:
        table = parent_of(path)
        definition = self.schema.tables.get(template_of(table))
        if path not in self._objects or definition is None:
            raise _invalid_name(path, "is not an object instance")
        if not definition.writable:
            raise ModelFault(CpeFault.REQUEST_DENIED, f"{path} does not accept DeleteObject")
        self._check_parameter_key(parameter_key)
        _drop_prefix(self._values, path)
        _drop_prefix(self._attributes, path)
        _drop_prefix(self._changed, path)
        _drop_prefix(self._next_instance, path)
        self._objects = {name for name in self._objects if not name.startswith(path)}
        self._count(table)
        self._set_parameter_key(parameter_key)

    # --- changes made by the device itself ------------------------------------------------

    def set_value(self, name: str, value: str) -> int:
        """Change *name* as the device itself would (read-only parameters too).

        Returns the parameter's notification (0 off, 1 passive, 2 active) when the value
        changed and a notification is now pending, else 0. Raises `ModelFault` 9005 for an
        unknown parameter and `InvalidValue` for a value that does not fit it.
        """
        self._check(name, value)
        if self._values[name] == value:
            return 0
        self._values[name] = value
        level = self.notification(name)
        if level:
            self._changed[name] = None
        return level

    # --- persistence ----------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "values": dict(self._values),
            "objects": sorted(self._objects),
            "next_instance": dict(self._next_instance),
            "attributes": {name: [n, list(acl)] for name, (n, acl) in self._attributes.items()},
            "changed": list(self._changed),
        }

    @classmethod
    def from_json(cls, schema: ModelSchema, data: Mapping[str, Any]) -> DataModel:
        """Rebuild a model saved by `to_json`; ValueError names what does not fit *schema*."""
        model = cls(schema)
        model._values = {sys.intern(str(k)): _text(v, k) for k, v in dict(data["values"]).items()}
        model._objects = {sys.intern(str(name)) for name in data["objects"]}
        model._next_instance = {str(k): int(v) for k, v in dict(data["next_instance"]).items()}
        model._attributes = {
            str(name): (int(n), tuple(str(entry) for entry in acl))
            for name, (n, acl) in dict(data["attributes"]).items()
        }
        model._changed = dict.fromkeys(str(name) for name in data["changed"])
        for name in [*model._values, *model._attributes, *model._changed]:
            if template_of(name) not in schema.params or name not in model._values:
                raise ValueError(f"parameter {name} is not in model {schema.name}")
        for name in model._objects:
            if template_of(name) not in schema.objects and template_of(name) not in schema.tables:
                raise ValueError(f"object {name} is not in model {schema.name}")
        return model

    # --- internals ------------------------------------------------------------------------

    def _check(self, name: str, value: str) -> None:
        if name not in self._values:
            raise _invalid_name(name)
        try:
            self.definition(name).check(value)
        except InvalidValue as exc:
            raise InvalidValue(f"{name}: {exc}") from None

    def _sorted(self) -> list[str]:
        if self._tree is None:
            self._tree = sorted([*self._objects, *self._values], key=self._tree_key)
        return self._tree

    def _tree_key(self, name: str) -> tuple[int, ...]:
        # Siblings sort by definition order, instances by number: the order of a real CPE.
        key: list[int] = []
        template = ""
        for part in name.rstrip(".").split("."):
            if part.isdigit():
                template += _INSTANCE
                key.append(int(part))
                continue
            template += part
            is_param = template in self.schema.params
            key.append(self.schema.order[template if is_param else template + "."])
            template += "."
        return tuple(key)

    def _info(self, name: str) -> ParameterInfoStruct:
        if not name.endswith("."):
            return ParameterInfoStruct(name, self.definition(name).writable)
        table = self.schema.tables.get(template_of(name)) or self.schema.tables.get(
            template_of(parent_of(name))
        )
        # A table is writable when AddObject works on it, an instance when DeleteObject does.
        return ParameterInfoStruct(name, table is not None and table.writable)

    def _value_struct(self, name: str) -> ParameterValueStruct:
        definition = self.definition(name)
        value = "" if definition.hidden else self._values[name]
        return ParameterValueStruct(name, value, definition.type)

    def _parameters(self, path: str) -> list[str]:
        """The parameters *path* names: itself, or all below a partial path ("" for all)."""
        if path == "" or path.endswith("."):
            if path and path not in self._objects:
                raise _invalid_name(path)
            return [n for n in self._sorted() if n.startswith(path) and not n.endswith(".")]
        if path not in self._values:
            raise _invalid_name(path)
        return [path]

    def _spv_problem(
        self, struct: ParameterValueStruct, seen: set[str]
    ) -> tuple[CpeFault | None, str]:
        name = struct.name
        if name not in self._values:
            return CpeFault.INVALID_PARAMETER_NAME, "no such parameter"
        if name in seen:
            return CpeFault.INVALID_ARGUMENTS, "named more than once"
        definition = self.definition(name)
        if not definition.writable:
            return CpeFault.NON_WRITABLE_PARAMETER, "read-only"
        try:
            definition.check(struct.value)
        except InvalidValue as exc:
            # A value that fits the parameter is accepted whatever type the ACS labelled it
            # with (many ACSes send everything as xsd:string); a misfit labelled with another
            # type is a type error, one labelled with the right type a value error.
            if canonical_type(struct.type) != definition.type:
                return CpeFault.INVALID_PARAMETER_TYPE, f"{definition.type} expected: {exc}"
            return CpeFault.INVALID_PARAMETER_VALUE, str(exc)
        return None, ""

    def _check_parameter_key(self, key: str) -> None:
        name = self.schema.management("ParameterKey")
        if name in self._values:
            try:
                self.definition(name).check(key)
            except InvalidValue as exc:
                raise ModelFault(CpeFault.INVALID_ARGUMENTS, f"ParameterKey: {exc}") from None

    def _set_parameter_key(self, key: str) -> None:
        name = self.schema.management("ParameterKey")
        if name in self._values:
            self._values[name] = key

    def _set_attributes(self, name: str, struct: SetParameterAttributesStruct) -> None:
        default = (self.definition(name).default_notification, ())
        notification, access_list = self._attributes.get(name, default)
        if struct.notification_change:
            notification = struct.notification
        if struct.access_list_change:
            access_list = tuple(struct.access_list)
        if (notification, access_list) == default:
            self._attributes.pop(name, None)
        else:
            self._attributes[name] = (notification, access_list)

    def _table(self, path: str) -> ObjectDef:
        definition = self.schema.tables.get(template_of(path))
        if definition is None or path not in self._objects:
            raise _invalid_name(path, "is not a multi-instance object")
        return definition

    def _create(self, path: str, template: str) -> None:
        self._objects.add(sys.intern(path))
        definition = self.schema.objects[template]
        for param in definition.params:
            # Interned: every device of a fleet has the same names, stored once, not per device
            # (about half of a device's memory otherwise).
            self._values[sys.intern(path + param.leaf)] = param.default
        for child in definition.children:
            leaf = child[len(template) :]
            if self.schema.objects[child].multi:
                self._objects.add(path + leaf[: -len(_INSTANCE)])
            else:
                self._create(path + leaf, child)
        self._tree = None

    def _instantiate(self, table: str, number: int, values: Mapping[str, str]) -> int:
        definition = self._table(table)
        path = f"{table}{number}."
        self._create(path, definition.name)
        for leaf, value in values.items():
            self._check(path + leaf, value)
            self._values[path + leaf] = value
        # Numbers are never reused, even after DeleteObject: ACSes key on them.
        self._next_instance[table] = max(self._next_instance.get(table, 1), number + 1)
        self._count(table)
        return number

    def _count(self, table: str) -> None:
        definition = self.schema.tables[template_of(table)]
        if definition.count is not None:
            instances = sum(1 for name in self._objects if parent_of(name) == table)
            self._values[parent_of(table) + definition.count] = str(instances)
        self._tree = None


def _invalid_name(path: str, reason: str = "does not exist") -> ModelFault:
    return ModelFault(CpeFault.INVALID_PARAMETER_NAME, f"{path or '(empty)'} {reason}")


def _drop_prefix(names: dict[str, Any], prefix: str) -> None:
    for name in [name for name in names if name.startswith(prefix)]:
        del names[name]


def _text(value: object, name: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"value of {name} is not a string")
    return value
