"""Which driver and connection pool a store URL gets, and how SQLite connections start."""

from __future__ import annotations

from typing import Any

from sqlalchemy import URL, Engine, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool, QueuePool

from knock.store import regex
from knock.store.database import AsyncDatabase, Database, ReadLimits, ThreadedDatabase

SUPPORTED_URLS = (
    "sqlite:///relative/path.db, sqlite:////absolute/path.db, sqlite:///:memory:, "
    "postgresql://user:password@host/dbname (or postgres://...)"
)

# "sqlite+aiosqlite" runs SQLite the way PostgreSQL runs, on an async driver, so that the tests
# cover that path without a PostgreSQL server; for service it is the slower choice (database.py).
_DRIVERS = {
    "sqlite": "sqlite+pysqlite",
    "sqlite+pysqlite": "sqlite+pysqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}

# Writers on one SQLite file queue for its lock; waiting this long beats failing a session at once.
SQLITE_BUSY_TIMEOUT_MS = 10_000

_SQLITE_PRAGMAS = (
    # Off by default in every new SQLite connection; ON DELETE CASCADE needs it.
    "PRAGMA foreign_keys = ON",
    # Readers (the NBI, the dashboard) then never wait for the ACS's writes, nor it for them.
    "PRAGMA journal_mode = WAL",
    # In WAL mode this cannot corrupt the file; it saves an fsync per commit and risks only the
    # last few commits on power loss, which the devices' next Informs restore.
    "PRAGMA synchronous = NORMAL",
    f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}",
    # LIKE as PostgreSQL has it: case-sensitive, like parameter paths; it also lets
    # "path LIKE 'prefix%'" use the (device_id, path) key.
    "PRAGMA case_sensitive_like = ON",
)

# SQLite writes one transaction at a time however many connections there are (measured: 1 to 8
# give the Inform path the same throughput); the spare ones let the NBI read alongside.
_SQLITE_POOL_SIZE = 4
# Connections beyond the pool size are closed when returned and opened again at the next burst
# (py-spy: 3% of the ACS's CPU went to connecting at 100 sessions in flight), so the pools keep
# most of what a busy process uses. The sessions' calls run on a pool of their own
# (database.HOT_POOL_SIZE, 15); this one serves the rest (the NBI's writes, a session's rarer
# calls). Each ACS process needs up to 28 server connections with one for its announcement
# relay and ReadLimits.slots (2) for the NBI's reads: PostgreSQL's default max_connections
# (100) serves three processes.
_POSTGRES_POOL_SIZE = 5
_POSTGRES_MAX_OVERFLOW = 5
# Every engine is made with hide_parameters=True: a failed statement's error would otherwise
# carry its bound values ("[parameters: ...]"), credentials among them, into the log.


def driver_url(url: str) -> URL:
    """`url` with the driver the store uses for it; ValueError names the accepted forms."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        # The text may hold a password, so it is not repeated.
        raise ValueError(f"the store URL cannot be parsed; use one of: {SUPPORTED_URLS}") from None
    driver = _DRIVERS.get(parsed.drivername)
    if driver is None:
        raise ValueError(
            f"store URLs starting {parsed.drivername}:// are not supported; "
            f"use one of: {SUPPORTED_URLS}"
        )
    return parsed.set(drivername=driver)


def open_database(url: str, reads: ReadLimits | None = None) -> Database:
    target = driver_url(url)
    reads = reads or ReadLimits()
    if target.get_backend_name() == "sqlite":
        return _sqlite(target, reads)
    return AsyncDatabase(
        create_async_engine(
            target,
            pool_size=_POSTGRES_POOL_SIZE,
            max_overflow=_POSTGRES_MAX_OVERFLOW,
            # No ping before each transaction: it was an extra round trip in every one (12% of
            # the ACS's CPU per session, py-spy). A dropped connection fails the transaction
            # that finds it, and SQLAlchemy then replaces every pooled connection older than
            # the failure, so after a server restart one transaction fails (its CPE retries).
            pool_pre_ping=False,
            hide_parameters=True,
        ),
        reads,
        create_async_engine(
            target,
            pool_size=reads.slots,
            max_overflow=0,
            pool_timeout=reads.timeout_s,
            hide_parameters=True,
        ),
    )


def _sqlite(url: URL, reads: ReadLimits) -> Database:
    # Each connection to ":memory:" would open a new, empty database: the one connection is kept
    # for good and lent to one transaction at a time, reads included.
    memory = url.database in (None, "", ":memory:")
    size = 1 if memory else _SQLITE_POOL_SIZE
    if url.get_driver_name() == "aiosqlite":
        async_engine = _sqlite_async_engine(url, size)
        return AsyncDatabase(
            async_engine,
            reads,
            async_engine if memory else _sqlite_async_engine(url, reads.slots, reads.timeout_s),
        )
    read_engine = None if memory else _sqlite_engine(url, reads.slots, reads.timeout_s)
    return ThreadedDatabase(
        _sqlite_engine(url, size),
        workers=size,
        loop_first=size > 1,
        reads=reads,
        read_engine=read_engine,
    )


def _sqlite_engine(url: URL, size: int, pool_timeout: float = 30.0) -> Engine:
    # Connections move between the worker threads, one thread at a time.
    engine = create_engine(
        url,
        poolclass=QueuePool,
        pool_size=size,
        max_overflow=0,
        pool_timeout=pool_timeout,
        connect_args={"check_same_thread": False},
        hide_parameters=True,
    )
    event.listen(engine, "connect", configure_sqlite)
    return engine


def _sqlite_async_engine(url: URL, size: int, pool_timeout: float = 30.0) -> AsyncEngine:
    engine = create_async_engine(
        url,
        poolclass=AsyncAdaptedQueuePool,
        pool_size=size,
        max_overflow=0,
        pool_timeout=pool_timeout,
        hide_parameters=True,
    )
    event.listen(engine.sync_engine, "connect", configure_sqlite)
    return engine


def configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    """Every SQLite connection's set-up: pragmas, and the $regex matcher (knock.store.regex).
    An engine of one's own (tests) listens with it: `event.listen(e, "connect", ...)`."""
    cursor = dbapi_connection.cursor()
    for pragma in _SQLITE_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()
    dbapi_connection.create_function(
        regex.SQLITE_FUNCTION, 2, regex.sqlite_match, deterministic=True
    )
