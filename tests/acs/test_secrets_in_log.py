"""No secret reaches the log, whatever fails: a database error while provisioning is logged without
the statement's bound values (SQLAlchemy's "[parameters: ...]"), which held the connection-request
password, nor PostgreSQL's DETAIL ("Failing row contains (...)"). The store's tests hold every
driver to the same (tests/store/test_store_secrets.py)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
from scripted_cpe import NS_10, ScriptedCpe

from db_faults import refuse_credentials
from knock.cwmp.envelope import build_envelope
from knock.cwmp.rpcs import (
    GetParameterValues,
    GetParameterValuesResponse,
    SetParameterValues,
    SetParameterValuesResponse,
)
from knock.server import Running
from pg_server import emptied


@pytest.fixture(params=["sqlite", "postgresql"])
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'knock.db'}"
    url: str = request.getfixturevalue("postgres_url")
    await emptied(url)
    return url


async def test_a_database_error_while_provisioning_logs_no_password(
    start_acs: Any, store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    acs: Running = await start_acs(cr_provision="random", store_url=store_url)
    await refuse_credentials(store_url)
    async with ScriptedCpe(acs.acs_url) as cpe:
        await cpe.inform("0 BOOTSTRAP", "1 BOOT")
        read = await cpe.empty()
        assert read.envelope is not None and isinstance(read.envelope.body, GetParameterValues)
        write = await cpe.answer(read, GetParameterValuesResponse([]))
        assert write.envelope is not None and isinstance(write.envelope.body, SetParameterValues)
        sent = {p.name: p.value for p in write.envelope.body.parameter_list}
        accepted = build_envelope(
            SetParameterValuesResponse(0), cwmp_ns=NS_10, id=write.envelope.id
        )
        status, body = await cpe.client.post_raw(accepted)
    password = sent["Device.ManagementServer.ConnectionRequestPassword"]
    assert status == 500  # the store failed: the ACS says so, and says nothing more
    assert password not in body.decode("utf-8", "replace")
    # The failure is logged, with its traceback, as the operator sees it.
    assert "refuse_credentials" in caplog.text or "credentials refused" in caplog.text
    assert password not in caplog.text
    assert "[parameters:" not in caplog.text
    # The session the failure left open ends at shutdown, and its announcement once made the
    # PostgreSQL relay swallow its cancellation: close() waited for ever.
    await asyncio.wait_for(acs.close(), 60)
