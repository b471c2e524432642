from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from knock.nbi.app import ConnectionRequest
from knock.server import Running, start
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
async def pg_url(postgres_url: str) -> str:
    """The test PostgreSQL server's database, emptied (tests/pg_server.py)."""
    return await emptied(postgres_url)
