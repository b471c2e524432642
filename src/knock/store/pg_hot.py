"""The ACS's two per-session transactions on PostgreSQL, run on asyncpg itself.

SQLAlchemy's async execution layer (a greenlet per transaction, its cursor adapter, parameter
and result processing) costs several times the CPU of the driver for these: measured in one
process, an Inform with 8 parameters and the end of its session took 1,115 us of CPU through the
Store against 241 us for the same statements on asyncpg. The SQL is compiled once from the very
statements in `statements.py`, so both databases run the same statements; what this module
repeats is only their order, the same as `Store._record_inform` and `Store._advance_session`
(the store's tests run on both databases and hold the two to the same results).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from knock.store import statements
from knock.store.rows import InformRecord, TaskResult, TaskRow

_DIALECT = asyncpg_dialect()  # type: ignore[no-untyped-call]


@dataclass(frozen=True, slots=True)
class _Sql:
    text: str
    names: tuple[str, ...]
    fixed: Mapping[str, Any]  # values the statement carries itself (literals turned binds)
    # SQLAlchemy's own conversions of the column types (UTC timestamps, JSON text), so that
    # values go to the driver exactly as SQLAlchemy would send them.
    processors: Mapping[str, Callable[[Any], Any]]

    def args(self, given: Mapping[str, Any]) -> list[Any]:
        values = []
        for name in self.names:
            value = given[name] if name in given else self.fixed[name]
            processor = self.processors.get(name)
            values.append(value if processor is None else processor(value))
        return values


def _compile(stmt: ClauseElement, columns: Sequence[str] | None = None) -> _Sql:
    compiled = stmt.compile(dialect=_DIALECT, column_keys=columns)
    assert isinstance(compiled, SQLCompiler)
    names = tuple(compiled.positiontup or ())
    processors = {}
    for name in names:
        processor = compiled.binds[name].type.bind_processor(_DIALECT)
        if processor is not None:
            processors[name] = processor
    return _Sql(compiled.string, names, compiled.construct_params(_check=False), processors)


_DEVICE_COLUMNS = (
    "id",
    "manufacturer",
    "oui",
    "product_class",
    "serial_number",
    "registered",
    "last_inform",
    "last_boot",
    "last_bootstrap",
)
_PARAMETER_COLUMNS = ("device_id", "path", "value", "type", "writable", "timestamp")
_DEVICE_UPSERT = _compile(statements.device_upsert("postgresql"), _DEVICE_COLUMNS)
_PARAMETER_UPSERT = _compile(statements.parameter_upsert("postgresql"), _PARAMETER_COLUMNS)
_DROP_PARAMETERS = _compile(statements.DROP_PARAMETERS)
_FORGET_CREDENTIALS = _compile(statements.FORGET_CREDENTIALS)
_SUPERSEDE_SESSIONS = _compile(statements.SUPERSEDE_SESSIONS)
_REQUEUE_DEVICE = _compile(statements.REQUEUE_DEVICE)
_OPEN_SESSION = _compile(
    statements.OPEN_SESSION, ("device_id", "started", "events", "cwmp_version")
)
_CLAIM_TASK = _compile(statements.CLAIM_TASK)
_FINISH_TASK = _compile(statements.FINISH_TASK)
_END_SESSION = _compile(statements.END_SESSION)


async def record_inform(
    conn: asyncpg.Connection, rec: InformRecord, parameter_rows: list[dict[str, Any]]
) -> int:
    """Store.record_inform's transaction."""
    await conn.execute(_DEVICE_UPSERT.text, *_DEVICE_UPSERT.args(rec.device_row()))
    if rec.bootstrap:
        await conn.execute(
            _DROP_PARAMETERS.text, *_DROP_PARAMETERS.args({"device_id": rec.device_id})
        )
        await conn.execute(
            _FORGET_CREDENTIALS.text, *_FORGET_CREDENTIALS.args({"device_id": rec.device_id})
        )
    if parameter_rows:
        await conn.executemany(
            _PARAMETER_UPSERT.text, [_PARAMETER_UPSERT.args(row) for row in parameter_rows]
        )
    informing = {"informing_device": rec.device_id, "superseded_at": rec.now}
    if await conn.fetch(_SUPERSEDE_SESSIONS.text, *_SUPERSEDE_SESSIONS.args(informing)):
        await conn.execute(_REQUEUE_DEVICE.text, *_REQUEUE_DEVICE.args(informing))
    session = {
        "device_id": rec.device_id,
        "started": rec.now,
        "events": list(rec.events),
        "cwmp_version": rec.cwmp_version,
    }
    return int(await conn.fetchval(_OPEN_SESSION.text, *_OPEN_SESSION.args(session)))


async def advance_session(
    conn: asyncpg.Connection,
    device_id: str,
    session_id: int,
    done: TaskResult | None,
    finished: Mapping[str, Any] | None,
    parameter_rows: list[dict[str, Any]],
    ended: Mapping[str, Any],
) -> TaskRow | None:
    """Store.advance_session's transaction, for a `done` that deletes no parameters."""
    if done is not None:
        assert finished is not None and not done.delete_under
        await conn.execute(_FINISH_TASK.text, *_FINISH_TASK.args(finished))
        if parameter_rows:
            await conn.executemany(
                _PARAMETER_UPSERT.text, [_PARAMETER_UPSERT.args(row) for row in parameter_rows]
            )
    claim = {"claiming_device": device_id, "claiming_session": session_id}
    row = await conn.fetchrow(_CLAIM_TASK.text, *_CLAIM_TASK.args(claim))
    if row is None:
        await conn.execute(_END_SESSION.text, *_END_SESSION.args(ended))
        return None
    return TaskRow(**dict(row))
