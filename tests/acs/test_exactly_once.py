"""A task runs at most once across `kill -9` of `knock serve` (real processes, a real SQLite file
and a real PostgreSQL server): one the device may have run is marked `unknown`, never sent again
unasked; the others are queued again, and on SQLite their devices get a connection request."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cr_endpoint import CrEndpoint
from scripted_cpe import ScriptedCpe

from knock.cwmp.rpcs import (
    AddObject,
    GetParameterValues,
    GetParameterValuesResponse,
    ParameterValueStruct,
)
from pg_server import emptied
from serve_process import Serve

UPTIME = "Device.DeviceInfo.UpTime"
CR_URL = "Device.ManagementServer.ConnectionRequestURL"
ADD = {"name": "addObject", "objectName": "Device.IP.Interface."}
GPV = {"name": "getParameterValues", "parameterNames": [UPTIME]}


@pytest.fixture(params=["sqlite", "postgresql"])
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'knock.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return await emptied(url)


@pytest.fixture
async def serve(store_url: str) -> AsyncIterator[Serve]:
    server = Serve(store_url)
    yield server
    await server.stop()


async def kill_and_restart(serve: Serve) -> None:
    serve.kill9()
    assert await serve.wait() == -signal.SIGKILL
    await serve.start()


async def test_an_add_object_in_flight_at_kill_9_is_never_sent_again(serve: Serve) -> None:
    await serve.start()
    async with ScriptedCpe(serve.url) as cpe:
        await cpe.inform("0 BOOTSTRAP")
        await cpe.empty()
        add = await serve.post_task(cpe.device_id, ADD)
        read = await serve.post_task(cpe.device_id, GPV)
        await cpe.inform("2 PERIODIC")
        sent = await cpe.empty()
        assert sent.envelope is not None
        assert sent.envelope.body == AddObject(
            "Device.IP.Interface.", sent.envelope.body.parameter_key
        )

        # The device runs it, and the ACS dies before the response is stored.
        await kill_and_restart(serve)

        await cpe.inform("2 PERIODIC")
        step = await cpe.empty()
        assert step.envelope is not None and step.envelope.body == GetParameterValues([UPTIME])
        step = await cpe.answer(
            step, GetParameterValuesResponse([ParameterValueStruct(UPTIME, "9", "xsd:unsignedInt")])
        )
        assert step.status == 204  # no second AddObject
    unknown = await serve.task(add)
    assert unknown["status"] == "unknown"
    assert unknown["fault"]["code"] == "unknown"
    assert "retries" not in unknown  # not retried, so no attempt counted
    assert (await serve.task(read))["status"] == "done"


async def test_a_requeued_task_gets_its_connection_request_after_kill_9(tmp_path: Path) -> None:
    """SQLite: the restarted process settles what the dead one left and asks the device for a
    session, instead of leaving the task until the device's next periodic Inform."""
    serve = Serve(
        f"sqlite:///{tmp_path / 'knock.db'}", "--cr-username", "cr", "--cr-password", "cr-pw"
    )
    reached = asyncio.Event()

    async def on_accepted() -> None:
        reached.set()

    endpoint = await CrEndpoint("cr", "cr-pw", on_accepted=on_accepted).start()
    try:
        await serve.start()
        async with ScriptedCpe(serve.url) as cpe:
            cpe.params[CR_URL] = (endpoint.url, "xsd:string")
            await cpe.inform("0 BOOTSTRAP")
            await cpe.empty()
            read = await serve.post_task(cpe.device_id, GPV)
            await cpe.inform("2 PERIODIC")
            sent = await cpe.empty()
            assert sent.envelope is not None and sent.envelope.body == GetParameterValues([UPTIME])

            await kill_and_restart(serve)
            await asyncio.wait_for(reached.wait(), 30)

            await cpe.inform("6 CONNECTION REQUEST")
            step = await cpe.empty()
            assert step.envelope is not None and step.envelope.body == GetParameterValues([UPTIME])
            step = await cpe.answer(
                step,
                GetParameterValuesResponse([ParameterValueStruct(UPTIME, "9", "xsd:unsignedInt")]),
            )
            assert step.status == 204
        done = await serve.task(read)
        # The crash counted as an attempt, as a session that ended "aborted" does.
        assert (done["status"], done["retries"]) == ("done", 1)
    finally:
        await serve.stop()
        await endpoint.close()
