"""Fixtures of the simulated-CPE tests: the fake ACS, the fake clock and devices to run."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cpe_support import FakeAcs, FakeClock, MakeCpe, RunCpe

from knock.cpe.device import SimulatedCpe


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def acs() -> AsyncIterator[FakeAcs]:
    server = FakeAcs()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
def uniform_low() -> list[tuple[float, float]]:
    """The back-off ranges a device drew from, in order; the draw is always the low end."""
    return []


@pytest.fixture
def make_cpe(
    tmp_path: Path, clock: FakeClock, acs: FakeAcs, uniform_low: list[tuple[float, float]]
) -> MakeCpe:
    def uniform(low: float, high: float) -> float:
        uniform_low.append((low, high))
        return low

    def make(serial: str = "SN0001", model: str = "tr181", **kwargs: Any) -> SimulatedCpe:
        options: dict[str, Any] = {"clock": clock, "uniform": uniform, **kwargs}
        url = options.pop("acs_url", acs.url)
        return SimulatedCpe(serial, model, tmp_path / "state", url, **options)

    return make


@pytest.fixture
async def run_cpe() -> AsyncIterator[RunCpe]:
    """Start devices as tasks; every one is cancelled at the end of the test."""
    tasks: list[asyncio.Task[None]] = []

    def run(cpe: SimulatedCpe) -> asyncio.Task[None]:
        task = asyncio.create_task(cpe.run(), name=f"cpe-{cpe.serial}")
        tasks.append(task)
        return task

    yield run
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
