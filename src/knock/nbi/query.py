"""GenieACS (MongoDB-style) queries, sorts and projections, translated to SQL over the store.

GenieACS keeps parameter values typed in MongoDB, where a number never equals a string. The store
keeps every value as text with its xsd type beside it, so the type decides how a value compares:
parameters of an integer type compare numerically (with a number, or a string that reads as one),
every other parameter compares as text (with a string), booleans match true/false. This is the
result GenieACS gives for the same query.
"""

from __future__ import annotations

import json
import math
import operator
import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Column,
    Float,
    and_,
    case,
    cast,
    exists,
    false,
    func,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.sql.expression import ColumnElement

from knock.store import regex
from knock.store.object_ids import EXAMPLE as _EXAMPLE_ID
from knock.store.object_ids import OBJECT_ID
from knock.store.schema import device_tags, devices, files, parameters, presets, tasks
from knock.vocab import TaskStatus

Scalar = bool | int | float | str
Compare = Callable[[Any, Any], ColumnElement[bool]]

INTEGER_TYPES = ("xsd:int", "xsd:unsignedInt", "xsd:long", "xsd:unsignedLong")
_NOT_STRING_TYPES = (*INTEGER_TYPES, "xsd:boolean", "xsd:dateTime")
# Guards the cast: PostgreSQL fails the whole query on one malformed value a CPE reported, and
# 20 digits hold every unsignedLong while staying inside a double's range.
_INTEGER_TEXT = r"^-?[0-9]{1,20}$"
_NUMBER_TEXT = re.compile(r"-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?")
_TRUE_TEXT = ("true", "1")
_FALSE_TEXT = ("false", "0")
_ORDERING: dict[str, Compare] = {
    "$gt": operator.gt,
    "$gte": operator.ge,
    "$lt": operator.lt,
    "$lte": operator.le,
}
# Bounds on what one request may ask of the database (docs/security.md). Past them a query is no
# real one: deeper nesting would exhaust the stack translating or compiling it, and each condition
# or value adds work for every device the database scans.
MAX_DEPTH = 20
MAX_CONDITIONS = 100  # fields compared and operators applied, over the whole query
MAX_VALUES = 1000  # values in the $in and $nin lists of one query, together
MAX_TEXT = 1024  # characters in one key or string (the longest parameter path the store keeps)
MAX_SORT_KEYS = 5
MAX_PROJECTION_PATHS = 100
# No stored text holds these: PostgreSQL refuses NUL in text, and a lone surrogate is no character.
_NOT_TEXT = re.compile("[\x00\ud800-\udfff]")
_FIELD_OPERATORS = (
    *("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists"),
    *("$regex", "$options"),
)


class QueryError(ValueError):
    """A query, sort or projection the NBI cannot translate; the message says what to change."""


def check_text(text: str, what: str) -> str:
    """`text` if it is no longer than MAX_TEXT and is text a database can hold."""
    if len(text) > MAX_TEXT:
        raise QueryError(f"{what} is {len(text)} characters long; the limit is {MAX_TEXT}")
    bad = _NOT_TEXT.search(text)
    if bad is not None:
        kind = "a NUL character" if bad.group() == "\x00" else "a lone surrogate"
        raise QueryError(
            f"{what} holds {kind} ({json.dumps(bad.group())}), which no stored text contains; "
            "send whole UTF-8 characters"
        )
    return text


def _shown(key: str) -> str:
    """A key as an error message names it: long keys cut short."""
    return key if len(key) <= 60 else key[:60] + "..."


# --- fields ---------------------------------------------------------------------------------


class _Field(ABC):
    def __init__(self, name: str) -> None:
        self.name = name

    @abstractmethod
    def compare(self, op: Compare, operand: Scalar) -> ColumnElement[bool]:
        """The field ordered against a non-null operand ($gt, $gte, $lt, $lte)."""

    @abstractmethod
    def any_of(self, operands: list[Scalar]) -> ColumnElement[bool]:
        """The field equals one of the non-null operands: one IN list, however many there are."""

    @abstractmethod
    def present(self) -> ColumnElement[bool]:
        """The field exists with a non-null value."""

    def matches(self, pattern: str) -> ColumnElement[bool]:
        """The field is text that matches `pattern` (checked by knock.store.regex)."""
        raise QueryError(f"{self.name} is not text: $regex does not apply to it")


class _ColumnField(_Field):
    def __init__(self, name: str, column: Column[Any], coerce: Callable[[str, Scalar], Any]):
        super().__init__(name)
        self.column = column
        self.coerce = coerce

    def compare(self, op: Compare, operand: Scalar) -> ColumnElement[bool]:
        # Explicit on NULL so that negating the comparison ($ne, $nin) matches missing values
        # as MongoDB does, instead of SQL's unknown.
        return and_(self.column.is_not(None), op(self.column, self.coerce(self.name, operand)))

    def any_of(self, operands: list[Scalar]) -> ColumnElement[bool]:
        values = [self.coerce(self.name, operand) for operand in operands]
        return and_(self.column.is_not(None), self.column.in_(values))

    def present(self) -> ColumnElement[bool]:
        return self.column.is_not(None)

    def matches(self, pattern: str) -> ColumnElement[bool]:
        if self.coerce is not _text:
            return super().matches(pattern)
        return and_(self.column.is_not(None), regex.regex_match(self.column, pattern))


def _numeric_value() -> ColumnElement[Any]:
    """The parameter row's value as a number, NULL unless its type is an integer type."""
    value, type_ = parameters.c.value, parameters.c.type
    is_number = and_(type_.in_(INTEGER_TYPES), value.regexp_match(_INTEGER_TEXT))
    return case((is_number, cast(value, Float)), else_=None)


class _ParameterField(_Field):
    def __init__(self, name: str, path: str) -> None:
        super().__init__(name)
        self.path = path

    def _row(self, condition: ColumnElement[bool]) -> ColumnElement[bool]:
        return exists().where(
            parameters.c.device_id == devices.c.id,
            parameters.c.path == self.path,
            condition,
        )

    def compare(self, op: Compare, operand: Scalar) -> ColumnElement[bool]:
        if isinstance(operand, bool):
            raise QueryError(f"{self.name}: booleans only compare for equality")
        if isinstance(operand, int | float):
            return self._row(op(_numeric_value(), float(operand)))
        matches = [and_(_text_type(), op(parameters.c.value, operand))]
        number = _as_number(operand)
        if number is not None:
            matches.append(op(_numeric_value(), number))
        return self._row(or_(*matches))

    def any_of(self, operands: list[Scalar]) -> ColumnElement[bool]:
        # Each kind of operand matches its own kind of parameter, as `compare` has it; numbers
        # and strings that read as numbers meet integer parameters in one list.
        texts = [o for o in operands if isinstance(o, str)]
        numbers = {
            float(o) for o in operands if isinstance(o, int | float) and not isinstance(o, bool)
        }
        numbers |= {n for n in map(_as_number, texts) if n is not None}
        booleans = [t for o in operands if isinstance(o, bool) for t in _boolean_texts(o)]
        matches = []
        if texts:
            matches.append(and_(_text_type(), parameters.c.value.in_(texts)))
        if numbers:
            matches.append(_numeric_value().in_(sorted(numbers)))
        if booleans:
            matches.append(
                and_(
                    parameters.c.type == "xsd:boolean",
                    func.lower(parameters.c.value).in_(booleans),
                )
            )
        return self._row(or_(false(), *matches))

    def present(self) -> ColumnElement[bool]:
        if self.path.endswith("."):
            return self._row(true())  # object nodes have no value
        return self._row(parameters.c.value.is_not(None))

    def matches(self, pattern: str) -> ColumnElement[bool]:
        # MongoDB matches a pattern against strings only; GenieACS keeps numbers, booleans and
        # dates typed, so parameters of those types never match.
        string = or_(parameters.c.type.is_(None), parameters.c.type.not_in(_NOT_STRING_TYPES))
        return self._row(and_(string, regex.regex_match(parameters.c.value, pattern)))


def _text_type() -> ColumnElement[bool]:
    """The parameter row compares as text: its type is not an integer type."""
    return or_(parameters.c.type.is_(None), parameters.c.type.not_in(INTEGER_TYPES))


def _boolean_texts(operand: bool) -> tuple[str, ...]:
    return _TRUE_TEXT if operand else _FALSE_TEXT


class _TagsField(_Field):
    """GenieACS's `_tags`, an array: {"_tags": "x"} matches a device that has the tag x."""

    def _tagged(self, condition: ColumnElement[bool]) -> ColumnElement[bool]:
        return exists().where(device_tags.c.device_id == devices.c.id, condition)

    def compare(self, op: Compare, operand: Scalar) -> ColumnElement[bool]:
        raise QueryError(
            '_tags matches a tag by name: {"_tags": "x"}, $ne, $in, $nin or $exists, '
            f"not an ordering of {json.dumps(operand)}"
        )

    def any_of(self, operands: list[Scalar]) -> ColumnElement[bool]:
        if not all(isinstance(operand, str) for operand in operands):
            raise QueryError('_tags matches a tag by name, a string: {"_tags": "x"}')
        return self._tagged(device_tags.c.tag.in_(operands))

    def present(self) -> ColumnElement[bool]:
        return self._tagged(true())

    def matches(self, pattern: str) -> ColumnElement[bool]:
        return self._tagged(regex.regex_match(device_tags.c.tag, pattern))


def _as_number(text: str) -> float | None:
    if not _NUMBER_TEXT.fullmatch(text.strip()):
        return None
    number = float(text)
    return number if math.isfinite(number) else None


# --- operand coercion for columns -----------------------------------------------------------


def _text(name: str, operand: Scalar) -> str:
    if not isinstance(operand, str):
        raise QueryError(f"{name} compares with a string, not {json.dumps(operand)}")
    return operand


def _date(name: str, operand: Scalar) -> datetime:
    """ISO 8601 text or epoch milliseconds, as GenieACS scripts send dates."""
    try:
        if isinstance(operand, bool):
            raise ValueError("a boolean is not a date")
        if isinstance(operand, int | float):
            return datetime.fromtimestamp(operand / 1000, UTC)
        parsed = datetime.fromisoformat(operand)
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise QueryError(
            f"{name} compares with a date: ISO 8601 text such as "
            f'"2024-05-01T12:00:00Z" or epoch milliseconds, not {json.dumps(operand)} ({exc})'
        ) from exc


def parse_task_id(value: Any) -> str | None:
    """A task id as the NBI shows it, an ObjectId's 24 hex digits; None if it cannot be one."""
    if not isinstance(value, str) or not OBJECT_ID.fullmatch(value.lower()):
        return None
    return value.lower()


def _task_id(name: str, operand: Scalar) -> str:
    task_id = parse_task_id(operand)
    if task_id is None:
        raise QueryError(
            f'{name} is a task id, 24 hex digits such as "{_EXAMPLE_ID}", not {json.dumps(operand)}'
        )
    return task_id


def _status(name: str, operand: Scalar) -> str:
    statuses = [s.value for s in TaskStatus]
    if operand not in statuses:
        raise QueryError(f"{name} is one of {', '.join(statuses)}, not {json.dumps(operand)}")
    return str(operand)


_DEVICE_COLUMNS: dict[str, tuple[Column[Any], Callable[[str, Scalar], Any]]] = {
    "_id": (devices.c.id, _text),
    "_lastInform": (devices.c.last_inform, _date),
    "_registered": (devices.c.registered, _date),
    "_lastBoot": (devices.c.last_boot, _date),
    "_lastBootstrap": (devices.c.last_bootstrap, _date),
    "_deviceId._Manufacturer": (devices.c.manufacturer, _text),
    "_deviceId._OUI": (devices.c.oui, _text),
    "_deviceId._ProductClass": (devices.c.product_class, _text),
    "_deviceId._SerialNumber": (devices.c.serial_number, _text),
    "_stun.outcome": (devices.c.stun_outcome, _text),
    "_xmppSetup.outcome": (devices.c.xmpp_setup, _text),
    "_xmppLogin.outcome": (devices.c.xmpp_login_outcome, _text),
}

_TASK_COLUMNS: dict[str, tuple[Column[Any], Callable[[str, Scalar], Any]]] = {
    "_id": (tasks.c.public_id, _task_id),
    "device": (tasks.c.device_id, _text),
    "name": (tasks.c.name, _text),
    "status": (tasks.c.status, _status),
    "timestamp": (tasks.c.created, _date),
}


def _whole(name: str, operand: Scalar) -> int:
    if not isinstance(operand, int) or isinstance(operand, bool):
        raise QueryError(f"{name} compares with a whole number, not {json.dumps(operand)}")
    return operand


_FILE_COLUMNS: dict[str, tuple[Column[Any], Callable[[str, Scalar], Any]]] = {
    "_id": (files.c.name, _text),
    "filename": (files.c.name, _text),
    "length": (files.c.length, _whole),
    "md5": (files.c.md5, _text),
    "uploadDate": (files.c.uploaded, _date),
    "metadata.fileType": (files.c.file_type, _text),
    "metadata.oui": (files.c.oui, _text),
    "metadata.productClass": (files.c.product_class, _text),
    "metadata.version": (files.c.version, _text),
}


def parse_fault_id(value: Any) -> str | None:
    """The task a fault id names: "<device>:task_<id>" as GenieACS writes it, or the bare
    "task_<id>" channel; None if it names none."""
    if not isinstance(value, str):
        return None
    _, _, channel = value.rpartition(":")
    if not channel.startswith("task_"):
        return None
    return parse_task_id(channel.removeprefix("task_"))


def _fault_task_id(name: str, operand: Scalar) -> str:
    task_id = parse_fault_id(operand)
    if task_id is None:
        raise QueryError(
            f'{name} is a fault id such as "<device>:task_{_EXAMPLE_ID}" or channel '
            f'"task_{_EXAMPLE_ID}", not {json.dumps(operand)}'
        )
    return task_id


def _fault_code(name: str, operand: Scalar) -> str:
    """GenieACS names a device's CWMP fault "cwmp.9005"; the store keeps "9005"."""
    return _text(name, operand).removeprefix("cwmp.")


_FAULT_COLUMNS: dict[str, tuple[Column[Any], Callable[[str, Scalar], Any]]] = {
    "_id": (tasks.c.public_id, _fault_task_id),
    "channel": (tasks.c.public_id, _fault_task_id),
    "device": (tasks.c.device_id, _text),
    "code": (tasks.c.fault_code, _fault_code),
    "timestamp": (tasks.c.finished, _date),
}

_PRESET_COLUMNS: dict[str, tuple[Column[Any], Callable[[str, Scalar], Any]]] = {
    "_id": (presets.c.name, _text),
    "weight": (presets.c.weight, _whole),
}

# A TR-069 parameter path; a trailing "." names an object.
PATH = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?")


def parameter_path(key: str) -> str:
    """The parameter path a query or sort key names: GenieACS allows a `._value` suffix."""
    path = key.removesuffix("._value")
    if not PATH.fullmatch(path) or any(part.startswith("_") for part in path.split(".")):
        raise QueryError(
            f"{key!r} is neither a parameter path (such as "
            f'"InternetGatewayDevice.DeviceInfo.SoftwareVersion", optionally ending in "._value") '
            f"nor one of the fields {', '.join(_DEVICE_COLUMNS)}"
        )
    return path


def _device_field(key: str) -> _Field:
    if key == "_tags":
        return _TagsField(key)
    if key in _DEVICE_COLUMNS:
        return _ColumnField(key, *_DEVICE_COLUMNS[key])
    return _ParameterField(key, parameter_path(key))


def _fields_of(
    what: str, columns: dict[str, tuple[Column[Any], Callable[[str, Scalar], Any]]]
) -> Callable[[str], _Field]:
    """The fields of a collection that has only columns (tasks, faults, files)."""

    def field_for(key: str) -> _Field:
        if key not in columns:
            raise QueryError(f"{what} are queried by {', '.join(columns)}, not {key!r}")
        return _ColumnField(key, *columns[key])

    return field_for


_task_field = _fields_of("tasks", _TASK_COLUMNS)
_fault_field = _fields_of("faults", _FAULT_COLUMNS)
_file_field = _fields_of("files", _FILE_COLUMNS)
_preset_field = _fields_of("presets", _PRESET_COLUMNS)


# --- translation ----------------------------------------------------------------------------


def device_filter(query: Any) -> ColumnElement[bool] | None:
    """A GenieACS device query as a WHERE clause over `schema.devices`; None matches all."""
    return None if query is None else _Translation(_device_field).query(query, 0)


# GenieACS's tasks collection holds a task until it has run; a faulted one stays with its fault.
# Knock keeps finished tasks as the device's history, listed only when asked (`history`).
_LISTED_STATUSES = (TaskStatus.QUEUED, TaskStatus.RUNNING, TaskStatus.FAULTED, TaskStatus.UNKNOWN)


def task_filter(query: Any, *, history: bool = False) -> ColumnElement[bool] | None:
    """A GenieACS task query (over _id, device, name, status, timestamp) over `schema.tasks`:
    the tasks GenieACS would still hold (pending or faulted), or with `history` every task the
    store keeps, done ones too."""
    where = None if query is None else _Translation(_task_field).query(query, 0)
    if history:
        return where
    listed = tasks.c.status.in_(_LISTED_STATUSES)
    return listed if where is None else and_(listed, where)


def fault_filter(query: Any) -> ColumnElement[bool]:
    """A GenieACS fault query (over _id, channel, device, code, timestamp): faulted tasks."""
    faulted = tasks.c.status == TaskStatus.FAULTED
    return faulted if query is None else and_(faulted, _Translation(_fault_field).query(query, 0))


def file_filter(query: Any) -> ColumnElement[bool] | None:
    """A GenieACS file query (over _id, filename, length, md5, uploadDate, metadata.*) over
    `schema.files`."""
    return None if query is None else _Translation(_file_field).query(query, 0)


def preset_filter(query: Any) -> ColumnElement[bool] | None:
    """A GenieACS preset query (over _id and weight) over `schema.presets`."""
    return None if query is None else _Translation(_preset_field).query(query, 0)


class _Translation:
    """One query's translation, counting what it asks of the database against the bounds."""

    def __init__(self, field_for: Callable[[str], _Field]) -> None:
        self.field_for = field_for
        self.conditions = 0
        self.values = 0

    def query(self, query: Any, depth: int) -> ColumnElement[bool]:
        if depth > MAX_DEPTH:
            raise QueryError(f"$and and $or nest at most {MAX_DEPTH} levels deep")
        if not isinstance(query, dict):
            raise QueryError(
                'a query is a JSON object such as {"_id": "..."} or {"$or": [{...}, {...}]}, '
                f"not {json.dumps(query)}"
            )
        parts = []
        for key, value in query.items():
            check_text(key, f"the query key {_shown(key)!r}")
            if key in ("$and", "$or"):
                if not isinstance(value, list) or not value:
                    raise QueryError(f"{key} takes a non-empty list of queries")
                subqueries = [self.query(sub, depth + 1) for sub in value]
                parts.append(and_(*subqueries) if key == "$and" else or_(*subqueries))
            elif key.startswith("$"):
                raise QueryError(f"{key} is not supported at the top of a query; use $and or $or")
            else:
                parts.append(self.condition(self.field_for(key), value))
        return and_(true(), *parts)

    def condition(self, field: _Field, value: Any) -> ColumnElement[bool]:
        if isinstance(value, dict) and value and all(k.startswith("$") for k in value):
            operators = dict(value)
            options = operators.pop("$options", None)
            if options is not None and "$regex" not in operators:
                raise QueryError(f"{field.name}: $options goes with $regex")
            return and_(
                true(),
                *(
                    self.regex(field, arg, options)
                    if op == "$regex"
                    else self.operator(field, op, arg)
                    for op, arg in operators.items()
                ),
            )
        return self.any_of(field, [value])

    def regex(self, field: _Field, pattern: Any, options: Any) -> ColumnElement[bool]:
        self.counted()
        if not isinstance(pattern, str) or not isinstance(options, str | None):
            raise QueryError(
                f'{field.name}: $regex takes a pattern as a string, e.g. {{"$regex": "^ABC"}}, '
                'and $options "i" or nothing'
            )
        check_text(pattern, f"the $regex of {field.name}")
        try:
            checked = regex.with_options(regex.check_pattern(pattern), options or "")
        except regex.PatternError as exc:
            raise QueryError(f"{field.name}: $regex {_shown(pattern)!r} {exc}") from None
        return field.matches(checked)

    def counted(self) -> None:
        self.conditions += 1
        if self.conditions > MAX_CONDITIONS:
            raise QueryError(
                f"the query applies more than {MAX_CONDITIONS} conditions (fields and operators "
                "together); split it into several queries"
            )

    def operator(self, field: _Field, op: str, arg: Any) -> ColumnElement[bool]:
        if op == "$eq":
            return self.any_of(field, [arg])
        if op == "$ne":
            return not_(self.any_of(field, [arg]))
        if op in _ORDERING:
            self.counted()
            if arg is None:
                raise QueryError(f"{field.name}: {op} needs a value, not null")
            return field.compare(_ORDERING[op], _scalar(field, arg))
        if op in ("$in", "$nin"):
            if not isinstance(arg, list):
                raise QueryError(f"{field.name}: {op} takes a list of values")
            self.values += len(arg)
            if self.values > MAX_VALUES:
                raise QueryError(
                    f"the query lists more than {MAX_VALUES} values in $in and $nin together; "
                    "split it into several queries"
                )
            any_of = self.any_of(field, arg)
            return any_of if op == "$in" else not_(any_of)
        if op == "$exists":
            self.counted()
            if not isinstance(arg, bool):
                raise QueryError(f"{field.name}: $exists takes true or false")
            return field.present() if arg else not_(field.present())
        raise QueryError(
            f"{field.name}: unsupported operator {_shown(op)}; use {', '.join(_FIELD_OPERATORS)}"
        )

    def any_of(self, field: _Field, items: list[Any]) -> ColumnElement[bool]:
        """The field equals one of `items`; a null among them matches a missing field."""
        self.counted()
        operands = [_scalar(field, item) for item in items if item is not None]
        parts = [field.any_of(operands)] if operands else []
        if len(operands) < len(items):
            parts.append(not_(field.present()))
        return or_(false(), *parts)


def _scalar(field: _Field, operand: Any) -> Scalar:
    if not isinstance(operand, bool | int | float | str):
        raise QueryError(
            f"{field.name}: compare with a string, number or boolean, or use an operator "
            f"({', '.join(_FIELD_OPERATORS)}), not {json.dumps(operand)}"
        )
    if isinstance(operand, int | float) and not abs(operand) < 2**64:
        raise QueryError(f"{field.name}: {operand} is out of range")
    if isinstance(operand, str):
        check_text(operand, f"a value compared with {field.name}")
    return operand


# --- sort and projection --------------------------------------------------------------------


def device_order(sort: Any) -> list[ColumnElement[Any]]:
    """A GenieACS sort such as {"_lastInform": -1} as ORDER BY terms (the store breaks ties)."""
    if sort is None:
        return []
    if not isinstance(sort, dict):
        raise QueryError('sort is a JSON object such as {"_lastInform": -1}')
    if len(sort) > MAX_SORT_KEYS:
        raise QueryError(f"sort takes at most {MAX_SORT_KEYS} keys, not {len(sort)}")
    order: list[ColumnElement[Any]] = []
    for key, direction in sort.items():
        check_text(key, f"the sort key {_shown(key)!r}")
        if direction not in (1, -1) or isinstance(direction, bool):
            raise QueryError(f"sort direction of {key!r} is 1 (ascending) or -1 (descending)")
        for term in _sort_terms(key):
            # MongoDB puts missing values first when ascending; the databases disagree.
            order.append(term.asc().nulls_first() if direction == 1 else term.desc().nulls_last())
    return order


def _sort_terms(key: str) -> list[ColumnElement[Any]]:
    if key in _DEVICE_COLUMNS:
        return [_DEVICE_COLUMNS[key][0]]
    path = parameter_path(key)
    # Integer parameters sort by number (uptime 9 before 10), everything else by text.
    of_device = (parameters.c.device_id == devices.c.id) & (parameters.c.path == path)
    return [
        select(_numeric_value()).where(of_device).scalar_subquery(),
        select(parameters.c.value).where(of_device).scalar_subquery(),
    ]


def parse_projection(text: str | None) -> list[str] | None:
    """A GenieACS projection "a,b.c" as the list of paths it keeps; None keeps everything.

    An attribute suffix such as "._value" keeps the whole parameter, a trailing "." is dropped.
    """
    if not text:
        return None
    items = text.split(",")
    if len(items) > MAX_PROJECTION_PATHS:
        raise QueryError(f"projection names at most {MAX_PROJECTION_PATHS} paths, not {len(items)}")
    paths = []
    for item in items:
        check_text(item, f"the projection path {_shown(item.strip())!r}")
        path = item.strip()
        if not path.startswith("_"):
            path = re.sub(r"(\._[A-Za-z]+)+$", "", path).rstrip(".")
        if path:
            paths.append(path)
    return paths or None
