"""The ACS's two per-session transactions on SQLite, run on the DB-API connection itself.

SQLAlchemy's execution layer (a Connection and a Transaction per call, statement cache look-up,
execution context, parameter and result processing) cost the ACS more CPU than SQLite itself took
to run these statements. The SQL is compiled once from the very statements in `statements.py`
(`compiled.hot_statements`), as `pg_hot` does for PostgreSQL; this module and `pg_hot` hold the
transactions' order, sync here for sqlite3 in a worker thread (or aiosqlite's adapted connection),
async there for asyncpg. The store's tests run on every driver and hold them to the same results.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.dialects.sqlite.pysqlite import dialect as pysqlite_dialect
from sqlalchemy.engine.interfaces import DBAPIConnection

from knock.store.compiled import hot_statements
from knock.store.retry import TaskRetry
from knock.store.rows import InformRecord, TaskResult, TaskRow

_SQL = hot_statements(pysqlite_dialect())


def record_inform(
    conn: DBAPIConnection,
    rec: InformRecord,
    parameter_rows: list[dict[str, Any]],
    retry: TaskRetry,
) -> int:
    """Store.record_inform's transaction."""
    cur = conn.cursor()
    # A write comes first, so that SQLite takes the write lock before anything is read: a
    # transaction that reads first cannot wait for the lock, only fail.
    cur.execute(_SQL.device_upsert.text, _SQL.device_upsert.args(rec.device_row()))
    if rec.bootstrap:
        device = {"device_id": rec.device_id}
        cur.execute(_SQL.drop_parameters.text, _SQL.drop_parameters.args(device))
        cur.execute(_SQL.forget_credentials.text, _SQL.forget_credentials.args(device))
    if parameter_rows:
        cur.executemany(
            _SQL.parameter_upsert.text, [_SQL.parameter_upsert.args(r) for r in parameter_rows]
        )
    informing = {"informing_device": rec.device_id, "superseded_at": rec.now}
    cur.execute(_SQL.supersede_sessions.text, _SQL.supersede_sessions.args(informing))
    if cur.fetchall():
        cur.execute(_SQL.running_of_device.text, _SQL.running_of_device.args(informing))
        for task_id, name, attempts, session_id in cur.fetchall():
            retried = retry.after_death(task_id, name, attempts, session_id, "superseded", rec.now)
            cur.execute(_SQL.retry_task.text, _SQL.retry_task.args(retried))
    session = {
        "device_id": rec.device_id,
        "started": rec.now,
        "events": list(rec.events),
        "cwmp_version": rec.cwmp_version,
    }
    cur.execute(_SQL.open_session.text, _SQL.open_session.args(session))
    (session_id,) = cur.fetchall()[0]
    return int(session_id)


def advance_session(
    conn: DBAPIConnection,
    done: TaskResult | None,
    finished: Mapping[str, Any] | None,
    parameter_rows: list[dict[str, Any]],
    claim: Mapping[str, Any],
    ended: Mapping[str, Any],
) -> TaskRow | None:
    """Store.advance_session's transaction, for a `done` that deletes no parameters."""
    cur = conn.cursor()
    if done is not None:
        assert finished is not None and not done.delete_under
        # The task's own row is written first so that SQLite takes the write lock at once.
        cur.execute(_SQL.finish_task.text, _SQL.finish_task.args(finished))
        if parameter_rows:
            cur.executemany(
                _SQL.parameter_upsert.text, [_SQL.parameter_upsert.args(r) for r in parameter_rows]
            )
    cur.execute(_SQL.claim_task.text, _SQL.claim_task.args(claim))
    rows = cur.fetchall()
    if not rows:
        cur.execute(_SQL.end_session.text, _SQL.end_session.args(ended))
        return None
    return TaskRow(**_SQL.claim_task.row(rows[0]))
