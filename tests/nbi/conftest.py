"""Fixtures of the NBI tests: databases, a real store, and the NBI served on a real socket."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import datetime
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from nbi_support import T0, AddDevice, Nbi, StartNbi, ThreadedNbi, inform, play_session
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from knock.nbi.app import ConnectionRequest, make_nbi_app
from knock.notify import Hub
from knock.store import Store
from knock.store.engine import configure_sqlite, driver_url
from knock.store.rows import ParamValue
from knock.store.schema import metadata
from pg_server import emptied


@pytest.fixture(params=["sqlite", "postgresql"])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """An empty database with the store's tables, without the store itself."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'q.db'}"
    else:
        # The real server of tests/pg_server.py, started on first use; its tables are dropped.
        url = driver_url(request.getfixturevalue("postgres_url"))
    eng = create_async_engine(url)
    if request.param == "sqlite":
        event.listen(eng.sync_engine, "connect", configure_sqlite)
    async with eng.begin() as conn:
        await conn.run_sync(metadata.drop_all)
        await conn.run_sync(metadata.create_all)
    yield eng
    await eng.dispose()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open("sqlite:///" + str(tmp_path / "k.db"))
    yield opened
    await opened.close()


@pytest.fixture(params=["sqlite", "postgresql"])
async def store_on_each_database(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Store]:
    """A store on SQLite, then on PostgreSQL: modules whose every test runs on both make it
    their `store`."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'k.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
        await emptied(url)
    opened = await Store.open(url)
    yield opened
    await opened.close()


@pytest.fixture
def add_device(store: Store) -> AddDevice:
    """Make a device known the way the ACS does: through an accepted Inform."""

    async def add(
        device_id: str = "001122-Router-SN1",
        params: Sequence[ParamValue] = (),
        *,
        now: datetime = T0,
    ) -> str:
        await store.record_inform(inform(device_id, params, now=now))
        return device_id

    return add


@pytest.fixture
async def start_nbi(store: Store) -> AsyncIterator[StartNbi]:
    """Serve the NBI on 127.0.0.1 (a free port) over the test's store; returns how to reach it."""
    runners: list[web.AppRunner] = []
    sessions: list[aiohttp.ClientSession] = []

    async def start(
        *, token: str | None = None, connection_request: ConnectionRequest | None = None
    ) -> Nbi:
        hub = Hub()
        runner = web.AppRunner(
            make_nbi_app(store, hub, token=token, connection_request=connection_request)
        )
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        http = aiohttp.ClientSession()
        sessions.append(http)
        return Nbi(f"http://127.0.0.1:{port}", http, store, hub)

    yield start
    for http in sessions:
        await http.close()
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
async def nbi(start_nbi: StartNbi) -> Nbi:
    return await start_nbi()


@pytest.fixture
def threaded_nbi(tmp_path: Path) -> Iterator[ThreadedNbi]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start() -> tuple[ThreadedNbi, web.AppRunner]:
        store = await Store.open("sqlite:///" + str(tmp_path / "cli.db"))
        hub = Hub()
        served = ThreadedNbi("", loop, store, hub)

        async def connection_request(device_id: str, timeout_s: float) -> str | None:
            if served.unreachable:
                return "unreachable: no route to host"
            served.sessions.append(asyncio.create_task(play_session(store, hub, device_id)))
            return None

        app = make_nbi_app(store, hub, token="s3cret", connection_request=connection_request)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        served.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        return served, runner

    served, runner = asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=30)
    yield served

    async def stop() -> None:
        await asyncio.gather(*served.sessions)
        await runner.cleanup()
        await served.store.close()

    asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout=30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=10)
    loop.close()
