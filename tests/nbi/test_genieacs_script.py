"""A script written for GenieACS's NBI, replayed against a real `knock serve` process and a
simulated TR-181 CPE, on SQLite and on PostgreSQL: queue a task and poll `/tasks/` until it is
gone, read `_object`/`_writable` from the device document, search with `$regex`, delete a
device twice. Each step is what such scripts do; each answer is what GenieACS gives."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

from knock.cpe.device import SimulatedCpe
from knock.cwmp.deviceid import device_key
from pg_server import emptied
from serve_process import Serve
from serve_support import http_cpe, settle

WAIT = 20.0
OBJECT_ID = re.compile(r"[0-9a-f]{24}")
PII = "Device.ManagementServer.PeriodicInformInterval"
SW = "Device.DeviceInfo.SoftwareVersion"
CR_USERNAME = "Device.ManagementServer.ConnectionRequestUsername"


@pytest.fixture(params=["sqlite", "postgresql"])
async def serve(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Serve]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'knock.db'}"
    else:
        url = await emptied(request.getfixturevalue("postgres_url"))
    # The later --cr-provision wins: Knock sets the CPE's credentials, then reaches it by HTTP.
    running = Serve(url, "--cr-provision", "random")
    await running.start()
    yield running
    await running.stop()


class Script:
    """The HTTP calls of a GenieACS script, to one NBI."""

    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        self.http = http
        self.base = base

    async def call(
        self, method: str, path: str, body: Any = None, **params: str
    ) -> tuple[int, str, Any]:
        async with self.http.request(
            method, self.base + path, params=params, json=body
        ) as response:
            text = await response.text()
            return response.status, response.reason or "", json.loads(text) if text else None

    async def tasks(self, query: dict[str, Any], **params: str) -> list[dict[str, Any]]:
        status, _, found = await self.call("GET", "/tasks/", query=json.dumps(query), **params)
        assert status == 200, found
        return list(found)

    async def devices(self, query: dict[str, Any], **params: str) -> list[dict[str, Any]]:
        status, _, found = await self.call("GET", "/devices/", query=json.dumps(query), **params)
        assert status == 200, found
        return list(found)


@contextlib.asynccontextmanager
async def simulated_cpe(serve: Serve, script: Script, folder: Path) -> AsyncIterator[SimulatedCpe]:
    """A TR-181 CPE that answers HTTP connection requests, once Knock has set its credentials."""
    async with http_cpe("GS0001", serve.url, folder) as device:
        device_id = device_key(device.model.device_id())
        while True:  # bootstrapped: its sessions have ended and the NBI shows the credentials
            await settle(device)
            found = await script.devices({"_id": device_id}, projection=CR_USERNAME)
            if found and not device.state.events and found[0].get("Device"):
                break
        yield device


async def test_a_genieacs_script_runs_unchanged(serve: Serve, tmp_path: Path) -> None:
    async with aiohttp.ClientSession() as http:
        script = Script(http, serve.nbi_url)
        async with simulated_cpe(serve, script, tmp_path) as cpe:
            device_id = device_key(cpe.model.device_id())
            await _queue_and_poll_until_gone(script, cpe, device_id)
            await _object_and_writable(script, device_id)
            await _regex(script, device_id)
            await _ids_never_reused(script, device_id)
        await _delete_twice(script, device_id)


async def _run(script: Script, device_id: str, task: dict[str, Any]) -> dict[str, Any]:
    path = f"/devices/{quote(device_id, safe='')}/tasks"
    status, reason, done = await script.call(
        "POST", path, task, connection_request="", timeout=str(int(WAIT * 1000))
    )
    assert (status, reason) == (200, "OK"), done.get("fault")
    return dict(done)


async def _queue_and_poll_until_gone(script: Script, cpe: SimulatedCpe, device_id: str) -> None:
    path = f"/devices/{quote(device_id, safe='')}/tasks"
    task = {"name": "setParameterValues", "parameterValues": [[PII, 600, "xsd:unsignedInt"]]}
    status, reason, queued = await script.call("POST", path, task)
    assert (status, reason) == (202, "Task queued but not processed")
    task_id = queued["_id"]
    assert OBJECT_ID.fullmatch(task_id)
    [pending] = await script.tasks({"_id": task_id})
    assert (pending["name"], pending["device"]) == ("setParameterValues", device_id)
    # The script wakes the device (an empty POST) and polls until the task is gone.
    status, _, woken = await script.call("POST", path, None, connection_request="")
    assert status == 200, woken
    polls = 0
    while await script.tasks({"_id": task_id}):
        polls += 1
        assert polls < 10, "the task never left /tasks/"
        await settle(cpe)
    [done] = await script.tasks({"_id": task_id}, history="")  # Knock's history keeps it
    assert done["status"] == "done"
    assert await script.tasks({"device": device_id}) == []  # nothing pending


async def _object_and_writable(script: Script, device_id: str) -> None:
    await _run(
        script, device_id, {"name": "refreshObject", "objectName": "Device.ManagementServer"}
    )
    # Reading and setting values afterwards keeps what GetParameterNames told.
    await _run(script, device_id, {"name": "getParameterValues", "parameterNames": [PII]})
    await _run(script, device_id, {"name": "setParameterValues", "parameterValues": [[PII, 900]]})
    await _run(script, device_id, {"name": "addObject", "objectName": "Device.IP.Interface"})
    [doc] = await script.devices({"_id": device_id})
    server = doc["Device"]["ManagementServer"]
    assert server["_object"] is True and server["_writable"] is False
    interval = server["PeriodicInformInterval"]
    assert (interval["_object"], interval["_value"], interval["_writable"]) == (False, 900, True)
    assert doc["Device"]["DeviceInfo"]["SoftwareVersion"]["_object"] is False
    assert doc["Device"]["DeviceInfo"]["_object"] is True
    # addObject's parent: an object, writable (it took the AddObject), with its timestamp.
    interfaces = doc["Device"]["IP"]["Interface"]
    assert (interfaces["_object"], interfaces["_writable"]) == (True, True)
    assert "_timestamp" in interfaces
    # Every instance is an object; the one added has its own row and timestamp (the others
    # Knock knows from values only: docs/nbi.md).
    instances = [interfaces[k] for k in interfaces if not k.startswith("_")]
    assert len(instances) == 2 and all(i["_object"] is True for i in instances)
    assert sum("_timestamp" in i for i in instances) == 1


async def _regex(script: Script, device_id: str) -> None:
    oui = device_id.split("-")[0]
    assert [d["_id"] for d in await script.devices({"_id": {"$regex": f"^{oui}-"}})] == [device_id]
    assert await script.devices({"_id": {"$regex": "^NOPE"}}) == []
    found = await script.devices({SW: {"$regex": r"^\d+\.\d+"}}, projection=SW)
    assert [d["_id"] for d in found] == [device_id]
    assert await script.devices({SW: {"$regex": "(a+)+b"}}) == []  # linear on either store
    found = await script.devices({CR_USERNAME: {"$regex": ".", "$options": "i"}})
    assert [d["_id"] for d in found] == [device_id]
    status, _, body = await script.call(
        "GET", "/devices/", query=json.dumps({SW: {"$regex": "(a)\\1"}})
    )
    assert status == 400 and "read differently" in body["error"]


async def _ids_never_reused(script: Script, device_id: str) -> None:
    path = f"/devices/{quote(device_id, safe='')}/tasks"
    _, _, first = await script.call("POST", path, {"name": "reboot"})
    status, _, _ = await script.call("DELETE", f"/tasks/{first['_id']}")
    assert status == 200
    _, _, second = await script.call("POST", path, {"name": "reboot"})
    assert OBJECT_ID.fullmatch(second["_id"]) and second["_id"] != first["_id"]
    status, _, body = await script.call("DELETE", f"/tasks/{first['_id']}")
    assert status == 404 and "GET /tasks/ lists" in body["error"]
    assert [t["_id"] for t in await script.tasks({"device": device_id})] == [second["_id"]]


async def _delete_twice(script: Script, device_id: str) -> None:
    for _ in range(2):
        status, _, _ = await script.call("DELETE", f"/devices/{quote(device_id, safe='')}")
        assert status == 200
    assert await script.devices({"_id": device_id}) == []
    assert await script.tasks({"device": device_id}, history="") == []
