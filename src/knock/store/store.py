"""The store: every read and write of persistent state goes through `Store`.

Callers (ACS session service, NBI) rely on the signatures and docstrings below. Each method is
one transaction, written as a plain function of a Connection and run by `database.Database`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Sequence,
)
from contextlib import contextmanager
from dataclasses import fields
from datetime import datetime
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import asyncpg
from sqlalchemy import (
    Column,
    Connection,
    Insert,
    delete,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.expression import ColumnElement

from knock.hosts import canonical_ip
from knock.store import files, pg_hot, presets, sqlite_hot, statements
from knock.store.cr_stats import CrCounts, count_cr_attempts
from knock.store.database import AsyncDatabase, Database, ReadLimits
from knock.store.engine import open_database
from knock.store.errors import IdempotencyKeyReusedError, UnknownDeviceError
from knock.store.file_folder import FileFolder
from knock.store.limits import check_inform, check_parameters
from knock.store.migrations import migrate
from knock.store.object_ids import new_object_id
from knock.store.one_statement import all_rows as _all
from knock.store.one_statement import count as _count
from knock.store.one_statement import first as _first
from knock.store.one_statement import rowcount as _rowcount
from knock.store.retry import TaskRetry
from knock.store.rows import (
    CrAttemptRow,
    CrTarget,
    DeviceRow,
    InformRecord,
    ParamValue,
    SessionRow,
    StoredParam,
    TaskKey,
    TaskResult,
    TaskRow,
    TransferDone,
    XmppAccountRow,
)
from knock.store.schema import (
    cr_attempts,
    cwmp_user_devices,
    devices,
    digest_nonces,
    parameters,
    sessions,
    shared_secrets,
    tasks,
    xmpp_accounts,
)
from knock.vocab import TaskStatus

# What a DeviceRow shows: the stored credentials stay out of everything the NBI can read.
_DEVICE_COLUMNS = [devices.c[f.name] for f in fields(DeviceRow)]

P = ParamSpec("P")
T = TypeVar("T")

# SQLite takes at most 32766 bound values per statement; device lists are sent in slices.
_IN_CHUNK = 1000


def _task_is(task_id: TaskKey) -> ColumnElement[bool]:
    return tasks.c.public_id == task_id if isinstance(task_id, str) else tasks.c.id == task_id


class Store:
    def __init__(
        self, db: Database, task_retry: TaskRetry | None = None, file_folder: Path | None = None
    ) -> None:
        """Use `Store.open`; this takes a database that is already migrated."""
        self._db = db
        self._file_folder = None if file_folder is None else FileFolder(file_folder)
        self._retry = task_retry or TaskRetry()
        # PostgreSQL runs the per-session transactions on asyncpg itself (knock.store.pg_hot).
        self._asyncpg = (
            db if isinstance(db, AsyncDatabase) and db.dialect_name == "postgresql" else None
        )
        self._hot = pg_hot.SQL if self._asyncpg is not None else sqlite_hot.SQL
        self._parameter_upsert = statements.parameter_upsert(db.dialect_name)
        self._binding_upsert = statements.binding_upsert(db.dialect_name)
        self._xmpp_account_upsert = statements.xmpp_account_upsert(db.dialect_name)
        self._secret_insert = statements.first_wins_insert(db.dialect_name, shared_secrets)
        self._keyed_task_insert = statements.keyed_task_insert(db.dialect_name)
        self._nonce_count_advance = statements.nonce_count_advance(db.dialect_name)
        self._user_device_insert = statements.first_wins_insert(db.dialect_name, cwmp_user_devices)

    @classmethod
    async def open(
        cls,
        url: str,
        task_retry: TaskRetry | None = None,
        reads: ReadLimits | None = None,
        file_folder: Path | None = None,
    ) -> Store:
        """Connect and migrate. `url` is "sqlite:///path.db", "sqlite:///:memory:" or a
        "postgresql://user:pw@host/db" URL; the driver (sqlite3 in worker threads / asyncpg) is
        chosen here. `reads` bounds the NBI's reads (the methods that say so). `file_folder`:
        where stored files' bytes go instead of the database (files_dir)."""
        db = open_database(url, reads)
        try:
            await migrate(db)
        except BaseException:
            await db.close()
            raise
        return cls(db, task_retry, file_folder)

    def stop_reads(self) -> None:
        """Stop the NBI's reads in flight (ReadsStoppedError) and refuse new ones: shutting down."""
        self._db.stop_reads()

    async def close(self) -> None:
        await self._db.close()

    @property
    def dialect_name(self) -> str:
        """ "sqlite" or "postgresql"."""
        return self._db.dialect_name

    async def shared_secret(self, name: str, make: Callable[[], str]) -> str:
        """The secret stored under `name`; the first caller on the database stores `make()`."""
        return await self._db.run(
            _first_wins,
            self._secret_insert,
            {"name": name, "value": make()},
            shared_secrets.c.name,
            shared_secrets.c.value,
        )

    async def bind_cwmp_user(self, username: str, device_id: str) -> str:
        """The device the CWMP username speaks for: `device_id` unless another device was bound
        to it first (by any process on the database)."""
        return await self._db.run(
            _first_wins,
            self._user_device_insert,
            {"username": username, "device_id": device_id},
            cwmp_user_devices.c.username,
            cwmp_user_devices.c.device_id,
        )

    async def advance_digest_nonce(
        self, nonce: str, issued: int, nc: int, forget_before: int | None = None
    ) -> bool:
        """Record nonce count `nc` of a CWMP Digest nonce issued at `issued` (Unix seconds);
        False when a count as high was recorded already (a replay), by any process. With
        `forget_before`, nonces issued earlier are deleted first (they are stale anyway)."""
        return await self._db.run(self._advance_digest_nonce, nonce, issued, nc, forget_before)

    def _advance_digest_nonce(
        self, conn: Connection, nonce: str, issued: int, nc: int, forget_before: int | None
    ) -> bool:
        if forget_before is not None:
            conn.execute(delete(digest_nonces).where(digest_nonces.c.issued < forget_before))
        advanced = conn.execute(
            self._nonce_count_advance, {"nonce": nonce, "nc": nc, "issued": issued}
        ).first()
        return advanced is not None

    # --- sessions (the ACS) -------------------------------------------------------------------
    async def record_inform(self, rec: InformRecord) -> int:
        """Upsert the device, store the Inform's parameters, open a session row; return its id.
        With "0 BOOTSTRAP" among the events, the device's stored parameters are dropped first
        (tasks are kept). "1 BOOT" sets last_boot, "0 BOOTSTRAP" last_bootstrap. Sessions of the
        device still open (in a process that died or lost it) end as "superseded", and the tasks
        they were running are settled as in `retry_running` (`TaskRetry`). A text longer than
        the store keeps raises TooLongError naming it, on every database, and nothing is
        written."""
        check_inform(rec.device_row(), rec.cwmp_version)
        rows = _parameter_rows(rec.device_id, rec.parameters, rec.now)
        return await self._on_driver(
            pg_hot.record_inform, sqlite_hot.record_inform, rec, rows, self._retry
        )

    async def end_session(self, session_id: int, outcome: str, now: datetime) -> None:
        await self._db.run(_end_session, session_id, outcome, now)

    async def claim_next_task(
        self, device_id: str, session_id: int, now: datetime
    ) -> TaskRow | None:
        """The oldest queued task of the device not waiting out a retry back-off at *now*,
        atomically marked running in this session."""
        return await self._db.run(_claim_task, device_id, session_id, now)

    async def finish_task(
        self,
        task_id: int,
        status: str,
        session_id: int,
        now: datetime,
        *,
        result: Any = None,
        fault_code: str | None = None,
        fault_string: str | None = None,
        fault_detail: Any = None,
    ) -> None:
        """Mark a task running in this session done or faulted."""
        done = TaskResult(task_id, status, result, fault_code, fault_string, fault_detail)
        await self._db.run(_finish_task, done, session_id, now)

    async def advance_session(
        self,
        device_id: str,
        session_id: int,
        now: datetime,
        done: TaskResult | None = None,
        *,
        end_when_idle: bool = True,
    ) -> TaskRow | None:
        """One step of the ACS's turn, in one transaction: record the task that just ended (its
        outcome and the parameter changes it made), then claim the device's next queued task;
        with none left, end the session as "ok" (unless not *end_when_idle*: a session the ACS
        keeps open for more tasks). Returns the claimed task, or None."""
        if (done is None or not done.delete_under) and end_when_idle:
            hot = (
                done,
                None if done is None else _finished(done, session_id, now),
                [] if done is None else _parameter_rows(device_id, done.put, now),
                _claim(device_id, session_id, now),
                _ended(session_id, "ok", now),
            )
            return await self._on_driver(pg_hot.advance_session, sqlite_hot.advance_session, *hot)
        return await self._db.run(
            self._advance_session, device_id, session_id, now, done, end_when_idle
        )

    def _advance_session(
        self,
        conn: Connection,
        device_id: str,
        session_id: int,
        now: datetime,
        done: TaskResult | None,
        end_when_idle: bool,
    ) -> TaskRow | None:
        if done is not None:
            # The task's own row is written first so that SQLite takes the write lock at once.
            _finish_task(conn, done, session_id, now)
            for prefix in done.delete_under:
                _delete_parameters_under(conn, device_id, prefix)
            if done.put:
                conn.execute(self._parameter_upsert, _parameter_rows(device_id, done.put, now))
        task = _claim_task(conn, device_id, session_id, now)
        if task is None and end_when_idle:
            _end_session(conn, session_id, "ok", now)
        return task

    async def retry_running(self, session_id: int, reason: str, now: datetime) -> list[TaskRow]:
        """The session died (ended with outcome *reason*) while running a task: queue it again
        after a back-off, or fault it after its last allowed attempt, or, for a task the device
        may have run and must not run twice (knock.vocab.NOT_RESENT), end it `unknown`
        (`TaskRetry`). Tasks of a process that died get the same when their device's next
        Inform arrives (record_inform). Returns the tasks as they are now."""
        return await self._db.run(self._retry_running, session_id, reason, now)

    def _retry_running(
        self, conn: Connection, session_id: int, reason: str, now: datetime
    ) -> list[TaskRow]:
        running = conn.execute(statements.RUNNING_IN_SESSION, {"dead_session": session_id})
        return self._settle(conn, running.all(), reason, now)

    def _settle(
        self, conn: Connection, running: Iterable[Sequence[Any]], reason: str, now: datetime
    ) -> list[TaskRow]:
        """Apply `TaskRetry` to running tasks whose session died (rows of statements._running);
        the tasks as they are now."""
        settled = []
        for task_id, name, attempts, session_id, *_ in running:
            after = self._retry.after_death(task_id, name, attempts, session_id, reason, now)
            conn.execute(statements.RETRY_TASK, after)
            row = conn.execute(select(tasks).where(tasks.c.id == task_id)).one()
            settled.append(TaskRow(**row._mapping))
        return settled

    async def recover_after_crash(self, now: datetime) -> list[str]:
        """SQLite only, at start: the one process on the file is this one, so whatever the last
        one left open is dead. End its open sessions ("aborted") and settle their running tasks
        as `retry_running` does for a session ended "aborted" (the crash counts as an attempt;
        knock.vocab.NOT_RESENT ones end `unknown`). Returns the devices that have tasks queued
        again, to be sent a connection request."""
        if self.dialect_name != "sqlite":
            raise ValueError(
                "recover_after_crash is for SQLite, which one process serves; on PostgreSQL "
                "other processes may be running those tasks"
            )
        return await self._db.run(self._recover_after_crash, now)

    def _recover_after_crash(self, conn: Connection, now: datetime) -> list[str]:
        running = conn.execute(statements.RUNNING_ALL).all()
        conn.execute(statements.ABORT_SESSIONS, {"ended_at": now})
        settled = self._settle(conn, running, "aborted", now)
        return sorted({task.device_id for task in settled if task.status == TaskStatus.QUEUED})

    async def put_parameters(
        self, device_id: str, params: Sequence[ParamValue], now: datetime
    ) -> None:
        """Insert or update parameters. A field given as None keeps the stored one, except that
        value and type are always written together when `type` is not None."""
        if not params:
            return
        rows = _parameter_rows(device_id, params, now)
        with _known_device(device_id, "store parameters"):
            await self._on_driver(
                pg_hot.write_many, sqlite_hot.write_many, self._hot.parameter_upsert, rows
            )

    async def delete_parameters_under(self, device_id: str, prefix: str) -> int:
        """Remove every parameter whose path starts with `prefix` (an object path ending in ".")."""
        return await self._db.run(_delete_parameters_under, device_id, prefix)

    # --- devices (the NBI) --------------------------------------------------------------------
    async def get_device(self, device_id: str) -> DeviceRow | None:
        row = await self._db.run_statement(
            _first, select(*_DEVICE_COLUMNS).where(devices.c.id == device_id)
        )
        return None if row is None else DeviceRow(**row._mapping)

    async def find_devices(
        self,
        where: ColumnElement[bool] | None,
        order_by: Sequence[ColumnElement[Any]] = (),
        skip: int = 0,
        limit: int | None = None,
    ) -> list[DeviceRow]:
        """Devices matching `where`, an SQLAlchemy expression over `schema.devices` (and
        correlated EXISTS subqueries over `schema.parameters`), built by the NBI. An NBI read
        (Database.read): QueryTimeoutError past its time."""
        stmt = select(*_DEVICE_COLUMNS)
        if where is not None:
            stmt = stmt.where(where)
        # The id breaks ties, so that pages cut by skip and limit neither overlap nor miss rows.
        stmt = stmt.order_by(*order_by, devices.c.id).offset(skip).limit(limit)
        return [DeviceRow(**row._mapping) for row in await self._db.read(_all, stmt)]

    async def count_devices(self, where: ColumnElement[bool] | None) -> int:
        """How many devices match `where` (as find_devices takes it), whatever the page: an
        NBI read (Database.read), bounded as the listing is."""
        return await self._db.read(_count, devices, where)

    async def get_parameters(
        self, device_ids: Sequence[str], prefixes: Sequence[str] = (), *, nbi: bool = False
    ) -> dict[str, list[StoredParam]]:
        """Parameters of each device, optionally only those under the given path prefixes.
        With `nbi`, an NBI read (Database.read)."""
        if nbi:
            return await self._db.read(_parameters_of, device_ids, prefixes)
        if len(device_ids) <= _IN_CHUNK:
            # One statement (the ACS asks for one device's), atomic without BEGIN and COMMIT.
            return await self._db.run_statement(_parameters_of, device_ids, prefixes)
        return await self._db.run(_parameters_of, device_ids, prefixes)

    async def delete_device(self, device_id: str) -> bool:
        """Remove the device with its parameters, sessions, tasks and attempts."""
        deleted = await self._db.run_statement(
            _rowcount, delete(devices).where(devices.c.id == device_id)
        )
        return deleted > 0

    async def list_sessions(self, device_id: str, limit: int = 50) -> list[SessionRow]:
        """The device's latest sessions, newest first."""
        rows = await self._db.run_statement(
            _all,
            select(sessions)
            .where(sessions.c.device_id == device_id)
            .order_by(sessions.c.started.desc(), sessions.c.id.desc())
            .limit(limit),
        )
        return [SessionRow(**row._mapping) for row in rows]

    # --- connection requests (the ACS) --------------------------------------------------------
    async def add_cr_attempt(self, device_id: str, method: str, now: datetime) -> int:
        """Record that a connection request (knock.vocab.CrMethod) is under way; return its id."""
        with _known_device(device_id, "record a connection request"):
            row = await self._db.run_statement(
                _first,
                insert(cr_attempts)
                .values(device_id=device_id, method=method, started=now)
                .returning(cr_attempts.c.id),
            )
        assert row is not None  # INSERT ... RETURNING returns the row it inserted
        return int(row.id)

    async def finish_cr_attempt(
        self,
        attempt_id: int,
        outcome: str,
        now: datetime,
        detail: str | None = None,
        started: datetime | None = None,
    ) -> None:
        """Record how the attempt ended (knock.vocab.CrOutcome), with what was seen; *started*,
        when the request went later than the attempt was recorded (the one that was sent after
        the device's rate limit, or after the record's own write)."""
        values: dict[str, object] = {"ended": now, "outcome": outcome, "detail": detail}
        if started is not None:
            values["started"] = started
        await self._db.run_statement(
            _rowcount, update(cr_attempts).where(cr_attempts.c.id == attempt_id).values(values)
        )

    async def list_cr_attempts(self, device_id: str, limit: int = 50) -> list[CrAttemptRow]:
        """The device's latest connection-request attempts, newest first."""
        rows = await self._db.run_statement(
            _all,
            select(cr_attempts)
            .where(cr_attempts.c.device_id == device_id)
            .order_by(cr_attempts.c.started.desc(), cr_attempts.c.id.desc())
            .limit(limit),
        )
        return [CrAttemptRow(**row._mapping) for row in rows]

    async def cr_attempt_counts(
        self, since: datetime, until: datetime, slices: int, edges_ms: Sequence[int]
    ) -> CrCounts:
        """Every device's attempts started in [since, until], counted in the database (see
        `cr_stats.count_cr_attempts`): the dashboard's fleet view, an NBI read."""
        return await self._db.read(
            count_cr_attempts, self._db.dialect_name, since, until, slices, edges_ms
        )

    async def set_cr_credentials(self, device_id: str, username: str, password: str) -> None:
        """Remember the connection-request credentials the ACS set on the device."""
        updated = await self._on_driver(
            pg_hot.write,
            sqlite_hot.write,
            self._hot.set_cr_credentials,
            {"device_id": device_id, "new_cr_username": username, "new_cr_password": password},
        )
        if not updated:
            raise UnknownDeviceError(device_id, "store connection-request credentials")

    async def record_provisioned(
        self,
        device_id: str,
        params: Sequence[ParamValue],
        username: str,
        password: str,
        now: datetime,
    ) -> None:
        """What provisioning found, at once: `put_parameters` and `set_cr_credentials`; one
        statement on PostgreSQL, one transaction on SQLite."""
        rows = _parameter_rows(device_id, params, now)
        given = {
            "id": device_id,
            "device_id": device_id,
            "new_cr_username": username,
            "new_cr_password": password,
            "param_at": now,
        }
        with _known_device(device_id, "store what provisioning found"):
            updated = await self._on_driver(
                pg_hot.record_provisioned, sqlite_hot.record_provisioned, rows, given
            )
        if not updated:
            raise UnknownDeviceError(device_id, "store connection-request credentials")

    async def set_stun_credentials(self, device_id: str, username: str, password: str) -> None:
        """Remember the STUN credentials the ACS set on the device (TR-111)."""
        updated = await self._db.run_statement(
            _rowcount,
            update(devices)
            .where(devices.c.id == device_id)
            .values(stun_username=username, stun_password=password),
        )
        if not updated:
            raise UnknownDeviceError(device_id, "store STUN credentials")

    async def device_lacks(self, device_id: str) -> frozenset[str]:
        """What the device was found unable to do (knock.vocab.Lack values)."""
        rows = await self._on_driver(
            pg_hot.fetch, sqlite_hot.fetch, self._hot.device_lacks, {"device_id": device_id}
        )
        if not rows:
            return frozenset()
        return frozenset(self._hot.device_lacks.row(rows[0])["lacks"] or ())

    async def add_device_lacks(self, device_id: str, lacks: Iterable[str]) -> None:
        """Remember that the device cannot do *lacks*, beside what it was found to lack before."""
        await self._db.run(_add_lacks, device_id, frozenset(lacks))

    async def stun_passwords(self) -> dict[str, str]:
        """Every STUN username Knock set, with its password: what the STUN server checks."""
        rows = await self._db.run_statement(
            _all,
            select(devices.c.stun_username, devices.c.stun_password).where(
                devices.c.stun_username.is_not(None), devices.c.stun_password.is_not(None)
            ),
        )
        return {row.stun_username: row.stun_password for row in rows}

    async def stun_password(self, username: str) -> str | None:
        """The password of one STUN username Knock set (perhaps by another ACS process)."""
        row = await self._db.run_statement(
            _first,
            select(devices.c.stun_password).where(devices.c.stun_username == username),
        )
        return None if row is None else row.stun_password

    async def record_stun_outcome(
        self, username: str, outcome: str, source: str, since: datetime
    ) -> str | None:
        """Note how STUN answered the device holding STUN username *username* (a
        knock.vocab.StunOutcome) and from where; the device's id, None if no device holds it."""
        return await self._db.run(_record_stun_outcome, username, outcome, source, since)

    async def record_xmpp_setup(
        self, device_id: str, outcome: str, detail: str | None, at: datetime
    ) -> None:
        """Note how provisioning the device for XMPP ended (a knock.vocab.XmppSetup)."""
        updated = await self._db.run_statement(
            _rowcount,
            update(devices)
            .where(devices.c.id == device_id)
            .values(xmpp_setup=outcome, xmpp_setup_detail=detail, xmpp_setup_at=at),
        )
        if not updated:
            raise UnknownDeviceError(device_id, "store how its XMPP set-up ended")

    async def record_binding(self, username: str, host: str, port: int, seen: datetime) -> None:
        """The public address STUN saw for `username` (a CPE's NAT binding)."""
        await self._db.run_statement(
            _rowcount,
            self._binding_upsert,
            {"username": username, "host": canonical_ip(host), "port": port, "seen": seen},
        )

    async def put_xmpp_account(self, account: XmppAccountRow) -> None:
        """Create the account, or replace its credentials."""
        await self._db.run_statement(
            _rowcount,
            self._xmpp_account_upsert,
            {
                "username": account.username,
                "salt": account.salt,
                "iterations": account.iterations,
                "stored_key": account.stored_key,
                "server_key": account.server_key,
                "device_id": account.device_id,
            },
        )

    async def device_of_xmpp_account(self, username: str) -> str | None:
        """The device an account of the built-in XMPP server was made for, if any."""
        row = await self._db.run_statement(
            _first,
            select(xmpp_accounts.c.device_id).where(xmpp_accounts.c.username == username),
        )
        return None if row is None else row.device_id

    async def record_xmpp_login(
        self, device_id: str, since: datetime, outcome: str, detail: str, source: str
    ) -> None:
        """The device's last login to the built-in XMPP server (a gone device: nothing)."""
        await self._db.run_statement(
            _rowcount,
            update(devices)
            .where(devices.c.id == device_id)
            .values(
                xmpp_login_since=since,
                xmpp_login_outcome=outcome,
                xmpp_login_detail=detail[:256],
                xmpp_login_source=source[:64],
            ),
        )

    async def get_xmpp_account(self, username: str) -> XmppAccountRow | None:
        row = await self._db.run_statement(
            _first, select(xmpp_accounts).where(xmpp_accounts.c.username == username)
        )
        return None if row is None else XmppAccountRow(**row._mapping)

    async def get_cr_target(self, device_id: str) -> CrTarget | None:
        """The credentials and ManagementServer parameters a connection request needs, and what
        the device lacks (one read for a session's provisioning)."""
        rows = await self._on_driver(
            pg_hot.fetch, sqlite_hot.fetch, self._hot.cr_target, {"device_id": device_id}
        )
        if not rows:
            return None
        first = self._hot.cr_target.row(rows[0])
        host = first["host"]
        management = {}
        for *_, path, value in rows:
            if path is None:  # the device has no ManagementServer parameter
                continue
            leaf = path.split(".ManagementServer.", 1)[1]
            if "." not in leaf and value is not None:  # leaves only, not ManageableDevice.{i}.
                management[leaf] = value
        binding = None if host is None else (host, int(first["port"]))
        return CrTarget(
            device_id,
            first["cr_username"],
            first["cr_password"],
            management,
            first["stun_username"],
            binding,
            frozenset(first["lacks"] or ()),
        )

    async def _on_driver(
        self,
        on_asyncpg: Callable[Concatenate[asyncpg.Connection, P], Awaitable[T]],
        on_sqlite: Callable[Concatenate[DBAPIConnection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """One of the hot calls (`pg_hot` and its `sqlite_hot` twin) on the driver itself:
        on asyncpg without a transaction unless it begins one, on SQLite in one."""
        if self._asyncpg is not None:
            return await self._asyncpg.on_asyncpg(on_asyncpg, *args, **kwargs)
        return await self._db.run_dbapi(on_sqlite, *args, **kwargs)

    # --- tasks (the NBI) ----------------------------------------------------------------------
    async def add_task(
        self,
        device_id: str,
        name: str,
        spec: dict[str, Any],
        now: datetime,
        idempotency_key: str | None = None,
    ) -> TaskRow:
        """Queue a task. With an idempotency key, the device's task already stored under it is
        returned instead of a new one (a client retrying a POST whose answer it lost); if that
        task is another one (name or spec), IdempotencyKeyReusedError."""
        row = {
            "device_id": device_id,
            "name": name,
            "spec": spec,
            "status": TaskStatus.QUEUED,
            "created": now,
            "idempotency_key": idempotency_key,
            "public_id": new_object_id(now),
        }
        with _known_device(device_id, f"queue task {name!r}"):
            return await self._db.run(self._add_task, row)

    def _add_task(self, conn: Connection, row: dict[str, Any]) -> TaskRow:
        if row["idempotency_key"] is None:
            added = conn.execute(insert(tasks).values(row).returning(*tasks.c)).one()
            return TaskRow(**added._mapping)
        inserted = conn.execute(self._keyed_task_insert, row).first()
        if inserted is not None:
            return TaskRow(**inserted._mapping)
        stored = TaskRow(
            **conn.execute(
                select(tasks).where(
                    tasks.c.device_id == row["device_id"],
                    tasks.c.idempotency_key == row["idempotency_key"],
                )
            )
            .one()
            ._mapping
        )
        if (stored.name, stored.spec) != (row["name"], row["spec"]):
            raise IdempotencyKeyReusedError(
                row["device_id"], row["idempotency_key"], str(stored.public_id)
            )
        return stored

    async def get_task(self, task_id: TaskKey) -> TaskRow | None:
        row = await self._db.run_statement(_first, select(tasks).where(_task_is(task_id)))
        return None if row is None else TaskRow(**row._mapping)

    async def find_tasks(
        self, where: ColumnElement[bool] | None, skip: int = 0, limit: int | None = None
    ) -> list[TaskRow]:
        """Tasks matching `where`, an SQLAlchemy expression over `schema.tasks`, oldest first;
        an NBI read (Database.read)."""
        stmt = select(tasks)
        if where is not None:
            stmt = stmt.where(where)
        stmt = stmt.order_by(tasks.c.id).offset(skip).limit(limit)
        return [TaskRow(**row._mapping) for row in await self._db.read(_all, stmt)]

    async def count_tasks(self, where: ColumnElement[bool] | None) -> int:
        return await self._db.read(_count, tasks, where)

    async def record_transfer_complete(
        self, device_id: str, task_id: TaskKey, done: TransferDone, now: datetime
    ) -> TaskRow | None:
        """Record the device's TransferComplete on the download or upload task *task_id* that
        asked for it (the device accepted it: done, or faulted by an earlier report): a fault
        makes the task faulted with it, success adds the times to its result. Returns the task
        as it is now, or None when the device has no such task."""
        return await self._db.run(_record_transfer, device_id, task_id, done, now)

    async def requeue_faulted_task(self, task_id: TaskKey) -> TaskRow | None:
        """Queue a faulted task again, as new: its fault, result and attempts cleared (GenieACS's
        DELETE /faults/<id>). None when no faulted task has that id."""
        row = await self._db.run_statement(
            _first,
            update(tasks)
            .where(_task_is(task_id), tasks.c.status == TaskStatus.FAULTED)
            .values(
                status=TaskStatus.QUEUED,
                finished=None,
                session_id=None,
                fault_code=None,
                fault_string=None,
                fault_detail=None,
                result=None,
                attempts=0,
                not_before=None,
            )
            .returning(*tasks.c),
        )
        return None if row is None else TaskRow(**row._mapping)

    async def delete_task(self, task_id: TaskKey) -> bool:
        deleted = await self._db.run_statement(_rowcount, delete(tasks).where(_task_is(task_id)))
        return deleted > 0

    # --- files (the NBI, the file server) -----------------------------------------------------
    async def put_file(
        self, name: str, meta: files.FileMeta, chunks: AsyncIterable[bytes], now: datetime
    ) -> files.FileRow:
        """Store the bytes *chunks* yields as file *name*, streamed a chunk at a time; a file
        of that name is replaced once the last byte is in (files.FileTooLarge past the limit)."""
        return await files.put_file(self._db, self._file_folder, name, meta, chunks, now)

    async def get_file(self, name: str) -> files.FileRow | None:
        return await files.get_file(self._db, name)

    async def find_files(
        self, where: ColumnElement[bool] | None, skip: int = 0, limit: int | None = None
    ) -> list[files.FileRow]:
        """Files matching `where`, an SQLAlchemy expression over `schema.files`, by name."""
        return await files.find_files(self._db, where, skip, limit)

    async def count_files(self, where: ColumnElement[bool] | None) -> int:
        return await files.count_files(self._db, where)

    async def delete_file(self, name: str) -> bool:
        return await files.delete_file(self._db, self._file_folder, name)

    def read_file(self, file_id: int, start: int, end: int) -> AsyncIterator[bytes]:
        """Bytes [start, end) of the stored file *file_id*, a chunk at a time."""
        return files.read_file(self._db, self._file_folder, file_id, start, end)

    # --- tags and presets (the NBI, the ACS) -------------------------------------------------
    async def add_tags(self, device_id: str, tags: Iterable[str]) -> None:
        """Tag the device (UnknownDeviceError if there is none)."""
        await presets.add_tags(self._db, device_id, tags)

    async def delete_tags(self, device_id: str, tags: Iterable[str]) -> int:
        """Untag the device; returns how many of the tags it had."""
        return await presets.delete_tags(self._db, device_id, tags)

    async def tags_of(self, device_ids: Sequence[str]) -> dict[str, list[str]]:
        return await presets.tags_of(self._db, device_ids)

    async def put_preset(self, name: str, weight: int, doc: dict[str, Any]) -> None:
        """Create or replace the preset *name*."""
        await presets.put_preset(self._db, name, weight, doc)

    async def list_presets(self) -> list[presets.PresetRow]:
        return await presets.list_presets(self._db)

    async def find_presets(
        self, where: ColumnElement[bool] | None, skip: int = 0, limit: int | None = None
    ) -> list[presets.PresetRow]:
        """Presets matching `where`, an SQLAlchemy expression over `schema.presets`, lightest
        first; an NBI read."""
        return await presets.find_presets(self._db, where, skip, limit)

    async def count_presets(self, where: ColumnElement[bool] | None) -> int:
        return await presets.count_presets(self._db, where)

    async def delete_preset(self, name: str) -> bool:
        return await presets.delete_preset(self._db, name)


def _record_transfer(
    conn: Connection, device_id: str, task_id: TaskKey, done: TransferDone, now: datetime
) -> TaskRow | None:
    this = (
        _task_is(task_id),
        tasks.c.device_id == device_id,
        tasks.c.name.in_(("download", "upload")),
        tasks.c.status.in_((TaskStatus.DONE, TaskStatus.FAULTED)),
    )
    task = conn.execute(select(tasks).where(*this)).first()
    if task is None:
        return None
    times = {"startTime": done.start_time, "completeTime": done.complete_time}
    if done.fault_code:
        change: dict[str, Any] = {
            "status": TaskStatus.FAULTED,
            "fault_code": str(done.fault_code),
            "fault_string": done.fault_string,
            "fault_detail": {"transferComplete": times},
            "finished": now,
        }
    else:
        change = {"result": {**(task.result or {}), "transferComplete": times}}
    row = conn.execute(update(tasks).where(*this).values(**change).returning(*tasks.c)).one()
    return TaskRow(**row._mapping)


def _add_lacks(conn: Connection, device_id: str, lacks: frozenset[str]) -> None:
    row = conn.execute(
        select(devices.c.lacks).where(devices.c.id == device_id).with_for_update()
    ).first()
    if row is None:
        raise UnknownDeviceError(device_id, "remember what it cannot do")
    known = set(row.lacks or ())
    if not lacks <= known:
        conn.execute(
            update(devices).where(devices.c.id == device_id).values(lacks=sorted(known | lacks))
        )


def _record_stun_outcome(
    conn: Connection, username: str, outcome: str, source: str, since: datetime
) -> str | None:
    row = _first(conn, select(devices.c.id).where(devices.c.stun_username == username))
    if row is None:
        return None
    conn.execute(
        update(devices)
        .where(devices.c.id == row.id)
        .values(stun_outcome=outcome, stun_source=source, stun_since=since)
    )
    return str(row.id)


def _first_wins(
    conn: Connection, stmt: Insert, row: dict[str, Any], key: Column[Any], value: Column[Any]
) -> str:
    """Insert `row` unless its key is stored already (`stmt` does nothing then); return the
    stored value, which the first writer on the database chose."""
    conn.execute(stmt, row)
    return str(conn.execute(select(value).where(key == row[key.key])).scalar_one())


def _end_session(conn: Connection, session_id: int, outcome: str, now: datetime) -> None:
    conn.execute(statements.END_SESSION, _ended(session_id, outcome, now))


def _ended(session_id: int, outcome: str, now: datetime) -> dict[str, Any]:
    """END_SESSION's parameters."""
    return {"session_id": session_id, "ended_at": now, "session_outcome": outcome}


def _claim_task(conn: Connection, device_id: str, session_id: int, now: datetime) -> TaskRow | None:
    row = conn.execute(statements.CLAIM_TASK, _claim(device_id, session_id, now)).first()
    return None if row is None else TaskRow(**row._mapping)


def _claim(device_id: str, session_id: int, now: datetime) -> dict[str, Any]:
    """CLAIM_TASK's parameters: tasks waiting out a retry back-off until after *now* stay."""
    return {"claiming_device": device_id, "claiming_session": session_id, "claiming_at": now}


def _finish_task(conn: Connection, done: TaskResult, session_id: int, now: datetime) -> None:
    conn.execute(statements.FINISH_TASK, _finished(done, session_id, now))


def _finished(done: TaskResult, session_id: int, now: datetime) -> dict[str, Any]:
    """FINISH_TASK's parameters."""
    if done.status not in (TaskStatus.DONE, TaskStatus.FAULTED):
        raise ValueError(
            f"task {done.task_id} can finish as {TaskStatus.DONE.value!r} or "
            f"{TaskStatus.FAULTED.value!r} only, not {done.status!r}; to retry it, use "
            "retry_running"
        )
    return {
        "finished_task": done.task_id,
        "finishing_session": session_id,
        "final_status": done.status,
        "finished_at": now,
        "task_result": done.result,
        "task_fault_code": done.fault_code,
        "task_fault_string": done.fault_string,
        "task_fault_detail": done.fault_detail,
    }


def _delete_parameters_under(conn: Connection, device_id: str, prefix: str) -> int:
    return conn.execute(
        delete(parameters).where(
            parameters.c.device_id == device_id,
            parameters.c.path.startswith(prefix, autoescape=True),
        )
    ).rowcount


def _parameters_of(
    conn: Connection, device_ids: Sequence[str], prefixes: Sequence[str]
) -> dict[str, list[StoredParam]]:
    found: dict[str, list[StoredParam]] = {device_id: [] for device_id in device_ids}
    ids = list(found)
    for start in range(0, len(ids), _IN_CHUNK):
        stmt = select(
            parameters.c.device_id,
            parameters.c.path,
            parameters.c.value,
            parameters.c.type,
            parameters.c.writable,
            parameters.c.timestamp,
        ).where(parameters.c.device_id.in_(ids[start : start + _IN_CHUNK]))
        if prefixes:
            stmt = stmt.where(
                or_(*(parameters.c.path.startswith(p, autoescape=True) for p in prefixes))
            )
        for row in conn.execute(stmt.order_by(parameters.c.device_id, parameters.c.path)):
            found[row.device_id].append(
                StoredParam(row.path, row.value, row.type, row.writable, row.timestamp)
            )
    return found


def _parameter_rows(
    device_id: str, params: Sequence[ParamValue], now: datetime
) -> list[dict[str, Any]]:
    # One row per path, the last given winning: PostgreSQL refuses an upsert batch that touches
    # a row twice.
    latest = {p.path: p for p in params}
    rows = [
        {
            "device_id": device_id,
            "path": p.path,
            "value": p.value,
            "type": p.type,
            "writable": p.writable,
            "timestamp": now,
        }
        for p in latest.values()
    ]
    check_parameters(rows)
    return rows


@contextmanager
def _known_device(device_id: str, action: str) -> Iterator[None]:
    """Turn the foreign-key failure of a write for a missing device into UnknownDeviceError."""
    try:
        yield
    except (IntegrityError, sqlite3.IntegrityError, asyncpg.IntegrityConstraintViolationError) as e:
        # SQLAlchemy's error, or the driver's own from the hot path (sqlite_hot, pg_hot).
        raise UnknownDeviceError(device_id, action) from e
