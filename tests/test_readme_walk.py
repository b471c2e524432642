"""The README's walk is a contract: every line of its `<!-- walk -->` blocks runs, as written
(only the ports moved to free ones), against a real `knock serve` and `knock sim`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

ROOT = Path(__file__).resolve().parent.parent
DEVICES = [f"00D09E-KnockBox-SIM00000{n}" for n in (1, 2, 3)]
BACKGROUND = "# shell 2"  # a line that stays up, as in a shell of its own
MS = "Device.ManagementServer."


def walk_lines(readme: str) -> list[str]:
    """The shell lines of the blocks marked `<!-- walk -->`, continuations joined."""
    lines: list[str] = []
    for block in re.findall(r"<!-- walk -->\n```sh\n(.*?)```", readme, re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip():
                lines.append(line)
    return lines


def test_the_walk_has_what_a_newcomer_does_first() -> None:
    lines = walk_lines((ROOT / "README.md").read_text())
    assert sum(BACKGROUND in line for line in lines) == 1
    for command in ("knock sim", "knock devices", "knock get", "knock set", "knock tasks"):
        assert any(line.startswith(command) for line in lines), command
    assert any(line.startswith("knock cr") for line in lines)
    assert any(line.startswith("curl -sg") for line in lines)


def free_port(kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def process(
    *command: str, env: dict[str, str], cwd: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    proc = await asyncio.create_subprocess_exec(
        *command,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.terminate()
            await proc.wait()


async def served(nbi: str) -> None:
    """`knock serve` is up, as the person walking waits for its banner: its NBI answers, and the
    lab CA the devices are given (`--ca .knock/ca.pem`) exists."""
    async with aiohttp.ClientSession() as http, asyncio.timeout(60):
        while True:
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"{nbi}/ca.pem") as r:
                    if r.status == 200:
                        return
            await asyncio.sleep(0.2)


async def ready(nbi: str) -> None:
    """Every device informed and reported what the ACS set it up with (the NAT binding and
    the JID), so that each method of the walk can reach it."""
    fields = f"{MS}UDPConnectionRequestAddress,{MS}ConnReqJabberID"
    async with aiohttp.ClientSession() as http, asyncio.timeout(60):
        while True:
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"{nbi}/devices/", params={"projection": fields}) as r:
                    docs = await r.json() if r.status == 200 else []
                    reported = {
                        doc["_id"]
                        for doc in docs
                        if all(
                            doc.get("Device", {}).get("ManagementServer", {}).get(leaf, {})
                            .get("_value")
                            for leaf in ("UDPConnectionRequestAddress", "ConnReqJabberID")
                        )
                    }  # fmt: skip
                    if reported == set(DEVICES):
                        return
            await asyncio.sleep(0.2)


@pytest.mark.slow
async def test_every_line_of_the_readme_walk_runs(tmp_path: Path) -> None:
    cwmp, nbi = free_port(), free_port()
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "COLUMNS": "200",
        "KNOCK_CWMP_HOST": "127.0.0.1",
        "KNOCK_CWMP_PORT": str(cwmp),
        "KNOCK_NBI_PORT": str(nbi),
        "KNOCK_NBI_URL": f"http://127.0.0.1:{nbi}",
        "KNOCK_STUN_HOST": "127.0.0.1",
        "KNOCK_STUN_PORT": str(free_port(socket.SOCK_DGRAM)),
        "KNOCK_XMPP_HOST": "127.0.0.1",
        "KNOCK_XMPP_PORT": "0",
        "KNOCK_FILES_HOST": "127.0.0.1",
        "KNOCK_FILES_PORT": "0",
        "KNOCK_XMPP_TLS_PORT": "0",
        "KNOCK_STORE_URL": f"sqlite:///{tmp_path / 'knock.db'}",
    }
    lines = walk_lines((ROOT / "README.md").read_text())
    outputs: dict[str, str] = {}
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(
            process(sys.executable, "-m", "knock", "serve", env=env, cwd=tmp_path)  # `make run`
        )
        await served(f"http://127.0.0.1:{nbi}")
        for line in lines:
            moved = line.replace(":7547/", f":{cwmp}/").replace(":7557/", f":{nbi}/")
            if BACKGROUND in line:
                await stack.enter_async_context(process("bash", "-c", moved, env=env, cwd=tmp_path))
                await ready(f"http://127.0.0.1:{nbi}")
                continue
            run = await asyncio.create_subprocess_exec(
                "bash", "-c", moved, env=env, cwd=tmp_path,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            out, err = await asyncio.wait_for(run.communicate(), 60)
            assert run.returncode == 0, f"{line}\n{out.decode()}\n{err.decode()}"
            outputs[line] = out.decode()

    def output(command: str) -> list[str]:
        return [out for line, out in outputs.items() if line.startswith(command)]

    [devices] = output("knock devices")
    assert all(device in devices for device in DEVICES)
    [get] = output("knock get")
    assert "Device.DeviceInfo.SoftwareVersion" in get
    [set_] = output("knock set")
    assert re.search(r"PeriodicInformInterval\s.*300", set_)
    [tasks] = output("knock tasks")
    assert "getParameterValues" in tasks and "setParameterValues" in tasks
    crs = output("knock cr")
    assert len(crs) == 2 and all("delivered by" in out for out in crs)
    assert "delivered by udp" in crs[1]
    [query, post] = output("curl")
    assert [doc["_id"] for doc in json.loads(query)] == [DEVICES[0]]
    task = json.loads(post)
    assert (task["name"], task["status"]) == ("getParameterValues", "done")
