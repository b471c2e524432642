"""`knock serve` as a real process for the tests that kill it or run several on one database."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import aiohttp


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def gone(pid: int) -> bool:
    """Dead, a zombie at most: its sockets are closed."""
    try:
        return "\nState:\tZ" in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True


def children(pid: int) -> list[int]:
    """The processes `pid` started (a supervisor's workers)."""
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


class Serve:
    """One `knock serve` command (with --workers, several processes) on its own ports."""

    def __init__(
        self,
        store_url: str,
        *flags: str,
        ready_line: bytes = b"STUN (TR-111)",
        read_log: bool = False,  # the test reads the log (stderr) with next_log, so it drains it
    ) -> None:
        self.store_url = store_url
        self.read_log = read_log
        self.flags = flags
        self.ready_line = ready_line
        self.cwmp, self.nbi, self.files = free_port(), free_port(), free_port()
        self.proc: asyncio.subprocess.Process | None = None
        self.output: list[bytes] = []

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "knock", "serve",
            "--cwmp-host", "127.0.0.1", "--cwmp-port", str(self.cwmp),
            "--nbi-port", str(self.nbi), "--store-url", self.store_url,
            "--log-level", "warning", "--cr-provision", "off",
            "--stun-host", "127.0.0.1", "--stun-port", "0", "--no-xmpp-enable",
            "--files-host", "127.0.0.1", "--files-port", str(self.files),
            *self.flags,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE if self.read_log else None,
        )  # fmt: skip
        assert self.proc.stdout is not None
        while True:  # every listener is up once the last banner line is out
            line = await asyncio.wait_for(self.proc.stdout.readline(), 30)
            assert line, f"knock serve ended before it was ready: {self.output}"
            self.output.append(line)
            if line.startswith(self.ready_line):
                return

    async def next_line(self, containing: bytes, within: float = 120) -> bytes:
        """The next line of the command's output that contains `containing`."""
        assert self.proc is not None and self.proc.stdout is not None
        return await self._next(self.proc.stdout, containing, within)

    async def next_log(self, containing: bytes, within: float = 120) -> bytes:
        """The next line of its log (read_log=True) that contains `containing`."""
        assert self.proc is not None and self.proc.stderr is not None
        return await self._next(self.proc.stderr, containing, within)

    async def _next(self, stream: asyncio.StreamReader, containing: bytes, within: float) -> bytes:
        async with asyncio.timeout(within):
            while True:
                line = await stream.readline()
                assert line, f"knock serve ended: {self.output}"
                self.output.append(line)
                if containing in line:
                    return line

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)

    async def wait(self) -> int:
        assert self.proc is not None
        return await self.proc.wait()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            await self.proc.wait()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.cwmp}/"

    @property
    def nbi_url(self) -> str:
        return f"http://127.0.0.1:{self.nbi}"

    async def post_task(self, device_id: str, task: dict[str, Any]) -> str:
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{self.nbi_url}/devices/{device_id}/tasks", json=task) as r,
        ):
            assert r.status == 202, await r.text()
            return str((await r.json())["_id"])

    async def task(self, task_id: str) -> dict[str, Any]:
        """The task as it is now, done or not (GET /tasks/?history)."""
        query = f'{{"_id":"{task_id}"}}'
        params = {"query": query, "history": "true"}
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{self.nbi_url}/tasks/", params=params) as r,
        ):
            [found] = await r.json()
            return dict(found)
