"""`knock serve` settings for tests: every listener on 127.0.0.1 and a free port, files in tmp."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from knock.config import Settings
from knock.cpe.cr_rate import CrPolicy
from knock.cpe.cr_services import CrServices
from knock.cpe.device import SimulatedCpe
from knock.store import Store
from knock.vocab import CrMethod


def loopback_settings(folder: Path, **overrides: Any) -> Settings:
    defaults: dict[str, Any] = dict(
        cwmp_host="127.0.0.1",
        cwmp_port=0,
        nbi_port=0,
        files_host="127.0.0.1",
        files_port=0,
        stun_host="127.0.0.1",
        stun_port=0,
        xmpp_host="127.0.0.1",
        xmpp_port=0,
        xmpp_tls_port=0,
        store_url=f"sqlite:///{folder / 'knock.db'}",
        data_dir=str(folder / "data"),
    )
    settings = replace(Settings(), **{**defaults, **overrides})
    settings.validate()
    return settings


async def stun_outcome_is(store: Store, device_id: str, outcome: str) -> None:
    """Wait for the device's stored STUN outcome, which `knock serve` writes behind the STUN
    server's answer and nothing announces."""
    async with asyncio.timeout(10):
        while True:
            row = await store.get_device(device_id)
            if row is not None and row.stun_outcome == outcome:
                return
            await asyncio.sleep(0.01)


async def settle(device: SimulatedCpe, within: float = 20.0) -> None:
    """Wait until the simulated CPE ends its next session."""
    settled = asyncio.Event()
    device.on_settled(settled.set)
    async with asyncio.timeout(within):
        await settled.wait()


@contextlib.asynccontextmanager
async def http_cpe(
    serial: str, acs_url: str, folder: Path, **options: Any
) -> AsyncIterator[SimulatedCpe]:
    """A simulated TR-181 CPE (SimulatedCpe's other arguments in `options`) running against
    `acs_url`, reachable by HTTP connection requests; stopped on the way out."""
    services = CrServices((CrMethod.HTTP,), CrPolicy(rate_limit=0))
    await services.start()
    device = SimulatedCpe(serial, "tr181", folder / "state", acs_url, **options)
    services.attach(device)
    running = asyncio.create_task(device.run())
    try:
        yield device
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await services.close()
