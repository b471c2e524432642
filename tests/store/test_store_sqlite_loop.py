"""SQLite's per-session transactions run on the event loop unless another connection is writing;
then they wait in a worker thread and commit all the same."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from knock.store import Store
from knock.store.rows import InformRecord, ParamValue

from .helpers import DEVICE


def _inform(serial: str) -> InformRecord:
    return InformRecord(
        device_id=f"00D09E-HG8245-{serial}",
        manufacturer="Huawei",
        oui="00D09E",
        product_class="HG8245",
        serial_number=serial,
        events=["2 PERIODIC"],
        parameters=[ParamValue("Device.DeviceInfo.UpTime", "42", "xsd:unsignedInt")],
        cwmp_version="urn:dslforum-org:cwmp-1-0",
        now=datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC),
    )


async def test_inform_waits_for_another_writer_then_commits(tmp_path: Path) -> None:
    path = tmp_path / "knock.db"
    store = await Store.open(f"sqlite:///{path}")
    other = sqlite3.connect(path, isolation_level=None)
    try:
        await store.record_inform(_inform("SN0000"))  # the loop's connection is open now
        other.execute("BEGIN IMMEDIATE")  # holds SQLite's write lock
        pending = asyncio.ensure_future(store.record_inform(_inform("SN0001")))
        for _ in range(20):
            await asyncio.sleep(0)
        assert not pending.done()  # neither failed with "database is locked" nor got past
        other.execute("COMMIT")
        session_id = await pending
        sessions = await store.list_sessions(DEVICE)
        assert [(s.id, s.events, s.ended) for s in sessions] == [(session_id, ["2 PERIODIC"], None)]
        params = await store.get_parameters([DEVICE])
        assert [(p.path, p.value) for p in params[DEVICE]] == [("Device.DeviceInfo.UpTime", "42")]
    finally:
        other.close()
        await store.close()


async def test_wal_file_stays_bounded(tmp_path: Path) -> None:
    """SQLite's automatic checkpoint still lets the WAL start over (a checkpoint run in a thread
    alongside the loop's commits did not: the file grew with every session)."""
    path = tmp_path / "knock.db"
    store = await Store.open(f"sqlite:///{path}")
    try:
        for i in range(600):
            await store.record_inform(_inform(f"SN{i:04d}"))
        # 600 Informs write about 3,300 pages of 4 KiB; SQLite's checkpoint comes at 1,000.
        assert (tmp_path / "knock.db-wal").stat().st_size < 6 * 1024 * 1024
    finally:
        await store.close()
