"""Statements of `statements.py` compiled once for one dialect, to run on its driver directly.

The per-session transactions (`pg_hot`, `sqlite_hot`) skip SQLAlchemy's execution layer, which
costs more CPU than the driver for these small statements; this is what they keep of SQLAlchemy:
the SQL text, the order of its parameters, and the column types' conversions of values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Select
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import UpdateBase

from knock.store import statements


@dataclass(frozen=True, slots=True)
class CompiledStatement:
    text: str
    names: tuple[str, ...]
    fixed: Mapping[str, Any]  # values the statement carries itself (literals turned binds)
    # SQLAlchemy's own conversions of the column types (UTC timestamps, JSON text), so that
    # values go to the driver exactly as SQLAlchemy would send them.
    processors: Mapping[str, Callable[[Any], Any]]
    # The RETURNING columns, each with the conversion of what the driver returns (None: none).
    returns: tuple[tuple[str, Callable[[Any], Any] | None], ...]

    def args(self, given: Mapping[str, Any]) -> list[Any]:
        values = []
        for name in self.names:
            value = given[name] if name in given else self.fixed[name]
            processor = self.processors.get(name)
            values.append(value if processor is None else processor(value))
        return values

    def row(self, values: Sequence[Any]) -> dict[str, Any]:
        """A returned row by column name, converted as SQLAlchemy would."""
        return {
            name: value if processor is None else processor(value)
            for (name, processor), value in zip(self.returns, values, strict=True)
        }


def compile_statement(
    stmt: UpdateBase | Select[Any], dialect: Dialect, columns: Sequence[str] | None = None
) -> CompiledStatement:
    """`columns`: for an INSERT, the columns its rows give (as execute()'s parameters would)."""
    compiled = stmt.compile(dialect=dialect, column_keys=columns)
    assert isinstance(compiled, SQLCompiler)
    names = tuple(compiled.positiontup or ())
    processors: dict[str, Callable[[Any], Any]] = {}
    for name in names:
        type_ = compiled.binds[name].type
        processor = type_.dialect_impl(dialect).bind_processor(dialect)
        if processor is None:
            continue
        # The store's UTC timestamps are a TypeDecorator around DateTime.
        if not isinstance(getattr(type_, "impl", type_), DateTime):
            processors[name] = processor
            continue
        # One for every statement of the dialect: a session's statements share its `now`.
        key = (dialect.name, dialect.driver, type(type_), getattr(type_, "timezone", None))
        processors[name] = _TIMESTAMPS.setdefault(key, _last_datetime_kept(processor))
    returns = tuple(
        (str(column.key), column.type.dialect_impl(dialect).result_processor(dialect, None))
        for column in stmt.exported_columns
    )
    return CompiledStatement(
        compiled.string, names, compiled.construct_params(_check=False), processors, returns
    )


_TIMESTAMPS: dict[tuple[str, str, type, bool | None], Callable[[Any], Any]] = {}


def _last_datetime_kept(processor: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """*processor*, which gives the same text for the same instant, with the last datetime it
    converted kept: a session's rows and statements all carry one `now` (the Inform's parameter
    rows, the device's times, the session's start), converted once instead of once a value."""
    last: tuple[Any, Any] = (None, None)

    def process(value: Any) -> Any:
        nonlocal last
        seen, converted = last  # one read: the store's worker threads share this
        if value is seen and value is not None:
            return converted
        converted = processor(value)
        if isinstance(value, datetime):  # immutable, so the same object converts the same
            last = (value, converted)
        return converted

    return process


@dataclass(frozen=True, slots=True)
class HotStatements:
    """What `Store.record_inform` and `Store.advance_session` run, for one dialect, and the
    one-statement calls of a bootstrap session."""

    device_upsert: CompiledStatement
    parameter_upsert: CompiledStatement
    drop_parameters: CompiledStatement
    supersede_sessions: CompiledStatement
    running_of_device: CompiledStatement
    retry_task: CompiledStatement
    open_session: CompiledStatement
    claim_task: CompiledStatement
    finish_task: CompiledStatement
    end_session: CompiledStatement
    set_cr_credentials: CompiledStatement
    device_lacks: CompiledStatement
    cr_target: CompiledStatement


def hot_statements(dialect: Dialect) -> HotStatements:
    name = dialect.name
    return HotStatements(
        device_upsert=compile_statement(
            statements.device_upsert(name), dialect, statements.DEVICE_UPSERT_COLUMNS
        ),
        parameter_upsert=compile_statement(
            statements.parameter_upsert(name),
            dialect,
            ("device_id", "path", "value", "type", "writable", "timestamp"),
        ),
        drop_parameters=compile_statement(statements.DROP_PARAMETERS, dialect),
        supersede_sessions=compile_statement(statements.SUPERSEDE_SESSIONS, dialect),
        running_of_device=compile_statement(statements.RUNNING_OF_DEVICE, dialect),
        retry_task=compile_statement(statements.RETRY_TASK, dialect),
        open_session=compile_statement(
            statements.OPEN_SESSION, dialect, ("device_id", "started", "events", "cwmp_version")
        ),
        claim_task=compile_statement(statements.CLAIM_TASK, dialect),
        finish_task=compile_statement(statements.FINISH_TASK, dialect),
        end_session=compile_statement(statements.END_SESSION, dialect),
        set_cr_credentials=compile_statement(statements.SET_CR_CREDENTIALS, dialect),
        device_lacks=compile_statement(statements.DEVICE_LACKS, dialect),
        cr_target=compile_statement(statements.CR_TARGET, dialect),
    )
