"""Where the store's transactions run.

A transaction is a plain function of a SQLAlchemy `Connection`, run whole inside BEGIN ... COMMIT.
SQLite runs it in a worker thread on the standard sqlite3 driver: one hop off the event loop per
transaction, where aiosqlite makes several per statement (measured on the ACS's per-session path,
an Inform with 15 parameters, a task claim and the session's end: 1,800 sessions/s against 480).
Drivers that are async already (asyncpg; aiosqlite when asked for by name) run it on the loop.

The ACS's per-session transactions on a SQLite file (`run_dbapi`) are tried on the event loop
first, on a connection of its own that never waits for SQLite's write lock: one takes SQLite
50-60 us of CPU, less than the hop to a thread and back (the thread hop, its wake-ups and the
GIL passing between threads cost the ACS 0.2 ms of CPU per session: 0.9 -> 0.69 ms, py-spy and
bench/informs.py). When another connection holds the lock (the NBI writing in a worker thread),
the attempt fails at once and the transaction runs in a worker thread, which waits as before.
SQLite's automatic WAL checkpoint (every 1,000 pages, about 150 sessions) then runs on the loop
too, in the commit that crosses it; one run from a worker thread instead raced the loop's next
commits and never let the WAL file start over, which then grew without end.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

import asyncpg
from sqlalchemy import Connection, Engine
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine

from knock.store.errors import QueryTimeoutError, ReadsStoppedError
from knock.store.hot_pool import HotPool

P = ParamSpec("P")
T = TypeVar("T")

# SQLite calls the progress handler every this many virtual-machine steps (well under 1 ms).
_PROGRESS_STEPS = 10_000


@dataclass(frozen=True)
class ReadLimits:
    """How the NBI's reads are bounded (docs/security.md): each runs at most `timeout_s`
    seconds, and at most `slots` run at once, on connections of their own."""

    timeout_s: float = 10.0
    slots: int = 2


class Database(Protocol):
    @property
    def dialect_name(self) -> str: ...

    async def run(
        self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """`fn(connection, *args, **kwargs)` in one transaction: committed if it returns,
        rolled back if it raises."""
        ...

    async def run_statement(
        self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Like `run`, for an `fn` that executes one statement, which is atomic by itself."""
        ...

    async def run_dbapi(
        self, fn: Callable[Concatenate[DBAPIConnection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Like `run`, with `fn` given the DB-API connection, past SQLAlchemy's execution layer
        (knock.store.sqlite_hot says why)."""
        ...

    async def read(
        self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """`fn` as one of the NBI's reads: on connections apart from the ACS's (its sessions
        never wait for a read), at most ReadLimits.slots at a time; QueryTimeoutError once it
        has run ReadLimits.timeout_s, ReadsStoppedError at once after `stop_reads`."""
        ...

    def stop_reads(self) -> None:
        """Stop the reads in flight and refuse new ones: the process is shutting down."""
        ...

    async def close(self) -> None:
        """Release the connections; closing again does nothing."""
        ...


def _interrupted(exc: BaseException) -> bool:
    """The error says the database stopped the statement: SQLite's interrupt (the progress
    handler asked for it) or PostgreSQL's statement_timeout."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, asyncpg.QueryCanceledError):
            return True
        if isinstance(seen, sqlite3.OperationalError):
            return (seen.sqlite_errorcode or 0) & 0xFF == sqlite3.SQLITE_INTERRUPT
        seen = seen.__cause__ or getattr(seen, "orig", None)
    return False


class ThreadedDatabase:
    """For a blocking driver: each transaction runs in one of `workers` threads.

    A cancelled caller stops waiting, but its transaction still commits or rolls back whole.
    With `loop_first`, `run_dbapi` tries the transaction on the event loop first (the module's
    docstring says why); not for ":memory:", whose one connection must be shared.
    """

    def __init__(
        self,
        engine: Engine,
        workers: int,
        loop_first: bool,
        reads: ReadLimits,
        read_engine: Engine | None,
    ) -> None:
        """Reads run on `read_engine` in threads of their own; without it (":memory:", whose
        one connection everything shares) on `engine`."""
        self._engine = engine
        self._threads = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="knock-store")
        self._closed = False
        self._loop_first = loop_first
        self._loop_conn: DBAPIConnection | None = None
        self._reads = reads
        self._read_engine = read_engine or engine
        self._read_threads = (
            ThreadPoolExecutor(max_workers=reads.slots, thread_name_prefix="knock-nbi-read")
            if read_engine is not None
            else self._threads
        )
        self._reads_stopped = False

    @property
    def dialect_name(self) -> str:
        return self._engine.dialect.name

    async def run(
        self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        call = functools.partial(self._transaction, fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._threads, call)

    async def run_statement(
        self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        # sqlite3 has no round trips to save.
        return await self.run(fn, *args, **kwargs)

    async def run_dbapi(
        self, fn: Callable[Concatenate[DBAPIConnection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        if self._loop_first and not self._closed:
            try:
                return self._on_loop(fn, *args, **kwargs)
            except sqlite3.OperationalError as e:
                # Only the lock held elsewhere sends it to a thread (the code is None for errors
                # the sqlite3 module raises itself).
                if (e.sqlite_errorcode or 0) & 0xFF != sqlite3.SQLITE_BUSY:
                    raise
        call = functools.partial(self._dbapi_transaction, fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._threads, call)

    def _on_loop(
        self, fn: Callable[Concatenate[DBAPIConnection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """`fn` in one transaction on the loop's connection; SQLITE_BUSY at once, rolled back,
        if another connection holds the write lock."""
        if self._loop_conn is None:
            pooled = self._engine.raw_connection()
            pooled.detach()  # it is set apart for good, with pragmas of its own
            conn = pooled.dbapi_connection
            assert conn is not None
            conn.cursor().execute("PRAGMA busy_timeout = 0")
            self._loop_conn = conn
        conn = self._loop_conn
        try:
            conn.cursor().execute("BEGIN IMMEDIATE")
            result = fn(conn, *args, **kwargs)
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        return result

    def _transaction(
        self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        with self._engine.begin() as conn:
            return fn(conn, *args, **kwargs)

    def _dbapi_transaction(
        self, fn: Callable[Concatenate[DBAPIConnection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        # The pool's connection as engine.begin() has it, without the Connection around it; the
        # driver begins the transaction at the first write, as it does under engine.begin().
        pooled = self._engine.raw_connection()
        try:
            result = fn(pooled.dbapi_connection, *args, **kwargs)  # type: ignore[arg-type]
            pooled.commit()
            return result
        except BaseException:
            pooled.rollback()
            raise
        finally:
            pooled.close()

    async def read(
        self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        # The time runs from the request: one that waited for a thread past it stops at once.
        deadline = time.monotonic() + self._reads.timeout_s
        call = functools.partial(self._read, deadline, fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._read_threads, call)

    def _read(
        self,
        deadline: float,
        fn: Callable[Concatenate[Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        if self._reads_stopped:
            raise ReadsStoppedError()

        def stop() -> int:
            return int(self._reads_stopped or time.monotonic() > deadline)

        with self._read_engine.connect() as conn:
            raw: Any = conn.connection.dbapi_connection
            raw.set_progress_handler(stop, _PROGRESS_STEPS)
            try:
                with conn.begin():
                    return fn(conn, *args, **kwargs)
            except Exception as exc:
                if not _interrupted(exc):
                    raise
                if self._reads_stopped:
                    raise ReadsStoppedError() from None
                raise QueryTimeoutError(self._reads.timeout_s) from None
            finally:
                raw.set_progress_handler(None, 0)

    def stop_reads(self) -> None:
        self._reads_stopped = True  # each read's progress handler sees it within a moment

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.stop_reads()
        if self._loop_conn is not None:
            self._loop_conn.close()
        loop = asyncio.get_running_loop()
        if self._read_engine is not self._engine:
            await loop.run_in_executor(self._read_threads, self._read_engine.dispose)
            self._read_threads.shutdown()
        await loop.run_in_executor(self._threads, self._engine.dispose)
        self._threads.shutdown()


_LOST_CONNECTION = (
    OSError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.PostgresConnectionError,
)


_DETAIL = "\nDETAIL:"


@contextlib.contextmanager
def _without_details() -> Iterator[None]:
    """Drop PostgreSQL's DETAIL from an error on its way out. It can repeat the statement's
    values ("Failing row contains (...)", "Key (...)=(...)"), credentials among them, and a log
    line must not; the message itself names the constraint that failed."""
    try:
        yield
    except Exception as exc:
        _drop_details(exc)
        raise


def _drop_details(exc: BaseException | None, seen: frozenset[int] = frozenset()) -> None:
    if exc is None or id(exc) in seen:
        return
    if isinstance(exc, asyncpg.PostgresError):
        exc.detail = None  # its str() adds the DETAIL line when set
    elif exc.args and isinstance(exc.args[0], str) and _DETAIL in exc.args[0]:
        # SQLAlchemy's adapter made its message from the asyncpg error's str(), DETAIL and all.
        exc.args = (exc.args[0].split(_DETAIL, 1)[0], *exc.args[1:])
    if hasattr(exc, "orig"):  # SQLAlchemy's DBAPIError: the driver's error it wraps
        _drop_details(exc.orig, seen | {id(exc)})
    _drop_details(exc.__cause__, seen | {id(exc)})
    _drop_details(exc.__context__, seen | {id(exc)})


# Connections of the per-session calls per process; each holds one only for a statement or a
# short transaction. knock.store.engine counts them in the process's share of the server.
HOT_POOL_SIZE = 15


class AsyncDatabase:
    """For an asyncio driver: the transaction runs on the event loop."""

    def __init__(self, engine: AsyncEngine, reads: ReadLimits, read_engine: AsyncEngine) -> None:
        """Reads run on `read_engine`, a pool of ReadLimits.slots connections of their own."""
        self._engine = engine
        self._reads = reads
        self._read_engine = read_engine
        self._reads_in_flight: set[asyncio.Task[Any]] = set()
        self._reads_stopped = False
        # The per-session calls' own connections (run_on_asyncpg, statement_on_asyncpg): the
        # check-out and return of SQLAlchemy's pool, its greenlet switches included, had cost
        # the ACS about a tenth of its CPU per session. Opened at the first call.
        self._hot_pool = HotPool(self._hot_connection, HOT_POOL_SIZE)

    @property
    def dialect_name(self) -> str:
        return self._engine.dialect.name

    async def run(
        self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        with _without_details():
            async with self._engine.begin() as conn:
                return await conn.run_sync(fn, *args, **kwargs)

    async def run_statement(
        self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        # Without BEGIN and COMMIT: two round trips fewer, on PostgreSQL a third of the cost of
        # a one-statement transaction.
        with _without_details():
            async with self._engine.connect() as conn:
                autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
                return await autocommit.run_sync(fn, *args, **kwargs)

    async def run_dbapi(
        self, fn: Callable[Concatenate[DBAPIConnection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        # The adapted connection SQLAlchemy wraps around an async driver answers DB-API calls
        # synchronously inside run_sync.
        return await self.run(
            lambda conn: fn(conn.connection.dbapi_connection, *args, **kwargs)  # type: ignore[arg-type]
        )

    async def on_asyncpg(
        self,
        fn: Callable[Concatenate[asyncpg.Connection, P], Awaitable[T]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """`await fn(connection, ...)` on an asyncpg connection of the sessions' own pool, past
        SQLAlchemy's execution layer (knock.store.pg_hot says why). No transaction is begun:
        a single statement is atomic by itself, and BEGIN and COMMIT are two round trips
        more; `fn` begins one when it runs several."""
        driver = await self._hot_pool.acquire()
        clean = False
        try:
            with _without_details():
                result = await fn(driver, *args, **kwargs)
            clean = True
            return result
        except _LOST_CONNECTION:
            # Every other idle connection likely went too (a server restart): each is
            # replaced now rather than failing a call of its own.
            self._hot_pool.expire()
            raise
        except asyncpg.PostgresError:
            clean = True  # the server refused a statement; the connection is as it was
            raise
        finally:
            self._hot_pool.release(driver, reusable=clean)

    async def _hot_connection(self) -> asyncpg.Connection:
        _, params = self._engine.dialect.create_connect_args(self._engine.url)
        conn = await asyncpg.connect(**params)
        try:
            await self._as_sqlalchemy_sets_up(conn)
        except BaseException:
            conn.terminate()
            raise
        return conn

    async def _as_sqlalchemy_sets_up(self, conn: asyncpg.Connection) -> None:
        """The JSON codecs SQLAlchemy's dialect gives its own connections, through its own code:
        the statements compiled for that dialect (knock.store.compiled) expect them."""
        dialect: Any = self._engine.dialect
        adapted = SimpleNamespace(_connection=conn)  # all the two read of SQLAlchemy's adapter
        await dialect.setup_asyncpg_json_codec(adapted)
        await dialect.setup_asyncpg_jsonb_codec(adapted)

    async def read(
        self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        if self._reads_stopped:
            raise ReadsStoppedError()
        reading = asyncio.ensure_future(self._read(fn, *args, **kwargs))
        self._reads_in_flight.add(reading)
        try:
            return await reading
        except asyncio.CancelledError:
            caller = asyncio.current_task()
            if self._reads_stopped and not (caller is not None and caller.cancelling()):
                raise ReadsStoppedError() from None
            raise
        finally:
            self._reads_in_flight.discard(reading)

    async def _read(
        self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        timeout_s = self._reads.timeout_s
        deadline = time.monotonic() + timeout_s
        try:
            with _without_details():
                # pool_timeout: a read waits for a connection no longer than it may run.
                async with self._read_engine.connect() as conn, conn.begin():
                    if self.dialect_name == "postgresql":
                        ms = max(1, int((deadline - time.monotonic()) * 1000))
                        await conn.exec_driver_sql(f"SET LOCAL statement_timeout = {ms}")
                    else:  # aiosqlite: its thread calls the handler
                        raw = await conn.get_raw_connection()
                        await raw.driver_connection.set_progress_handler(  # type: ignore[union-attr]
                            lambda: int(time.monotonic() > deadline), _PROGRESS_STEPS
                        )
                    return await conn.run_sync(fn, *args, **kwargs)
        except PoolTimeoutError:
            raise QueryTimeoutError(timeout_s) from None
        except Exception as exc:
            if _interrupted(exc):
                raise QueryTimeoutError(timeout_s) from None
            raise

    def stop_reads(self) -> None:
        self._reads_stopped = True
        for reading in self._reads_in_flight:
            reading.cancel()  # asyncpg then has the server cancel the statement

    async def close(self) -> None:
        self.stop_reads()
        await self._hot_pool.close()
        await self._read_engine.dispose()
        await self._engine.dispose()
