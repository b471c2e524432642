"""Queued work survives `kill -9` of `knock serve`: a real process, a real SQLite file."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from scripted_cpe import ScriptedCpe

from knock.cwmp.rpcs import GetParameterValues, GetParameterValuesResponse, ParameterValueStruct

UPTIME = "Device.DeviceInfo.UpTime"
VERSION = "Device.DeviceInfo.SoftwareVersion"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Serve:
    def __init__(self, db: Path) -> None:
        self.db = db
        self.cwmp, self.nbi = free_port(), free_port()
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "knock", "serve",
            "--cwmp-host", "127.0.0.1", "--cwmp-port", str(self.cwmp),
            "--nbi-port", str(self.nbi), "--store-url", f"sqlite:///{self.db}",
            "--log-level", "warning", "--cr-provision", "off",
            "--stun-host", "127.0.0.1", "--stun-port", "0", "--no-xmpp-enable",
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert self.proc.stdout is not None
        banner = await asyncio.wait_for(self.proc.stdout.readline(), 20)
        assert b"point CPEs at" in banner, banner
        # The NBI and STUN lines: every listener is up.
        for _ in range(2):
            await asyncio.wait_for(self.proc.stdout.readline(), 5)

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)

    async def wait(self) -> int:
        assert self.proc is not None
        return await self.proc.wait()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.cwmp}/"

    async def post_task(self, device_id: str, task: dict[str, Any]) -> int:
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"http://127.0.0.1:{self.nbi}/devices/{device_id}/tasks", json=task) as r,
        ):
            assert r.status == 202, await r.text()
            return int((await r.json())["_id"])

    async def task(self, task_id: int) -> dict[str, Any]:
        query = f'{{"_id":"{task_id}"}}'
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{self.nbi}/tasks/", params={"query": query}) as r,
        ):
            [found] = await r.json()
            return dict(found)


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator[Serve]:
    server = Serve(tmp_path / "knock.db")
    yield server
    if server.proc is not None and server.proc.returncode is None:
        server.proc.terminate()
        await server.proc.wait()


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
