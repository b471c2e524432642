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
# PostgreSQL's alone: one statement where SQLite runs several (statements.py says why).
_INFORM = compile_statement(statements.INFORM, _DIALECT)
_CLAIM_OR_END = compile_statement(statements.CLAIM_OR_END, _DIALECT)
_PROVISIONED = compile_statement(statements.PROVISIONED, _DIALECT)


async def record_inform(
    conn: asyncpg.Connection,
    rec: InformRecord,
    parameter_rows: list[dict[str, Any]],
    retry: TaskRetry,
) -> int:
    """Store.record_inform, one statement (`statements.INFORM`) without BEGIN and COMMIT; the
    device's running tasks, if it has any, settled after it in a transaction."""
    informing = {
        **rec.device_row(),
        "bootstrap": rec.bootstrap,
        **_parameter_arrays(parameter_rows),
        "param_at": rec.now,
        "informing_device": rec.device_id,
        "superseded_at": rec.now,
        "opening_at": rec.now,
        "opening_events": list(rec.events),
        "opening_version": rec.cwmp_version,
    }
    session_id, superseded, running = await conn.fetchrow(_INFORM.text, *_INFORM.args(informing))
    if superseded or running:
        async with conn.transaction():
            for task_id, name, attempts, dead_session in await fetch(
                conn, SQL.running_of_device, informing
            ):
                retried = retry.after_death(
                    task_id, name, attempts, dead_session, "superseded", rec.now
                )
                await write(conn, SQL.retry_task, retried)
    return int(session_id)


async def record_provisioned(
    conn: asyncpg.Connection, parameter_rows: list[dict[str, Any]], given: Mapping[str, Any]
) -> int:
    """Store.record_provisioned, one statement (`statements.PROVISIONED`); the devices it
    updated (0 or 1)."""
    arrays = _parameter_arrays(parameter_rows)
    status = await conn.execute(_PROVISIONED.text, *_PROVISIONED.args({**given, **arrays}))
    return int(status.rsplit(" ", 1)[1])


def _parameter_arrays(parameter_rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Parameter rows as the column arrays `statements.INFORM` and `PROVISIONED` unnest."""
    return {
        "param_paths": [row["path"] for row in parameter_rows],
        "param_values": [row["value"] for row in parameter_rows],
        "param_types": [row["type"] for row in parameter_rows],
        "param_writable": [row["writable"] for row in parameter_rows],
    }


async def advance_session(
    conn: asyncpg.Connection,
    done: TaskResult | None,
    finished: Mapping[str, Any] | None,
    parameter_rows: list[dict[str, Any]],
    claim: Mapping[str, Any],
    ended: Mapping[str, Any],
) -> TaskRow | None:
    """Store.advance_session, for a `done` that deletes no parameters: with none, one
    statement (`statements.CLAIM_OR_END`), a session's last POST one round trip."""
    if done is None:
        return await _claim_or_end(conn, claim, ended)
    assert finished is not None and not done.delete_under
    async with conn.transaction():
        await write(conn, SQL.finish_task, finished)
        if parameter_rows:
            await write_many(conn, SQL.parameter_upsert, parameter_rows)
        return await _claim_or_end(conn, claim, ended)


async def _claim_or_end(
    conn: asyncpg.Connection, claim: Mapping[str, Any], ended: Mapping[str, Any]
) -> TaskRow | None:
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
    """One of `SQL`'s writes for each row, atomic (asyncpg sends them with one Sync)."""
    await conn.executemany(stmt.text, [stmt.args(row) for row in rows])
