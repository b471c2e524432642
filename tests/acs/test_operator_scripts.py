"""A GenieACS operator's scripts, unchanged, against `knock serve` and a simulated CPE: a
firmware upgrade the CPE really fetches (upload, queue the download with ?connection_request,
read the task and /faults/), and a preset applied at bootstrap. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import ssl
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from yarl import URL

from knock.auth import DigestChallenge, new_cnonce, select_challenge
from knock.cpe.device import SimulatedCpe, trusting_client
from knock.cpe.trust import device_tls
from knock.cwmp.deviceid import device_key
from knock.notify import TaskFinished
from knock.server import Running, start
from pg_server import emptied
from prom import scrape, value
from serve_support import http_cpe, loopback_settings, settle

WAIT = 20.0
# A bootstrap session that failed on a machine busy with other work is retried by the device
# after its CWMP back-off (5-10 s, then 10-20 s): room for two retries.
BOOTSTRAP_WAIT = 60.0
FIRMWARE = hashlib.sha256(b"firmware").digest() * 20_000  # 640 kB: three store chunks
CR_USERNAME = "Device.ManagementServer.ConnectionRequestUsername"
SERIAL = "FW0001"


@pytest.fixture(params=["sqlite", "postgresql"])
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'knock.db'}"
    return await emptied(request.getfixturevalue("postgres_url"))


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


@contextlib.asynccontextmanager
async def bootstrapped(acs: Running, folder: Path, **options: Any) -> AsyncIterator[SimulatedCpe]:
    """A simulated CPE (made with *options*), reachable by HTTP connection requests, after its
    bootstrap session."""
    async with http_cpe(SERIAL, acs.acs_url, folder, **options) as device:
        device_id = device_key(device.model.device_id())
        # Listening from before each look at the store: a session that ends while the store is
        # read is still heard (waiting for the next session's end after the read would wait for
        # a session that may never come).
        settled = asyncio.Event()
        device.on_settled(settled.set)
        async with asyncio.timeout(BOOTSTRAP_WAIT):  # bootstrapped: Knock set its CR credentials
            while True:
                settled.clear()
                target = await acs.store.get_cr_target(device_id)
                if (
                    target is not None
                    and target.password
                    and not device.state.events
                    and not device.in_session
                ):
                    break
                await settled.wait()
        yield device


@pytest.fixture
async def cpe(acs: Running, tmp_path: Path) -> AsyncIterator[SimulatedCpe]:
    async with bootstrapped(acs, tmp_path) as device:
        yield device


def nbi(acs: Running, path: str) -> str:
    return f"http://127.0.0.1:{acs.nbi_port}{path}"


async def test_a_genieacs_firmware_script_runs_unchanged(acs: Running, cpe: SimulatedCpe) -> None:
    await upgrade(acs, cpe)


async def upgrade(acs: Running, cpe: SimulatedCpe) -> None:
    """The operator's firmware script: upload, queue the download naming the file with a
    connection request, read the task and /faults/; the CPE fetched every byte."""
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
            task_id = posted["_id"]
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


async def test_a_firmware_kept_in_files_dir_is_fetched_whole(
    tmp_path: Path, store_url: str
) -> None:
    settings = replace(
        loopback_settings(tmp_path, cr_provision="random", cr_session_wait=10.0, stun_enable=False),
        store_url=store_url,
        xmpp_enable=False,
        files_dir=str(tmp_path / "files"),
    )
    acs = await start(settings)
    try:
        async with bootstrapped(acs, tmp_path) as cpe:
            await upgrade(acs, cpe)
        [kept] = (tmp_path / "files").iterdir()
        assert kept.read_bytes() == FIRMWARE
    finally:
        await acs.close()


@pytest.fixture
async def secure_acs(tmp_path: Path, store_url: str) -> AsyncIterator[Running]:
    """Files over HTTPS with the lab CA's certificate, each device giving its own CWMP pair by
    Digest to the file server as to the ACS."""
    settings = replace(
        loopback_settings(
            tmp_path,
            cr_provision="random",
            cr_session_wait=10.0,
            stun_enable=False,
            cwmp_auth="digest",
            cwmp_credentials={SERIAL: "fw-pw"},
            tls_self_signed=True,
            files_tls=True,
            files_device_auth=True,
        ),
        store_url=store_url,
        xmpp_enable=False,
    )
    running = await start(settings)
    yield running
    await running.close()


async def get_file(
    http: aiohttp.ClientSession, url: str, tls: ssl.SSLContext, username: str, password: str
) -> tuple[int, bytes]:
    """GET a file as a CPE does: unauthenticated, then answering the Digest challenge."""
    async with http.get(url, ssl=tls) as r:
        assert r.status == 401
        challenge = select_challenge(r.headers.getall("WWW-Authenticate"))
    assert isinstance(challenge, DigestChallenge)
    answer = challenge.authorization(
        "GET", URL(url).raw_path_qs, username, password, cnonce=new_cnonce()
    )
    async with http.get(url, ssl=tls, headers={"Authorization": answer}) as r:
        return r.status, await r.read()


async def test_a_device_downloads_over_https_with_its_own_digest_credentials(
    secure_acs: Running, tmp_path: Path
) -> None:
    acs = secure_acs
    assert acs.ca is not None and acs.files_url is not None
    assert acs.files_url.startswith("https://127.0.0.1:")
    tls = device_tls(str(acs.ca.cert_path))
    device = {"acs_username": SERIAL, "acs_password": "fw-pw"}
    options = {**device, "client_factory": trusting_client(tls), "transfer_tls": tls}
    async with bootstrapped(acs, tmp_path, **options) as cpe:
        await upgrade(acs, cpe)
    url = f"{acs.files_url}fw-2.0.bin"
    async with aiohttp.ClientSession() as http:
        assert await get_file(http, url, tls, SERIAL, "fw-pw") == (200, FIRMWARE)
        assert (await get_file(http, url, tls, SERIAL, "guess"))[0] == 401
        assert (await get_file(http, url, tls, "nobody", "fw-pw"))[0] == 401
        with pytest.raises(aiohttp.ClientError):  # never in the clear: the port speaks TLS
            await http.get(url.replace("https://", "http://"))


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
                task_id = (await r.json())["_id"]
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


INTERVAL = "Device.ManagementServer.PeriodicInformInterval"
PRESET = {
    "weight": 0,
    "precondition": json.dumps({"_deviceId._ProductClass": "KnockBox"}),
    "events": {},
    "configurations": [
        {"type": "value", "name": INTERVAL, "value": 1234},
        {"type": "add_tag", "tag": "configured"},
    ],
}


async def another_session(acs: Running, http: aiohttp.ClientSession, cpe: SimulatedCpe) -> None:
    """A session the NBI's connection request opens, run to its end."""
    device_id = device_key(cpe.model.device_id())
    async with http.post(
        nbi(acs, f"/devices/{device_id}/tasks"),
        params={"connection_request": "", "timeout": "15000"},
    ) as r:
        assert r.status == 200, await r.text()
    await settle(cpe)


async def sets_sent(acs: Running, rpc: str = "SetParameterValues") -> float:
    try:
        return value(await scrape(acs), "knock_rpcs_total", rpc=rpc, caller="acs")
    except KeyError:
        return 0.0


async def test_a_preset_applies_at_bootstrap_and_not_again_once_it_holds(
    acs: Running, tmp_path: Path
) -> None:
    async with aiohttp.ClientSession() as http:
        # Another product's preset, heavier: its precondition keeps it off this device.
        other = {
            "weight": 10,
            "precondition": {"_deviceId._ProductClass": "Other"},
            "configurations": [{"type": "value", "name": INTERVAL, "value": 99}],
        }
        for name, preset in [("interval", PRESET), ("other", other)]:
            async with http.put(nbi(acs, f"/presets/{name}"), json=preset) as r:
                assert r.status == 200, await r.text()
        async with bootstrapped(acs, tmp_path) as cpe:
            device_id = device_key(cpe.model.device_id())
            assert cpe.model.get(INTERVAL) == "1234"  # set on the device in its bootstrap
            params = await acs.store.get_parameters([device_id], [INTERVAL])
            assert [p.value for p in params[device_id]] == ["1234"]
            tagged = {"query": json.dumps({"_tags": "configured"}), "projection": "_tags"}
            async with http.get(nbi(acs, "/devices/"), params=tagged) as r:
                assert await r.json() == [{"_id": device_id, "_tags": ["configured"]}]
            before = await sets_sent(acs)
            assert before >= 1
            # A later session: the preset applies again, and its value already holds.
            await another_session(acs, http, cpe)
            assert await sets_sent(acs) == before
            assert cpe.model.get(INTERVAL) == "1234"


ADDRESSES = "Device.IP.Interface.2.IPv4Address."
OBJECTS = {
    "weight": 0,
    "precondition": "",
    "events": {"0 BOOTSTRAP": False},  # every session but the first: nothing read yet
    "configurations": [
        {
            "type": "add_object",
            "name": ADDRESSES,
            "object": {
                "IPAddress": "192.168.2.1",
                "SubnetMask": "255.255.255.0",
                "_keys": ["IPAddress"],
            },
        },
        {"type": "delete_object", "name": ADDRESSES, "object": {"IPAddress": "192.168.1.1"}},
    ],
}


def addresses(cpe: SimulatedCpe) -> dict[str, str]:
    """Each instance of the LAN interface's IPv4 addresses: its IPAddress."""
    found = cpe.model.get_parameter_values([ADDRESSES])
    return {
        p.name[len(ADDRESSES) :].split(".")[0]: p.value
        for p in found
        if p.name.endswith(".IPAddress")
    }


async def test_object_presets_add_and_delete_instances_by_key_once(
    acs: Running, tmp_path: Path
) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.put(nbi(acs, "/presets/objects"), json=OBJECTS) as r:
            assert r.status == 200, await r.text()
        async with bootstrapped(acs, tmp_path) as cpe:
            device_id = device_key(cpe.model.device_id())
            assert addresses(cpe) == {"1": "192.168.1.1"}  # the bootstrap left it alone
            for _session in range(2):  # the preset applies, then holds: nothing more is sent
                await another_session(acs, http, cpe)
                assert addresses(cpe) == {"2": "192.168.2.1"}
                mask = cpe.model.get(f"{ADDRESSES}2.SubnetMask")
                assert mask == "255.255.255.0"
            assert await sets_sent(acs, "AddObject") == 1
            assert await sets_sent(acs, "DeleteObject") == 1
            stored = await acs.store.get_parameters([device_id], [ADDRESSES])
            assert {p.path: p.value for p in stored[device_id] if p.path.endswith("IPAddress")} == {
                f"{ADDRESSES}2.IPAddress": "192.168.2.1"
            }
