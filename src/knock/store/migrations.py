"""Bring a database's schema to the version this code was written for.

`schema_version` holds one row: the version of the last step applied. The steps below run in
order, in one transaction, so a failed upgrade leaves the database as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import (
    Connection,
    DefaultClause,
    Table,
    bindparam,
    delete,
    func,
    insert,
    inspect,
    select,
    text,
    update,
)

from knock.store import schema
from knock.store.database import Database
from knock.store.errors import SchemaTooNewError
from knock.store.object_ids import new_object_id


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    summary: str
    apply: Callable[[Connection], None]


def _create_tables(conn: Connection) -> None:
    schema.metadata.create_all(conn)


# Version 1 builds every table from schema.metadata, which always describes the newest schema,
# so a new database goes straight to LATEST. Whoever changes schema.py appends a step that
# brings existing databases to the same shape.
def _add_cr_credentials(conn: Connection) -> None:
    for column in ("cr_username", "cr_password"):
        conn.execute(text(f"ALTER TABLE devices ADD COLUMN {column} VARCHAR(256)"))


def _add_stun(conn: Connection) -> None:
    conn.execute(text("ALTER TABLE devices ADD COLUMN stun_username VARCHAR(256)"))
    conn.execute(text("ALTER TABLE devices ADD COLUMN stun_password VARCHAR(256)"))
    # SQLite cannot add a UNIQUE column; a unique index is the same constraint on both databases.
    conn.execute(text("CREATE UNIQUE INDEX uq_devices_stun_username ON devices (stun_username)"))
    schema.stun_bindings.create(conn)


def _add_xmpp_accounts(conn: Connection) -> None:
    schema.xmpp_accounts.create(conn)


def _add_shared_secrets(conn: Connection) -> None:
    schema.shared_secrets.create(conn)


def _index_cr_attempts_started(conn: Connection) -> None:
    # Inside the migration's one transaction, so PostgreSQL builds it without CONCURRENTLY and
    # blocks writes to cr_attempts meanwhile: on a large table, upgrade in a quiet hour.
    (index,) = (i for i in schema.cr_attempts.indexes if i.name == "ix_cr_attempts_started")
    index.create(conn)


def _index_open_sessions(conn: Connection) -> None:
    # Like migration 6's, it blocks writes to sessions while PostgreSQL builds it; it reads only
    # the open sessions' rows into the index, so the build is short.
    (index,) = (i for i in schema.sessions.indexes if i.name == "ix_sessions_open")
    index.create(conn)


def _add_column(conn: Connection, table: Table, name: str) -> None:
    """ALTER TABLE ADD COLUMN of *table*'s column *name* as schema.py describes it."""
    column = table.c[name]
    spec = f"{column.type.compile(conn.dialect)}"
    if column.server_default is not None:
        default = column.server_default
        assert isinstance(default, DefaultClause) and isinstance(default.arg, str)
        spec += f" DEFAULT {default.arg}"
    if not column.nullable:
        spec += " NOT NULL"
    conn.execute(text(f"ALTER TABLE {table.name} ADD COLUMN {name} {spec}"))


def _add_lacks_and_task_retries(conn: Connection) -> None:
    _add_column(conn, schema.devices, "lacks")
    _add_column(conn, schema.tasks, "attempts")
    _add_column(conn, schema.tasks, "not_before")


def _add_device_outcomes(conn: Connection) -> None:
    for name in (
        "stun_outcome",
        "stun_source",
        "stun_since",
        "xmpp_setup",
        "xmpp_setup_detail",
        "xmpp_setup_at",
    ):
        _add_column(conn, schema.devices, name)


def _add_xmpp_login(conn: Connection) -> None:
    for name in (
        "xmpp_login_since",
        "xmpp_login_outcome",
        "xmpp_login_detail",
        "xmpp_login_source",
    ):
        _add_column(conn, schema.devices, name)
    # Step 4 made xmpp_accounts from the newest schema: on a database older than step 4 the
    # column is there already.
    if "device_id" not in {c["name"] for c in inspect(conn).get_columns("xmpp_accounts")}:
        conn.execute(text("ALTER TABLE xmpp_accounts ADD COLUMN device_id VARCHAR(512)"))


def _add_cwmp_user_devices(conn: Connection) -> None:
    schema.cwmp_user_devices.create(conn)


def _add_task_idempotency_keys(conn: Connection) -> None:
    _add_column(conn, schema.tasks, "idempotency_key")
    (index,) = (i for i in schema.tasks.indexes if i.name == "uq_tasks_idempotency_key")
    index.create(conn)


def _add_digest_nonces(conn: Connection) -> None:
    schema.digest_nonces.create(conn)


def _add_files(conn: Connection) -> None:
    schema.files.create(conn)
    schema.file_chunks.create(conn)


def _add_tags_and_presets(conn: Connection) -> None:
    schema.device_tags.create(conn)
    schema.presets.create(conn)


def _add_task_public_ids(conn: Connection) -> None:
    _add_column(conn, schema.tasks, "public_id")
    stored = conn.execute(select(schema.tasks.c.id, schema.tasks.c.created)).all()
    if stored:  # one statement run for every row, as the drivers batch it
        conn.execute(
            update(schema.tasks)
            .where(schema.tasks.c.id == bindparam("task"))
            .values(public_id=bindparam("made")),
            [{"task": task_id, "made": new_object_id(created)} for task_id, created in stored],
        )
    (index,) = (i for i in schema.tasks.indexes if i.name == "uq_tasks_public_id")
    index.create(conn)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "create the tables", _create_tables),
    Migration(2, "connection-request credentials per device", _add_cr_credentials),
    Migration(3, "STUN credentials per device and the NAT bindings STUN learns", _add_stun),
    Migration(4, "accounts of the built-in XMPP server", _add_xmpp_accounts),
    Migration(5, "secrets the ACS processes on one database share", _add_shared_secrets),
    Migration(6, "an index for the fleet view's time window", _index_cr_attempts_started),
    Migration(
        7,
        "what each device cannot do; retries and back-off of tasks whose session died",
        _add_lacks_and_task_retries,
    ),
    Migration(8, "each device's last STUN outcome and XMPP set-up", _add_device_outcomes),
    Migration(9, "each device's last XMPP login and its account's device", _add_xmpp_login),
    Migration(10, "the device a serial-number CWMP username speaks for", _add_cwmp_user_devices),
    Migration(11, "task idempotency keys: a retried POST adds no task", _add_task_idempotency_keys),
    Migration(12, "Digest nonce counts the ACS processes share", _add_digest_nonces),
    Migration(13, "files CPEs download, stored in chunks", _add_files),
    Migration(14, "device tags and presets", _add_tags_and_presets),
    Migration(15, "task ids that are never reused, shaped as GenieACS's", _add_task_public_ids),
    Migration(16, "an index of the open sessions, which every Inform ends", _index_open_sessions),
)
LATEST = MIGRATIONS[-1].version

# Any fixed number: PostgreSQL advisory locks are named by integers.
_PG_MIGRATION_LOCK = 0x4B4E4F43


async def migrate(db: Database) -> int:
    """Apply the steps the database lacks; return the version it is at afterwards."""
    return await db.run(_upgrade)


def _upgrade(conn: Connection) -> int:
    _lock_against_other_migrators(conn)
    current = _stored_version(conn)
    if current > LATEST:
        raise SchemaTooNewError(current, LATEST)
    if current == LATEST:
        return current
    for step in MIGRATIONS[:1] if current == 0 else MIGRATIONS[current:]:
        step.apply(conn)
    conn.execute(delete(schema.schema_version))
    conn.execute(insert(schema.schema_version).values(version=LATEST))
    return LATEST


def _lock_against_other_migrators(conn: Connection) -> None:
    """Two processes starting on one database must not both create its tables."""
    if conn.dialect.name == "sqlite":
        # Take the write lock now: a deferred transaction that reads first and writes later
        # fails at once, without waiting, when another writer got in between.
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    elif conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(_PG_MIGRATION_LOCK)))


def _stored_version(conn: Connection) -> int:
    if not inspect(conn).has_table(schema.schema_version.name):
        return 0
    version = conn.execute(select(func.max(schema.schema_version.c.version))).scalar()
    return int(version or 0)
