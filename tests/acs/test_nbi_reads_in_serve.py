"""A slow NBI query in `knock serve` on PostgreSQL: stopped at nbi_query_timeout with a 503 that
names the setting, and no obstacle to the shutdown SIGTERM starts (Running.close). The query is
made slow for real: another connection holds the devices table locked, so the NBI's read waits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import asyncpg
import pytest

from knock.server import Running
from pg_server import emptied


@pytest.fixture
async def pg_url(postgres_url: str) -> str:
    await emptied(postgres_url)
    return postgres_url


@pytest.fixture
async def lock_devices(pg_url: str) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """Once called (the store migrated), another connection holds the devices table locked
    until the test ends."""
    conn = await asyncpg.connect(pg_url)

    async def lock() -> None:
        await conn.execute("BEGIN; LOCK TABLE devices IN ACCESS EXCLUSIVE MODE")

    yield lock
    await conn.close()  # which rolls back and frees the table


async def _get_devices(http: aiohttp.ClientSession, acs: Running) -> aiohttp.ClientResponse:
    return await http.get(f"http://127.0.0.1:{acs.nbi_port}/devices/")


async def _waiting_for_the_lock(conn: asyncpg.Connection) -> None:
    """Returns once a statement on devices waits for the lock (the NBI's read is in flight)."""
    waiting = (
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
        "AND query LIKE '%FROM devices%'"
    )
    while not await conn.fetchval(waiting):  # noqa: ASYNC110 - PostgreSQL has no event for it
        await asyncio.sleep(0.02)


async def test_a_query_past_its_time_gets_503(
    start_acs: Any, pg_url: str, lock_devices: Callable[[], Awaitable[None]]
) -> None:
    acs: Running = await start_acs(store_url=pg_url, nbi_query_timeout=0.5)
    await lock_devices()
    async with aiohttp.ClientSession() as http, await _get_devices(http, acs) as response:
        body = await response.json()
    assert response.status == 503
    assert "longer than 0.5 s" in body["error"] and "nbi_query_timeout" in body["error"]


async def test_shutdown_does_not_wait_for_a_query_in_flight(
    start_acs: Any, pg_url: str, lock_devices: Callable[[], Awaitable[None]]
) -> None:
    acs: Running = await start_acs(store_url=pg_url, nbi_query_timeout=3600)
    await lock_devices()
    async with aiohttp.ClientSession() as http:
        request = asyncio.ensure_future(_get_devices(http, acs))
        watcher = await asyncpg.connect(pg_url)
        try:
            await asyncio.wait_for(_waiting_for_the_lock(watcher), 30)
        finally:
            await watcher.close()
        # Without stop_reads the NBI's shutdown waited for the read: here, for an hour.
        await asyncio.wait_for(acs.close(), 60)
        async with await request as response:
            body = await response.json()
    assert response.status == 503 and "shutting down" in body["error"]
