"""Slow clients and descriptor pressure against a real `knock serve`, whose open-files limit is
lowered in its own process before it starts (never the machine's or this test process's)."""

from __future__ import annotations

import asyncio
import re
import resource
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from scripted_cpe import ScriptedCpe

from serve_process import free_port

SOFT, HARD = 200, 300  # the process starts with these; knock serve raises SOFT to HARD
TRICKLE = 0.3  # seconds between the bytes a slow client sends
BOUND = 1.0  # the timeouts the server is given, seconds


@dataclass
class Served:
    cwmp: int
    nbi: int
    xmpp: int
    banner: list[str]
    log: Path

    def log_lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines()


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    cwmp, nbi, xmpp = free_port(), free_port(), free_port()
    log = tmp_path / "serve.log"

    def lower_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (SOFT, HARD))

    with log.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "knock", "serve",
            "--cwmp-host", "127.0.0.1", "--cwmp-port", str(cwmp), "--nbi-port", str(nbi),
            "--store-url", f"sqlite:///{tmp_path / 'knock.db'}", "--cr-provision", "off",
            "--no-stun-enable", "--xmpp-host", "127.0.0.1", "--xmpp-port", str(xmpp),
            "--xmpp-tls-port", "0", "--data-dir", str(tmp_path / "data"),
            "--listen-idle-timeout", str(BOUND), "--listen-body-timeout", str(BOUND),
            "--xmpp-login-timeout", str(BOUND),
            stdout=asyncio.subprocess.PIPE, stderr=err, preexec_fn=lower_limit,
        )  # fmt: skip
        assert proc.stdout is not None
        banner: list[str] = []
        try:
            while not banner or not banner[-1].startswith("Open files:"):
                line = await asyncio.wait_for(proc.stdout.readline(), 30)
                assert line, f"knock serve ended before it was ready: {banner}"
                banner.append(line.decode())
            yield Served(cwmp, nbi, xmpp, banner, log)
        finally:
            proc.terminate()
            await proc.wait()


async def test_the_open_files_limit_is_raised_to_the_hard_limit(served: Served) -> None:
    assert f"Open files: limit raised from {SOFT} to {HARD} (the hard limit)\n" in served.banner


async def cut_off_after(port: int, trickle: list[bytes]) -> int:
    """Send *trickle* a piece every TRICKLE seconds; return how many pieces went out before
    the server closed the connection (len(trickle) if it never did)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for sent, piece in enumerate(trickle):
            try:
                writer.write(piece)
                await writer.drain()
                if await asyncio.wait_for(reader.read(), TRICKLE) is not None:
                    return sent  # read() returns (an answer, or b"") only once the server closed
            except TimeoutError:
                continue
            except ConnectionError:
                return sent
        return len(trickle)
    finally:
        writer.close()


@pytest.mark.parametrize("listener", ["cwmp", "nbi", "xmpp"])
async def test_a_client_sending_a_byte_at_a_time_is_cut_off(served: Served, listener: str) -> None:
    header = b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 200
    if listener == "xmpp":
        header = b"<?xml version='1.0'?><stream:stream to='knock.lab' " + b" " * 200
    pieces = [header[i : i + 1] for i in range(len(header))]
    sent = await cut_off_after(getattr(served, listener), pieces)
    # BOUND is 1 s and a piece goes every 0.3 s: cut off after a handful, never at the end.
    assert sent < 30, f"{listener}: {sent} bytes trickled in and the connection is still open"


async def test_a_chunked_body_at_a_byte_a_tick_gets_408(served: Served) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", served.cwmp)
    writer.write(
        b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/xml\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    answer = b""
    for _ in range(60):
        writer.write(b"1\r\n<\r\n")
        await writer.drain()
        try:
            answer = await asyncio.wait_for(reader.read(65536), TRICKLE)
            break
        except TimeoutError:
            continue
    writer.close()
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert b"did not arrive within 1 s" in answer


async def test_a_flood_of_idle_connections_is_shed_and_logged_once(served: Served) -> None:
    """More idle connections than the process has descriptors: the ones beyond the reserve are
    closed at once, the rest time out, no traceback is written, and a device's session runs."""
    loop = asyncio.get_running_loop()

    async def idle(port: int) -> bytes:
        sock = socket.socket()
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, ("127.0.0.1", port))
            # Ends when the server closes it: at once (shed) or after its timeout.
            return await asyncio.wait_for(loop.sock_recv(sock, 1024), 30)
        except ConnectionError:
            return b""
        finally:
            sock.close()

    ports = [served.cwmp] * 250 + [served.xmpp] * 100 + [served.nbi] * 50
    ended = await asyncio.gather(*(idle(port) for port in ports))
    assert len(ended) == 400
    async with ScriptedCpe(f"http://127.0.0.1:{served.cwmp}/") as cpe:
        await cpe.inform("1 BOOT")
    lines = served.log_lines()
    assert not [line for line in lines if "Traceback" in line], "\n".join(lines[:40])
    shed = [line for line in lines if "too few open files left" in line]
    assert 1 <= len(shed) <= 3, "\n".join(lines[:40])  # once per listener and minute at most
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{served.nbi}/metrics") as r,
    ):
        metrics = await r.text()
    counted = re.findall(r'^knock_listen_shed_total\{listener="(\w+)"\} (\d+)', metrics, re.M)
    assert sum(int(n) for _name, n in counted) > 0, metrics


async def test_a_storm_of_bad_requests_is_logged_once_with_its_count(served: Served) -> None:
    """aiohttp logs each unparsable request with a traceback; Knock lets one a minute through."""
    for _ in range(50):
        reader, writer = await asyncio.open_connection("127.0.0.1", served.nbi)
        writer.write(b"GET /devices/?query=" + b"x" * 9000 + b" HTTP/1.1\r\nHost: a\r\n\r\n")
        answer = await reader.read()
        writer.close()
        assert answer.startswith(b"HTTP/1.0 400 "), answer[:100]  # before any version is read
    lines = served.log_lines()
    errors = [line for line in lines if "Error handling request" in line]
    assert len(errors) == 1, "\n".join(errors[:5])
