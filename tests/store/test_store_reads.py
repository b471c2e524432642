"""The NBI's reads are bounded: stopped past their time, stopped at once at shutdown, and never in
the way of the ACS's sessions, on every driver. The read here never ends by itself (a recursive
count without a bound), so only the bound can stop it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime

import pytest
from sqlalchemy import Connection

from knock.store import Store
from knock.store.database import ReadLimits
from knock.store.errors import QueryTimeoutError, ReadsStoppedError
from knock.store.rows import InformRecord

from .helpers import DEVICE, OTHER

ENDLESS = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"


def endless(conn: Connection) -> int:
    return int(conn.exec_driver_sql(ENDLESS).scalar_one())


@pytest.fixture
async def bounded(db_url: str) -> AsyncIterator[Store]:
    """A store whose NBI reads may run 0.5 s, one at a time."""
    opened = await Store.open(db_url, reads=ReadLimits(timeout_s=0.5, slots=1))
    yield opened
    await opened.close()


async def test_a_read_past_its_time_is_stopped(bounded: Store) -> None:
    with pytest.raises(QueryTimeoutError, match=r"longer than 0\.5 s .* nbi_query_timeout"):
        await bounded._db.read(endless)
    # The connection is fit for the next read.
    assert await bounded.find_devices(None) == []


def _inform(device_id: str, now: datetime) -> InformRecord:
    oui, product_class, serial = device_id.split("-")
    return InformRecord(
        device_id, "Huawei", oui, product_class, serial, ["1 BOOT"], [], "urn:x", now
    )


async def test_sessions_go_on_while_reads_hold_every_slot(bounded: Store, now: datetime) -> None:
    reads = [asyncio.ensure_future(bounded._db.read(endless)) for _ in range(3)]
    # Informs, a task queued and claimed while the reads run (one in its slot, two waiting).
    session = await bounded.record_inform(_inform(DEVICE, now))
    await bounded.record_inform(_inform(OTHER, now))
    await bounded.add_task(DEVICE, "reboot", {"name": "reboot"}, now)
    assert await bounded.claim_next_task(DEVICE, session, now) is not None
    assert not any(read.done() for read in reads)
    for read in reads:
        with pytest.raises(QueryTimeoutError):
            await read


async def test_stop_reads_ends_them_at_once(db_url: str) -> None:
    store = await Store.open(db_url, reads=ReadLimits(timeout_s=3600, slots=1))
    try:
        reads = [asyncio.ensure_future(store._db.read(endless)) for _ in range(2)]
        await asyncio.sleep(0)  # both started: one running, one waiting for the slot
        store.stop_reads()
        for read in reads:
            with pytest.raises(ReadsStoppedError, match="shutting down"):
                await read
        with pytest.raises(ReadsStoppedError):
            await store.find_devices(None)
    finally:
        await store.close()
