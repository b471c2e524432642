"""The ACS's two per-session transactions on SQLite, run on the DB-API connection itself.

SQLAlchemy's execution layer (a Connection and a Transaction per call, statement cache look-up,
execution context, parameter and result processing) cost the ACS more CPU than SQLite itself took
to run these statements. The SQL is compiled once from the very statements in `statements.py`
(`compiled.hot_statements`), as `pg_hot` does for PostgreSQL; this module and `pg_hot` hold the
transactions' order and run the store's other hot statements one at a time (`fetch`, `write`),
sync here for sqlite3 in a worker thread (or aiosqlite's adapted connection), async there for
asyncpg. The store's tests run on every driver and hold them to the same results.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.dialects.sqlite.pysqlite import dialect as pysqlite_dialect
from sqlalchemy.engine.interfaces import DBAPIConnection

from knock.store.compiled import CompiledStatement, hot_statements
from knock.store.retry import TaskRetry
from knock.store.rows import InformRecord, TaskResult, TaskRow

SQL = hot_statements(pysqlite_dialect())


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
    cur.execute(SQL.device_upsert.text, SQL.device_upsert.args(rec.device_row()))
    if rec.bootstrap:
        cur.execute(
            SQL.drop_parameters.text, SQL.drop_parameters.args({"device_id": rec.device_id})
        )
    if parameter_rows:
        write_many(conn, SQL.parameter_upsert, parameter_rows)
    informing = {"informing_device": rec.device_id, "superseded_at": rec.now}
    cur.execute(SQL.supersede_sessions.text, SQL.supersede_sessions.args(informing))
    # The device's tasks still running in a session that has ended: superseded now, or earlier
    # (on PostgreSQL an ACS can crash between an Inform and settling its tasks).
    cur.execute(SQL.running_of_device.text, SQL.running_of_device.args(informing))
    for task_id, name, attempts, session_id in cur.fetchall():
        retried = retry.after_death(task_id, name, attempts, session_id, "superseded", rec.now)
        cur.execute(SQL.retry_task.text, SQL.retry_task.args(retried))
    session = {
        "device_id": rec.device_id,
        "started": rec.now,
        "events": list(rec.events),
        "cwmp_version": rec.cwmp_version,
    }
    cur.execute(SQL.open_session.text, SQL.open_session.args(session))
    (session_id,) = cur.fetchall()[0]
    return int(session_id)


def record_provisioned(
    conn: DBAPIConnection, parameter_rows: list[dict[str, Any]], given: Mapping[str, Any]
) -> int:
    """Store.record_provisioned's transaction; the devices it updated (0 or 1)."""
    if parameter_rows:
        write_many(conn, SQL.parameter_upsert, parameter_rows)
    return write(conn, SQL.set_cr_credentials, given)


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
        cur.execute(SQL.finish_task.text, SQL.finish_task.args(finished))
        if parameter_rows:
            write_many(conn, SQL.parameter_upsert, parameter_rows)
    cur.execute(SQL.claim_task.text, SQL.claim_task.args(claim))
    rows = cur.fetchall()
    if not rows:
        cur.execute(SQL.end_session.text, SQL.end_session.args(ended))
        return None
    return TaskRow(**SQL.claim_task.row(rows[0]))


def fetch(
    conn: DBAPIConnection, stmt: CompiledStatement, given: Mapping[str, Any]
) -> list[Sequence[Any]]:
    """The rows one of `SQL`'s statements returns."""
    cur = conn.cursor()
    cur.execute(stmt.text, stmt.args(given))
    return list(cur.fetchall())


def write(conn: DBAPIConnection, stmt: CompiledStatement, given: Mapping[str, Any]) -> int:
    """One of `SQL`'s writes; the rows it changed."""
    cur = conn.cursor()
    cur.execute(stmt.text, stmt.args(given))
    return int(cur.rowcount)


def write_many(
    conn: DBAPIConnection, stmt: CompiledStatement, rows: Sequence[Mapping[str, Any]]
) -> None:
    conn.cursor().executemany(stmt.text, [stmt.args(row) for row in rows])
