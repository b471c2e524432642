from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import (
    Column,
    Connection,
    ForeignKey,
    MetaData,
    Table,
    func,
    insert,
    inspect,
    make_url,
    select,
    update,
)

from knock.store import Store, migrations
from knock.store.engine import driver_url, open_database
from knock.store.errors import SchemaTooNewError
from knock.store.migrations import LATEST, MIGRATIONS, Migration
from knock.store.rows import InformRecord
from knock.store.schema import devices, metadata, schema_version, tasks

T = TypeVar("T")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///relative.db", "sqlite+pysqlite:///relative.db"),
        ("sqlite:////abs/path.db", "sqlite+pysqlite:////abs/path.db"),
        ("sqlite:///:memory:", "sqlite+pysqlite:///:memory:"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("postgresql://u:pw@db.example/knock", "postgresql+asyncpg://u:pw@db.example/knock"),
        ("postgres://u:pw@db.example/knock", "postgresql+asyncpg://u:pw@db.example/knock"),
    ],
)
def test_urls_get_the_store_drivers(url: str, expected: str) -> None:
    assert driver_url(url) == make_url(expected)


@pytest.mark.parametrize("url", ["mysql://root:hunter2@db/knock", "no url at all"])
def test_unsupported_url_names_the_working_ones_without_the_password(url: str) -> None:
    with pytest.raises(ValueError, match=r"sqlite:///.*postgresql://") as caught:
        driver_url(url)
    assert "hunter2" not in str(caught.value)


async def test_open_refuses_an_unsupported_url() -> None:
    with pytest.raises(ValueError, match="not supported"):
        await Store.open("oracle://db/knock")


async def test_memory_database_keeps_its_data_between_calls() -> None:
    store = await Store.open("sqlite:///:memory:")
    try:
        await store.record_inform(_inform("dev-1"))
        assert (await store.get_device("dev-1")) is not None
    finally:
        await store.close()


async def test_relative_path_is_taken_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = await Store.open("sqlite:///relative.db")
    await store.close()
    assert (tmp_path / "relative.db").exists()


async def test_sqlite_file_is_in_wal_mode(tmp_path: Path) -> None:
    store = await Store.open(f"sqlite:///{tmp_path / 'k.db'}")
    await store.close()
    with sqlite3.connect(tmp_path / "k.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_migration_versions_count_up_from_one() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))


async def test_fresh_database_gets_the_latest_version(db_url: str) -> None:
    await (await Store.open(db_url)).close()
    assert await _versions(db_url) == [LATEST]


async def test_reopening_changes_nothing(db_url: str) -> None:
    store = await Store.open(db_url)
    await store.record_inform(_inform("dev-1"))
    await store.close()

    store = await Store.open(db_url)
    try:
        assert await _versions(db_url) == [LATEST]
        assert (await store.get_device("dev-1")) is not None
    finally:
        await store.close()


async def test_database_newer_than_the_code_is_refused(db_url: str) -> None:
    await (await Store.open(db_url)).close()
    await _run(db_url, lambda conn: conn.execute(update(schema_version).values(version=999)))

    with pytest.raises(SchemaTooNewError, match=r"version 999.*Upgrade Knock") as caught:
        await Store.open(db_url)
    assert (caught.value.found, caught.value.latest) == (999, LATEST)
    assert await _versions(db_url) == [999]


async def test_failed_step_leaves_the_database_as_it_was(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await (await Store.open(db_url)).close()

    def half_done(conn: Connection) -> None:
        conn.execute(
            insert(devices).values(id="written-by-a-failed-step", registered=datetime.now(UTC))
        )
        raise RuntimeError("step failed")

    later = Migration(LATEST + 1, "fails halfway", half_done)
    monkeypatch.setattr(migrations, "MIGRATIONS", (*MIGRATIONS, later))
    monkeypatch.setattr(migrations, "LATEST", later.version)

    with pytest.raises(RuntimeError, match="step failed"):
        await Store.open(db_url)
    assert await _versions(db_url) == [LATEST]
    count = await _run(db_url, lambda conn: conn.execute(select(func.count(devices.c.id))).scalar())
    assert count == 0


async def _versions(db_url: str) -> list[int]:
    return await _run(
        db_url, lambda conn: list(conn.execute(select(schema_version.c.version)).scalars())
    )


async def _run(db_url: str, fn: Callable[[Connection], T]) -> T:
    """`fn` in a transaction on the database behind `db_url`, without the Store."""
    db = open_database(db_url)
    try:
        return await db.run(fn)
    finally:
        await db.close()


def _session_indexes(conn: Connection) -> set[str]:
    return {str(index["name"]) for index in inspect(conn).get_indexes("sessions")}


def _inform(device_id: str) -> InformRecord:
    return InformRecord(device_id, "M", "OUI", "PC", "SN", [], [], "", datetime.now(UTC))


def _columns_but(table: Table, later: tuple[str, ...]) -> list[Column[Any]]:
    """Copies of *table*'s columns, without those later migrations add."""
    return [
        Column(
            c.name,
            c.type,
            *(ForeignKey(key.target_fullname) for key in c.foreign_keys),
            primary_key=c.primary_key,
            nullable=c.nullable,
        )
        for c in table.columns
        if c.name not in later
    ]


LATER_INDEXES = (
    *("ix_cr_attempts_started", "uq_tasks_idempotency_key"),  # migrations 6, 11
    "uq_tasks_public_id",  # migration 15
    "ix_sessions_open",  # migration 16
)
LATER_TABLES = (
    *("devices", "tasks"),  # changed by later migrations
    *("stun_bindings", "xmpp_accounts", "shared_secrets"),  # migrations 3, 4, 5
    *("cwmp_user_devices", "digest_nonces"),  # migrations 10, 12
    *("files", "file_chunks", "device_tags", "presets"),  # migrations 13, 14
)
LATER_DEVICE_COLUMNS = (
    *("cr_username", "cr_password", "stun_username", "stun_password"),  # migrations 2 and 3
    "lacks",  # migration 7
    *("stun_outcome", "stun_source", "stun_since"),  # migration 8
    *("xmpp_setup", "xmpp_setup_detail", "xmpp_setup_at"),
    *("xmpp_login_since", "xmpp_login_outcome", "xmpp_login_detail", "xmpp_login_source"),  # 9
)
LATER_TASK_COLUMNS = (
    *("attempts", "not_before"),  # migration 7
    "idempotency_key",  # migration 11
    "public_id",  # migration 15
)


async def test_a_version_1_database_is_migrated_and_keeps_its_rows(
    db_url: str,
) -> None:
    def build_version_1(conn: Connection) -> None:
        old = MetaData()
        for table in metadata.sorted_tables:
            # The tables later steps add or change.
            if table.name not in LATER_TABLES:
                copied = table.to_metadata(old)
                copied.indexes = {i for i in copied.indexes if i.name not in LATER_INDEXES}
        for table, later in (
            (devices, LATER_DEVICE_COLUMNS),
            (tasks, LATER_TASK_COLUMNS),
        ):
            Table(table.name, old, *_columns_but(table, later))
        old.create_all(conn)
        conn.execute(insert(old.tables["schema_version"]).values(version=1))
        conn.execute(
            insert(old.tables["devices"]).values(
                id="OLD-1",
                manufacturer="m",
                oui="o",
                product_class="p",
                serial_number="s",
                registered=datetime.now(UTC),
            )
        )
        conn.execute(
            insert(old.tables["tasks"]),
            [
                {
                    "device_id": "OLD-1",
                    "name": name,
                    "spec": {},
                    "status": "queued",
                    "created": datetime.now(UTC),
                }
                for name in ("queued-before", "also-before")
            ],
        )

    await _run(db_url, build_version_1)
    assert "ix_sessions_open" not in await _run(db_url, _session_indexes)
    store = await Store.open(db_url)
    try:
        await store.set_cr_credentials("OLD-1", "cr-user", "cr-pass")
        target = await store.get_cr_target("OLD-1")
        assert await store.device_lacks("OLD-1") == frozenset()
        await store.add_device_lacks("OLD-1", ["partial-path-values"])
        assert await store.device_lacks("OLD-1") == {"partial-path-values"}
        task = await store.add_task("OLD-1", "reboot", {}, datetime.now(UTC))
        assert (task.attempts, task.not_before) == (0, None)
        [old_task] = await store.find_tasks(tasks.c.name == "queued-before")
        assert (old_task.attempts, old_task.not_before, old_task.idempotency_key) == (0, None, None)
        assert old_task.public_id is not None and re.fullmatch("[0-9a-f]{24}", old_task.public_id)
        public_ids = {t.public_id for t in await store.find_tasks(None)}
        assert len(public_ids) == 3 and None not in public_ids  # two migrated, one new
        keyed = await store.add_task("OLD-1", "reboot", {}, datetime.now(UTC), "key-1")
        assert await store.add_task("OLD-1", "reboot", {}, datetime.now(UTC), "key-1") == keyed
        assert await store.bind_cwmp_user("SN-1", "OLD-1") == "OLD-1"
        assert await store.bind_cwmp_user("SN-1", "OTHER") == "OLD-1"
        assert await store.advance_digest_nonce("n", 1, 1)
        assert not await store.advance_digest_nonce("n", 1, 1)
        await store.record_xmpp_setup("OLD-1", "failed", "9005", datetime.now(UTC))
        await store.record_xmpp_login("OLD-1", datetime.now(UTC), "ok", "", "192.0.2.1")
        device = await store.get_device("OLD-1")
    finally:
        await store.close()
    assert await _versions(db_url) == [LATEST]
    assert "ix_sessions_open" in await _run(db_url, _session_indexes)
    assert target is not None and (target.username, target.password) == ("cr-user", "cr-pass")
    assert device is not None and (device.xmpp_setup, device.xmpp_setup_detail) == (
        "failed",
        "9005",
    )
    assert device.xmpp_login_source == "192.0.2.1"  # migration 9
    indexes = await _run(db_url, lambda conn: inspect(conn).get_indexes("cr_attempts"))
    assert {i["name"]: i["column_names"] for i in indexes}["ix_cr_attempts_started"] == [
        "started",
        "method",
        "outcome",
        "ended",
    ]
    # Every table and column schema.py describes, whichever migration added it.
    assert await _run(db_url, _tables_and_columns) == {
        table.name: set(table.c.keys()) for table in metadata.sorted_tables
    }
    indexes = await _run(db_url, lambda conn: inspect(conn).get_indexes("tasks"))
    by_name = {i["name"]: (i["column_names"], bool(i["unique"])) for i in indexes}
    assert by_name["uq_tasks_idempotency_key"] == (["device_id", "idempotency_key"], True)
    assert by_name["uq_tasks_public_id"] == (["public_id"], True)


def _tables_and_columns(conn: Connection) -> dict[str, set[str]]:
    found = inspect(conn)
    return {name: {c["name"] for c in found.get_columns(name)} for name in found.get_table_names()}
