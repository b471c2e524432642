"""Fixtures for the store tests: every test runs against each database in `db_url`.

"sqlite+aiosqlite" takes the async-driver path that PostgreSQL takes. "postgresql" is the real
server of the `postgres_url` fixture (tests/pg_server.py), started on first use; its tables are
dropped before each test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from knock.store import Store
from knock.store.rows import InformRecord, ParamValue
from pg_server import emptied

from .helpers import DEVICE, Record


@pytest.fixture(params=["sqlite", "sqlite+aiosqlite", "postgresql"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty database."""
    if request.param != "postgresql":
        return f"{request.param}:///{tmp_path / 'knock.db'}"
    return await emptied(request.getfixturevalue("postgres_url"))


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    opened = await Store.open(db_url)
    yield opened
    await opened.close()


@pytest.fixture
def now() -> datetime:
    return datetime(2025, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)


@pytest.fixture
def record(store: Store, now: datetime) -> Record:
    """Record an Inform the way the ACS does; returns the session id."""

    async def record(
        device_id: str = DEVICE,
        events: Sequence[str] = ("2 PERIODIC",),
        params: Sequence[ParamValue] = (),
        at: datetime | None = None,
        manufacturer: str = "Huawei",
        product_class: str = "HG8245",
        serial_number: str = "SN0001",
    ) -> int:
        return await store.record_inform(
            InformRecord(
                device_id=device_id,
                manufacturer=manufacturer,
                oui="00D09E",
                product_class=product_class,
                serial_number=serial_number,
                events=list(events),
                parameters=list(params),
                cwmp_version="urn:dslforum-org:cwmp-1-0",
                now=at or now,
            )
        )

    return record
