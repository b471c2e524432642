"""The per-session calls' own asyncpg connections (knock.store.hot_pool), on a real PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from knock.store.hot_pool import HotPool


@pytest.fixture
async def pool(postgres_url: str) -> AsyncIterator[HotPool]:
    opened = HotPool(lambda: asyncpg.connect(postgres_url), size=2)
    yield opened
    await opened.close()


async def _backend(pool: HotPool, hold: asyncio.Event | None = None) -> int:
    conn = await pool.acquire()
    try:
        if hold is not None:
            await hold.wait()
        return int(await conn.fetchval("SELECT pg_backend_pid()"))
    finally:
        pool.release(conn, reusable=True)


async def test_more_calls_than_connections_take_turns_on_them(pool: HotPool) -> None:
    hold = asyncio.Event()
    calls = [asyncio.ensure_future(_backend(pool, hold)) for _ in range(6)]
    await asyncio.sleep(0)  # every call has asked for its connection
    hold.set()
    backends = await asyncio.gather(*calls)
    assert len(set(backends)) == 2  # all six ran, on the two connections
    assert await _backend(pool) in backends  # an idle one is lent again


async def test_a_call_cancelled_mid_statement_gives_its_connection_up(pool: HotPool) -> None:
    conn = await pool.acquire()
    first = int(await conn.fetchval("SELECT pg_backend_pid()"))
    sleeping = asyncio.ensure_future(conn.fetchval("SELECT pg_sleep(30)"))
    while not await _sleeping_in(pool, first):
        pass
    sleeping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sleeping
    pool.release(conn, reusable=False)
    assert conn.is_closed()
    # The one room left and the room it made serve two calls at once, on new connections.
    hold = asyncio.Event()
    calls = [asyncio.ensure_future(_backend(pool, hold)) for _ in range(2)]
    await asyncio.sleep(0)
    hold.set()
    assert first not in await asyncio.gather(*calls)


async def test_a_waiter_cancelled_after_its_turn_came_passes_the_turn_on(pool: HotPool) -> None:
    lent = [await pool.acquire(), await pool.acquire()]
    cancelled = asyncio.ensure_future(pool.acquire())
    waiting = asyncio.ensure_future(pool.acquire())
    await asyncio.sleep(0)  # both wait, in this order
    pool.release(lent.pop(), reusable=True)  # the turn goes to the first...
    cancelled.cancel()  # ...which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    conn = await asyncio.wait_for(waiting, 10)
    assert await conn.fetchval("SELECT 1") == 1
    pool.release(conn, reusable=True)
    pool.release(lent.pop(), reusable=True)


async def test_a_closed_pool_refuses_its_waiters(pool: HotPool) -> None:
    lent = [await pool.acquire(), await pool.acquire()]
    waiting = asyncio.ensure_future(pool.acquire())
    await asyncio.sleep(0)
    await pool.close()
    with pytest.raises(asyncpg.InterfaceError, match="closed"):
        await waiting
    for conn in lent:
        pool.release(conn, reusable=True)
        assert conn.is_closed()


async def _sleeping_in(pool: HotPool, backend: int) -> bool:
    """The backend runs pg_sleep (asked on a connection of the pool's own)."""
    conn = await pool.acquire()
    try:
        state = await conn.fetchval(
            "SELECT wait_event FROM pg_stat_activity WHERE pid = $1", backend
        )
        return bool(state == "PgSleep")
    finally:
        pool.release(conn, reusable=True)
