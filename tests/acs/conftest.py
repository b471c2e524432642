from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from knock.nbi.app import ConnectionRequest
from knock.server import Running, start
from knock.store import Store
from knock.store.rows import InformRecord
from pg_server import emptied
from serve_support import loopback_settings

StartAcs = Callable[..., Awaitable[Running]]


@pytest.fixture
async def start_acs(tmp_path: Path) -> AsyncIterator[StartAcs]:
    """Start `knock serve` in-process on free loopback ports with a real SQLite file."""
    started: list[Running] = []

    async def _start(
        connection_request: ConnectionRequest | None = None, **overrides: Any
    ) -> Running:
        # Credentials provisioning adds an RPC to the first session; tests about it turn it on.
        overrides.setdefault("cr_provision", "off")
        settings = loopback_settings(tmp_path, **overrides)
        running = await start(settings, connection_request)
        started.append(running)
        return running

    yield _start
    for running in started:
        await running.close()


@pytest.fixture
async def acs(start_acs: StartAcs) -> Running:
    return await start_acs()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """A real SQLite store holding one device, dev-1."""
    opened = await Store.open(f"sqlite:///{tmp_path / 'knock.db'}")
    await opened.record_inform(
        InformRecord(
            "dev-1", "Knock", "00D09E", "Box", "SN1", ["1 BOOT"], [], "", datetime.now(UTC)
        )
    )
    yield opened
    await opened.close()


@pytest.fixture
async def pg_url(postgres_url: str) -> str:
    """The test PostgreSQL server's database, emptied (tests/pg_server.py)."""
    return await emptied(postgres_url)
