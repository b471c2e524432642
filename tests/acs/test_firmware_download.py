"""A GenieACS operator's firmware upgrade, unchanged, against `knock serve` and a simulated
CPE that really fetches the bytes: upload, queue the download with ?connection_request, read
the task and /faults/. On SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from knock.cpe.cr_rate import CrPolicy
from knock.cpe.cr_services import CrServices
from knock.cpe.device import SimulatedCpe
from knock.cwmp.deviceid import device_key
from knock.notify import TaskFinished
from knock.server import Running, start
from knock.store.engine import open_database
from knock.store.schema import metadata
from knock.vocab import CrMethod
from serve_support import loopback_settings

WAIT = 20.0
FIRMWARE = hashlib.sha256(b"firmware").digest() * 20_000  # 640 kB: three store chunks
CR_USERNAME = "Device.ManagementServer.ConnectionRequestUsername"


@pytest.fixture(params=["sqlite", "postgresql"])
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'knock.db'}"
    url: str = request.getfixturevalue("postgres_url")
    db = open_database(url)
    try:
        await db.run(metadata.drop_all)
    finally:
        await db.close()
    return url


@pytest.fixture
async def acs(tmp_path: Path, store_url: str) -> AsyncIterator[Running]:
    settings = replace(
        loopback_settings(tmp_path, cr_provision="random", cr_session_wait=10.0, stun_enable=False),
        store_url=store_url,
        xmpp_enable=False,
    )
    running = await start(settings)
    yield running
    await running.close()


@pytest.fixture
async def cpe(acs: Running, tmp_path: Path) -> AsyncIterator[SimulatedCpe]:
    services = CrServices((CrMethod.HTTP,), CrPolicy(rate_limit=0))
    await services.start()
    device = SimulatedCpe("FW0001", "tr181", tmp_path / "state", acs.acs_url)
    services.attach(device)
    device_id = device_key(device.model.device_id())
    settled = asyncio.Event()
    device.on_settled(settled.set)
    running = asyncio.create_task(device.run())
    async with asyncio.timeout(WAIT):  # bootstrapped: Knock set its CR credentials
        while True:
            await settled.wait()
            settled.clear()
            target = await acs.store.get_cr_target(device_id)
            if target is not None and target.password and not device.state.events:
                break
    yield device
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    await services.close()


def nbi(acs: Running, path: str) -> str:
    return f"http://127.0.0.1:{acs.nbi_port}{path}"


async def test_a_genieacs_firmware_script_runs_unchanged(acs: Running, cpe: SimulatedCpe) -> None:
    device_id = device_key(cpe.model.device_id())
    async with aiohttp.ClientSession() as http:
        headers = {"fileType": "1 Firmware Upgrade Image", "oui": "001122", "version": "2.0"}
        async with http.put(nbi(acs, "/files/fw-2.0.bin"), data=FIRMWARE, headers=headers) as r:
            assert r.status == 201, await r.text()
        query = json.dumps({"metadata.version": "2.0"})
        async with http.get(nbi(acs, "/files/"), params={"query": query}) as r:
            [listed] = await r.json()
        assert listed["length"] == len(FIRMWARE)
        assert listed["md5"] == hashlib.md5(FIRMWARE).hexdigest()
        assert listed["metadata"]["fileType"] == "1 Firmware Upgrade Image"

        with acs.hub.subscribe(device_id) as announcements:
            task: dict[str, Any] = {"name": "download", "file": "fw-2.0.bin"}
            async with http.post(
                nbi(acs, f"/devices/{device_id}/tasks"),
                params={"connection_request": "", "timeout": "15000"},
                json=task,
            ) as r:
                posted = await r.json()
                assert r.status == 200, posted  # the device accepted the Download
            assert {k: posted[k] for k in task} == task  # echoed as given
            task_id = int(posted["_id"])
            async with asyncio.timeout(WAIT):  # its TransferComplete, in the next session
                while True:
                    stored = await acs.store.get_task(task_id)
                    assert stored is not None
                    if "transferComplete" in (stored.result or {}):
                        break
                    item = await announcements.next()
                    assert not (isinstance(item, TaskFinished) and item.status == "faulted")
        async with http.get(nbi(acs, "/faults/")) as r:
            assert r.status == 200 and await r.json() == []
    assert stored.status == "done"
    [received] = cpe.received
    assert received.url == f"{acs.files_url}fw-2.0.bin"
    assert (received.size, received.sha256) == (len(FIRMWARE), hashlib.sha256(FIRMWARE).hexdigest())


async def test_a_download_the_cpe_cannot_fetch_shows_in_faults_and_is_retried(
    acs: Running, cpe: SimulatedCpe
) -> None:
    device_id = device_key(cpe.model.device_id())
    task = {
        "name": "download",
        "fileType": "1 Firmware Upgrade Image",
        "url": "http://127.0.0.1:9/fw.bin",  # nothing listens on the discard port
    }
    async with aiohttp.ClientSession() as http:
        with acs.hub.subscribe(device_id) as announcements:
            async with http.post(
                nbi(acs, f"/devices/{device_id}/tasks"),
                params={"connection_request": "", "timeout": "15000"},
                json=task,
            ) as r:
                assert r.status == 200, await r.text()
                task_id = int((await r.json())["_id"])
            async with asyncio.timeout(WAIT):
                while True:
                    item = await announcements.next()
                    if isinstance(item, TaskFinished) and item.status == "faulted":
                        break
        async with http.get(nbi(acs, "/faults/")) as r:
            [fault] = await r.json()
        assert fault["_id"] == f"{device_id}:task_{task_id}"
        assert (fault["code"], fault["channel"]) == ("cwmp.9015", f"task_{task_id}")
        assert "cannot reach the file server" in fault["message"]
        assert set(fault["detail"]["transferComplete"]) == {"startTime", "completeTime"}
        async with http.delete(nbi(acs, f"/faults/{device_id}:task_{task_id}")) as r:
            assert r.status == 200
        async with http.get(nbi(acs, "/faults/")) as r:
            assert await r.json() == []
    stored = await acs.store.get_task(task_id)
    assert stored is not None and stored.status == "queued"
    assert cpe.received == []
