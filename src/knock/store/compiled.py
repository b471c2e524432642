"""Statements of `statements.py` compiled once for one dialect, to run on its driver directly.

The per-session transactions (`pg_hot`, `sqlite_hot`) skip SQLAlchemy's execution layer, which
costs more CPU than the driver for these small statements; this is what they keep of SQLAlchemy:
the SQL text, the order of its parameters, and the column types' conversions of values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select
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
    processors = {}
    for name in names:
        processor = compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
        if processor is not None:
            processors[name] = processor
    returns = tuple(
        (str(column.key), column.type.dialect_impl(dialect).result_processor(dialect, None))
        for column in stmt.exported_columns
    )
    return CompiledStatement(
        compiled.string, names, compiled.construct_params(_check=False), processors, returns
    )


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
