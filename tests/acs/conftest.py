from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from knock.config import Settings
from knock.nbi.app import ConnectionRequest
from knock.server import Running, start

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
        settings = replace(
            Settings(),
            cwmp_host="127.0.0.1",
            cwmp_port=0,
            nbi_port=0,
            stun_host="127.0.0.1",
            stun_port=0,
            xmpp_host="127.0.0.1",
            xmpp_port=0,
            xmpp_tls_port=0,
            store_url=f"sqlite:///{tmp_path / 'knock.db'}",
            data_dir=str(tmp_path / "data"),
            **overrides,
        )
        settings.validate()
        running = await start(settings, connection_request)
        started.append(running)
        return running

    yield _start
    for running in started:
        await running.close()


@pytest.fixture
async def acs(start_acs: StartAcs) -> Running:
    return await start_acs()
