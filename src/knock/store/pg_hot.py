"""The ACS's two per-session transactions on PostgreSQL, run on asyncpg itself.

SQLAlchemy's async execution layer (a greenlet per transaction, its cursor adapter, parameter
and result processing) costs several times the CPU of the driver for these: measured in one
process, an Inform with 8 parameters and the end of its session took 1,115 us of CPU through the
Store against 241 us for the same statements on asyncpg. The SQL is compiled once from the very
statements in `statements.py` (`compiled.hot_statements`), so both databases run the same
statements; what this module repeats is only their order, the same as `sqlite_hot` (sync, for
SQLite) and `Store._advance_session`, and the one-at-a-time runs of the store's other hot
statements (`fetch`, `write`). The store's tests run on every driver and hold them to the same
results.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect

from knock.store import statements
from knock.store.compiled import CompiledStatement, compile_statement, hot_statements
from knock.store.retry import TaskRetry
from knock.store.rows import InformRecord, TaskResult, TaskRow

_DIALECT = asyncpg_dialect()  # type: ignore[no-untyped-call]
SQL = hot_statements(_DIALECT)
# PostgreSQL's alone: one statement where SQLite runs two (statements.py says why).
_SUPERSEDE_AND_OPEN = compile_statement(statements.SUPERSEDE_AND_OPEN, _DIALECT)
_CLAIM_OR_END = compile_statement(statements.CLAIM_OR_END, _DIALECT)


async def record_inform(
    conn: asyncpg.Connection,
    rec: InformRecord,
    parameter_rows: list[dict[str, Any]],
    retry: TaskRetry,
) -> int:
    """Store.record_inform's transaction."""
    await conn.execute(SQL.device_upsert.text, *SQL.device_upsert.args(rec.device_row()))
    if rec.bootstrap:
        await conn.execute(
            SQL.drop_parameters.text, *SQL.drop_parameters.args({"device_id": rec.device_id})
        )
        await conn.execute(
            SQL.forget_credentials.text,
            *SQL.forget_credentials.args({"device_id": rec.device_id}),
        )
    if parameter_rows:
        await write_many(conn, SQL.parameter_upsert, parameter_rows)
    informing = {
        "informing_device": rec.device_id,
        "superseded_at": rec.now,
        "opening_device": rec.device_id,
        "opening_at": rec.now,
        "opening_events": list(rec.events),
        "opening_version": rec.cwmp_version,
    }
    session_id, superseded = await conn.fetchrow(
        _SUPERSEDE_AND_OPEN.text, *_SUPERSEDE_AND_OPEN.args(informing)
    )
    if superseded:
        running = SQL.running_of_device
        for task_id, name, attempts, dead_session in await conn.fetch(
            running.text, *running.args(informing)
        ):
            retried = retry.after_death(
                task_id, name, attempts, dead_session, "superseded", rec.now
            )
            await conn.execute(SQL.retry_task.text, *SQL.retry_task.args(retried))
    return int(session_id)


async def advance_session(
    conn: asyncpg.Connection,
    done: TaskResult | None,
    finished: Mapping[str, Any] | None,
    parameter_rows: list[dict[str, Any]],
    claim: Mapping[str, Any],
    ended: Mapping[str, Any],
) -> TaskRow | None:
    """Store.advance_session's transaction, for a `done` that deletes no parameters."""
    if done is not None:
        assert finished is not None and not done.delete_under
        await conn.execute(SQL.finish_task.text, *SQL.finish_task.args(finished))
        if parameter_rows:
            await write_many(conn, SQL.parameter_upsert, parameter_rows)
    row = await conn.fetchrow(SQL.claim_task.text, *SQL.claim_task.args(claim))
    if row is None:
        await conn.execute(SQL.end_session.text, *SQL.end_session.args(ended))
        return None
    return TaskRow(**dict(row))


async def claim_or_end(
    conn: asyncpg.Connection, claim: Mapping[str, Any], ended: Mapping[str, Any]
) -> TaskRow | None:
    """advance_session's transaction when no task ended, as one statement without BEGIN and
    COMMIT (`statements.CLAIM_OR_END`): a session's last POST then costs one round trip."""
    row = await conn.fetchrow(_CLAIM_OR_END.text, *_CLAIM_OR_END.args({**claim, **ended}))
    return None if row is None else TaskRow(**_CLAIM_OR_END.row(row))


async def fetch(
    conn: asyncpg.Connection, stmt: CompiledStatement, given: Mapping[str, Any]
) -> list[Sequence[Any]]:
    """The rows one of `SQL`'s statements returns."""
    return list(await conn.fetch(stmt.text, *stmt.args(given)))


async def write(conn: asyncpg.Connection, stmt: CompiledStatement, given: Mapping[str, Any]) -> int:
    """One of `SQL`'s writes; the rows it changed (from its status, "UPDATE 1")."""
    status = await conn.execute(stmt.text, *stmt.args(given))
    return int(status.rsplit(" ", 1)[1])


async def write_many(
    conn: asyncpg.Connection, stmt: CompiledStatement, rows: Sequence[Mapping[str, Any]]
) -> None:
    await conn.executemany(stmt.text, [stmt.args(row) for row in rows])
