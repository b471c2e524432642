"""The ACS's two per-session transactions on PostgreSQL, run on asyncpg itself.

SQLAlchemy's async execution layer (a greenlet per transaction, its cursor adapter, parameter
and result processing) costs several times the CPU of the driver for these: measured in one
process, an Inform with 8 parameters and the end of its session took 1,115 us of CPU through the
Store against 241 us for the same statements on asyncpg. The SQL is compiled once from the very
statements in `statements.py` (`compiled.hot_statements`), so both databases run the same
statements; what this module repeats is only their order, the same as `sqlite_hot` (sync, for
SQLite) and `Store._advance_session` (the store's tests run on every driver and hold them to the
same results).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect

from knock.store.compiled import hot_statements
from knock.store.retry import TaskRetry
from knock.store.rows import InformRecord, TaskResult, TaskRow

_SQL = hot_statements(asyncpg_dialect())  # type: ignore[no-untyped-call]


async def record_inform(
    conn: asyncpg.Connection,
    rec: InformRecord,
    parameter_rows: list[dict[str, Any]],
    retry: TaskRetry,
) -> int:
    """Store.record_inform's transaction."""
    await conn.execute(_SQL.device_upsert.text, *_SQL.device_upsert.args(rec.device_row()))
    if rec.bootstrap:
        await conn.execute(
            _SQL.drop_parameters.text, *_SQL.drop_parameters.args({"device_id": rec.device_id})
        )
        await conn.execute(
            _SQL.forget_credentials.text,
            *_SQL.forget_credentials.args({"device_id": rec.device_id}),
        )
    if parameter_rows:
        await conn.executemany(
            _SQL.parameter_upsert.text, [_SQL.parameter_upsert.args(row) for row in parameter_rows]
        )
    informing = {"informing_device": rec.device_id, "superseded_at": rec.now}
    if await conn.fetch(_SQL.supersede_sessions.text, *_SQL.supersede_sessions.args(informing)):
        running = _SQL.running_of_device
        for task_id, name, attempts, session_id in await conn.fetch(
            running.text, *running.args(informing)
        ):
            retried = retry.after_death(task_id, name, attempts, session_id, "superseded", rec.now)
            await conn.execute(_SQL.retry_task.text, *_SQL.retry_task.args(retried))
    session = {
        "device_id": rec.device_id,
        "started": rec.now,
        "events": list(rec.events),
        "cwmp_version": rec.cwmp_version,
    }
    return int(await conn.fetchval(_SQL.open_session.text, *_SQL.open_session.args(session)))


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
        await conn.execute(_SQL.finish_task.text, *_SQL.finish_task.args(finished))
        if parameter_rows:
            await conn.executemany(
                _SQL.parameter_upsert.text,
                [_SQL.parameter_upsert.args(row) for row in parameter_rows],
            )
    row = await conn.fetchrow(_SQL.claim_task.text, *_SQL.claim_task.args(claim))
    if row is None:
        await conn.execute(_SQL.end_session.text, *_SQL.end_session.args(ended))
        return None
    return TaskRow(**dict(row))
