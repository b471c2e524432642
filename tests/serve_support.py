"""`knock serve` settings for tests: every listener on 127.0.0.1 and a free port, files in tmp."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

from knock.config import Settings
from knock.store import Store


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
