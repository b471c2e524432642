"""GenieACS's /files/ routes, the file server CPEs download from, and `knock files`."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from urllib.parse import quote

import aiohttp
import pytest
import typer
from aiohttp import web
from nbi_support import AddDevice, Nbi, ThreadedNbi
from typer.testing import CliRunner

from knock.acs.auth import CpeAuthenticator
from knock.cpe.rpc_handler import QueuedTransfer
from knock.cpe.transfer import TransferFailed, fetch
from knock.files.server import start_file_server
from knock.http_listen import HttpLimits
from knock.nbi.cli import register
from knock.store import Store
from knock.store.files import CHUNK_SIZE

# Five chunks, 1.25 MiB: more than the NBI takes in one JSON body, so streamed.
FIRMWARE = hashlib.sha256(b"fw").digest() * (5 * CHUNK_SIZE // 32)
HEADERS = {
    "fileType": "1 Firmware Upgrade Image",
    "oui": "001122",
    "productClass": "Router",
    "version": "2.0",
}
FileServer = Callable[..., Awaitable[str]]


@pytest.fixture
async def file_server(store: Store) -> AsyncIterator[FileServer]:
    runners: list[web.AppRunner] = []

    async def start(basic: dict[str, str] | None = None) -> str:
        guard = None if basic is None else CpeAuthenticator("basic", basic).check
        runner = await start_file_server(store, "127.0.0.1", 0, HttpLimits(), guard=guard)
        runners.append(runner)
        return f"http://127.0.0.1:{runner.addresses[0][1]}/"

    yield start
    for runner in runners:
        await runner.cleanup()


async def upload(nbi: Nbi, name: str = "fw.bin", data: bytes = FIRMWARE) -> dict[str, object]:
    async with nbi.http.put(f"{nbi.url}/files/{name}", data=data, headers=HEADERS) as r:
        assert r.status == 201, await r.text()
        return dict(await r.json())


async def test_a_file_is_uploaded_listed_and_deleted_as_genieacs_does(nbi: Nbi) -> None:
    stored = await upload(nbi)
    assert stored == {
        "_id": "fw.bin",
        "length": len(FIRMWARE),
        "chunkSize": CHUNK_SIZE,
        "uploadDate": stored["uploadDate"],
        "filename": "fw.bin",
        "md5": hashlib.md5(FIRMWARE).hexdigest(),
        "metadata": HEADERS,
    }
    await upload(nbi, "other.cfg", b"cfg")
    query = json.dumps({"metadata.productClass": "Router", "length": {"$gt": 100}})
    params = {"query": query, "projection": "metadata.version,length"}
    async with nbi.http.get(f"{nbi.url}/files/", params=params) as r:
        assert await r.json() == [
            {"_id": "fw.bin", "length": len(FIRMWARE), "metadata": {"version": "2.0"}}
        ]
    async with nbi.http.get(f"{nbi.url}/files", params={"query": '{"size": 1}'}) as r:
        assert r.status == 400
        assert "files are queried by" in (await r.json())["error"]
    async with nbi.http.delete(f"{nbi.url}/files/fw.bin") as r:
        assert r.status == 200
    async with nbi.http.delete(f"{nbi.url}/files/fw.bin") as r:
        assert r.status == 404
    async with nbi.http.get(f"{nbi.url}/files/") as r:
        assert [doc["_id"] for doc in await r.json()] == ["other.cfg"]


async def test_the_file_server_serves_the_file_whole_and_by_range(
    nbi: Nbi, file_server: FileServer
) -> None:
    await upload(nbi)
    base = await file_server()
    size = len(FIRMWARE)
    async with aiohttp.ClientSession() as http:
        async with http.get(base + "fw.bin") as r:
            assert r.status == 200
            assert r.headers["Accept-Ranges"] == "bytes"
            assert await r.read() == FIRMWARE
        cases = [
            ("bytes=0-9", 206, FIRMWARE[:10], f"bytes 0-9/{size}"),
            (f"bytes={CHUNK_SIZE - 2}-", 206, FIRMWARE[CHUNK_SIZE - 2 :], None),
            ("bytes=-5", 206, FIRMWARE[-5:], f"bytes {size - 5}-{size - 1}/{size}"),
            ("bytes=0-1,5-6", 200, FIRMWARE, None),  # several ranges: the whole file
        ]
        for header, status, body, content_range in cases:
            async with http.get(base + "fw.bin", headers={"Range": header}) as r:
                assert (r.status, await r.read()) == (status, body), header
                if content_range is not None:
                    assert r.headers["Content-Range"] == content_range
        async with http.get(base + "fw.bin", headers={"Range": f"bytes={size}-"}) as r:
            assert r.status == 416 and r.headers["Content-Range"] == f"bytes */{size}"
        stale = {"Range": "bytes=0-9", "If-Range": '"0123"'}  # the file changed: all of it
        async with http.get(base + "fw.bin", headers=stale) as r:
            assert (r.status, len(await r.read())) == (200, size)
        async with http.head(base + "fw.bin") as r:
            assert (r.status, r.headers["Content-Length"]) == (200, str(size))
        async with http.get(base + "nothing.bin") as r:
            assert r.status == 404


async def test_the_file_server_asks_for_basic_credentials_when_set(
    nbi: Nbi, file_server: FileServer
) -> None:
    await upload(nbi, "c.cfg", b"config")
    base = await file_server(basic={"cpe": "pw"})
    async with aiohttp.ClientSession() as http:
        async with http.get(base + "c.cfg") as r:
            assert r.status == 401 and r.headers["WWW-Authenticate"].startswith("Basic")
        wrong = {"Authorization": "Basic " + base64.b64encode(b"cpe:no").decode()}
        async with http.get(base + "c.cfg", headers=wrong) as r:
            assert r.status == 401
        async with http.get(
            base + "c.cfg", headers={"Authorization": aiohttp.encode_basic_auth("cpe", "pw")}
        ) as r:
            assert (r.status, await r.read()) == (200, b"config")


@pytest.mark.parametrize(
    ("scheme", "name", "password", "fault"),
    [
        ("basic", "c.cfg", "pw", None),
        ("basic", "c.cfg", "no", 9012),  # File transfer authentication failure
        ("digest", "my config.cfg", "pw", None),  # signed as sent: percent-encoded
        ("digest", "c.cfg", "no", 9012),
    ],
)
async def test_the_simulated_cpe_answers_the_challenge_with_its_download_pair(
    nbi: Nbi, store: Store, scheme: str, name: str, password: str, fault: int | None
) -> None:
    await upload(nbi, name, b"config")
    guard = CpeAuthenticator(scheme, {"cpe": "pw"}).check
    runner = await start_file_server(store, "127.0.0.1", 0, HttpLimits(), guard=guard)
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/{quote(name)}"
    transfer = QueuedTransfer(
        "Download", "k", "3 Vendor Configuration File", url, "cpe", password, 6, "", 0
    )
    try:
        if fault is None:
            received = await fetch(transfer)
            assert (received.size, received.sha256) == (6, hashlib.sha256(b"config").hexdigest())
            return
        with pytest.raises(TransferFailed) as failed:
            await fetch(transfer)
        assert failed.value.code == fault
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    ("task", "message"),
    [
        ({"name": "download", "file": "missing.bin"}, "file 'missing.bin' names no stored file"),
        (
            {"name": "download", "fileName": "firmware.bin"},
            "fileName 'firmware.bin' names no stored file",
        ),
    ],
)
async def test_a_download_the_device_could_not_fetch_is_refused(
    nbi: Nbi, add_device: AddDevice, task: dict[str, str], message: str
) -> None:
    device = await add_device()
    async with nbi.http.post(f"{nbi.url}/devices/{device}/tasks", json=task) as r:
        assert r.status == 400
        error = (await r.json())["error"]
    assert message in error and "PUT /files/" in error
    assert await nbi.store.find_tasks(None) == []


async def test_a_download_naming_a_stored_file_is_queued_as_given(
    nbi: Nbi, add_device: AddDevice
) -> None:
    device = await add_device()
    await upload(nbi)
    task = {"name": "download", "file": "fw.bin"}
    async with nbi.http.post(f"{nbi.url}/devices/{device}/tasks", json=task) as r:
        assert r.status == 202
        doc = await r.json()
    assert (doc["name"], doc["file"], doc["status"]) == ("download", "fw.bin", "queued")


def test_knock_files_put_ls_rm(threaded_nbi: ThreadedNbi, tmp_path: Path) -> None:
    knock = typer.Typer()
    register(knock)
    image = tmp_path / "fw-3.bin"
    image.write_bytes(FIRMWARE)
    env = {"COLUMNS": "250", "KNOCK_NBI_TOKEN": "s3cret", "KNOCK_NBI_URL": threaded_nbi.url}

    def run(*args: str) -> str:
        result = CliRunner().invoke(knock, list(args), env=env)
        assert result.exit_code == 0, result.output
        return result.stdout

    put = run("files", "put", str(image), "--version", "3.0", "--oui", "001122")
    assert f"stored fw-3.bin: {len(FIRMWARE)} bytes, md5 {hashlib.md5(FIRMWARE).hexdigest()}" in put
    [row] = [line for line in run("files", "ls").splitlines() if "fw-3.bin" in line]
    for cell in (str(len(FIRMWARE)), "1 Firmware Upgrade Image", "001122", "3.0"):
        assert cell in row
    assert "deleted fw-3.bin" in run("files", "rm", "fw-3.bin")
    assert "fw-3.bin" not in run("files", "ls")
    result = CliRunner().invoke(knock, ["files", "rm", "fw-3.bin"], env=env)
    assert result.exit_code == 1 and "no file 'fw-3.bin'" in result.output


async def test_the_file_server_drops_a_client_that_stalls_in_its_headers(
    store: Store,
) -> None:
    """A slow-loris client (headers sent in part, then nothing) is dropped after the idle
    timeout, as an idle keep-alive connection is."""
    runner = await start_file_server(store, "127.0.0.1", 0, HttpLimits(idle_timeout=0.3))
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", runner.addresses[0][1])
        writer.write(b"GET /fw.bin HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        await writer.drain()
        async with asyncio.timeout(10):
            assert await reader.read() == b""  # closed by the server, nothing answered
        writer.close()
    finally:
        await runner.cleanup()
