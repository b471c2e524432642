"""Queued work survives `kill -9` of `knock serve`: a real process, a real SQLite file."""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from scripted_cpe import ScriptedCpe

from knock.cwmp.rpcs import GetParameterValues, GetParameterValuesResponse, ParameterValueStruct
from serve_process import Serve

UPTIME = "Device.DeviceInfo.UpTime"
VERSION = "Device.DeviceInfo.SoftwareVersion"


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator[Serve]:
    server = Serve(f"sqlite:///{tmp_path / 'knock.db'}")
    yield server
    await server.stop()


async def test_queued_and_running_tasks_survive_kill_9(serve: Serve) -> None:
    await serve.start()
    async with ScriptedCpe(serve.url) as cpe:
        await cpe.inform("0 BOOTSTRAP")
        await cpe.empty()
        running = await serve.post_task(
            cpe.device_id, {"name": "getParameterValues", "parameterNames": [UPTIME]}
        )
        queued = await serve.post_task(
            cpe.device_id, {"name": "getParameterValues", "parameterNames": [VERSION]}
        )
        await cpe.inform("2 PERIODIC")
        request = await cpe.empty()
        assert request.envelope is not None
        assert request.envelope.body == GetParameterValues([UPTIME])

        serve.kill9()  # mid-session, with the first task sent and unanswered
        assert await serve.wait() == -signal.SIGKILL
        await serve.start()

        await cpe.inform("2 PERIODIC")
        step = await cpe.empty()
        assert step.envelope is not None and step.envelope.body == GetParameterValues([UPTIME])
        step = await cpe.answer(
            step, GetParameterValuesResponse([ParameterValueStruct(UPTIME, "9", "xsd:unsignedInt")])
        )
        assert step.envelope is not None and step.envelope.body == GetParameterValues([VERSION])
        step = await cpe.answer(
            step, GetParameterValuesResponse([ParameterValueStruct(VERSION, "2.0", "xsd:string")])
        )
        assert step.status == 204
    assert (await serve.task(running))["status"] == "done"
    assert (await serve.task(queued))["status"] == "done"
