"""What comes back out: times in UTC, and everything after a restart."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta, timezone

import asyncpg
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from knock.store import Store
from knock.store.engine import open_database
from knock.store.rows import InformRecord, ParamValue
from knock.vocab import CrMethod, Event
from pg_server import emptied

from .helpers import DEVICE, Record

PARIS_SUMMER = timezone(timedelta(hours=2))


async def test_times_come_back_aware_in_utc(store: Store, record: Record) -> None:
    local = datetime(2025, 7, 1, 14, 0, tzinfo=PARIS_SUMMER)
    session_id = await record(
        events=[Event.BOOT], params=[ParamValue("A.B", "1", "xsd:int")], at=local
    )
    await store.end_session(session_id, "ok", local)
    await store.add_task(DEVICE, "reboot", {}, local)
    await store.add_cr_attempt(DEVICE, CrMethod.HTTP, local)

    device = await store.get_device(DEVICE)
    assert device is not None
    (param,) = (await store.get_parameters([DEVICE]))[DEVICE]
    (session,) = await store.list_sessions(DEVICE)
    (task,) = await store.find_tasks(None)
    (attempt,) = await store.list_cr_attempts(DEVICE)
    times = [
        device.registered,
        device.last_inform,
        device.last_boot,
        param.timestamp,
        session.started,
        session.ended,
        task.created,
        attempt.started,
    ]
    expected = datetime(2025, 7, 1, 12, 0, tzinfo=UTC)
    for t in times:
        assert t == expected
        assert t is not None and t.utcoffset() == timedelta(0)


async def test_reopened_store_sees_everything(
    store: Store, record: Record, db_url: str, now: datetime
) -> None:
    session_id = await record(events=[Event.BOOT], params=[ParamValue("A.B", "1", "xsd:int")])
    await store.end_session(session_id, "ok", now)
    task = await store.add_task(DEVICE, "reboot", {"name": "reboot"}, now)
    attempt_id = await store.add_cr_attempt(DEVICE, CrMethod.HTTP, now)
    before = (
        await store.get_device(DEVICE),
        await store.get_parameters([DEVICE]),
        await store.list_sessions(DEVICE),
        await store.list_cr_attempts(DEVICE),
    )
    await store.close()

    reopened = await Store.open(db_url)
    try:
        after = (
            await reopened.get_device(DEVICE),
            await reopened.get_parameters([DEVICE]),
            await reopened.list_sessions(DEVICE),
            await reopened.list_cr_attempts(DEVICE),
        )
        assert after == before
        assert await reopened.get_task(task.id) == task
        assert after[3][0].id == attempt_id
    finally:
        await reopened.close()


_TERMINATE = (
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
)


def _inform(device_id: str) -> InformRecord:
    return InformRecord(device_id, "K", "00D09E", "Box", "SN", ["2 PERIODIC"], [], "", _NOW)


_NOW = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)


async def test_after_postgresql_drops_every_connection_one_transaction_fails_at_most(
    postgres_url: str,
) -> None:
    """The pool sends no ping before each transaction: a dropped connection costs the
    transaction that finds it, and the next ones get fresh connections."""
    store = await Store.open(await emptied(postgres_url))
    killer = open_database(postgres_url)
    try:
        await asyncio.gather(*(store.get_device("x") for _ in range(5)))  # several pooled
        await killer.run(lambda conn: conn.execute(text(_TERMINATE)))
        failures = 0
        for _ in range(4):
            try:
                assert await store.get_device("x") is None
            except DBAPIError:
                failures += 1
        assert failures <= 1
        assert await store.get_device("x") is None
        # The same for the per-session transactions, which run on asyncpg itself.
        await asyncio.gather(*(store.record_inform(_inform(f"d{n}")) for n in range(5)))
        await killer.run(lambda conn: conn.execute(text(_TERMINATE)))
        opened = []
        for n in range(4):
            with contextlib.suppress(
                # What asyncpg raises on a connection it finds closed (the last: the rollback
                # after the failure, on the closed connection).
                asyncpg.PostgresConnectionError,
                asyncpg.InterfaceError,
                asyncpg.InternalClientError,
            ):
                opened.append(await store.record_inform(_inform(f"d{n}")))
        assert len(opened) >= 3
        [latest, *_] = await store.list_sessions("d3")
        assert latest.id == opened[-1]
    finally:
        await killer.close()
        await store.close()
