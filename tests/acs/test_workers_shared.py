"""`knock serve --workers 2` on a real PostgreSQL server, real processes: a Digest answer is
accepted on whichever worker its new TCP connection reaches, and a replayed one is refused on
every worker; a worker that dies while the database is down comes back when it returns."""

from __future__ import annotations

import os
import re
import signal
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from scripted_cpe import ScriptedCpe

from knock.auth import DigestChallenge, new_cnonce, select_challenge
from knock.cpe.acs_client import AcsRefused
from knock.xmlsafe import XmlError
from serve_process import Serve, free_udp_port

ROUNDS = 24  # new connections each; SO_REUSEPORT spreads them over both workers


@pytest.fixture
async def digest_workers(pg_url: str) -> AsyncIterator[Serve]:
    serve = Serve(
        pg_url,
        "--workers", "2", "--stun-port", str(free_udp_port()),
        "--cwmp-auth", "digest", "--cwmp-username", "cpe", "--cwmp-password", "cpe-pw",
        ready_line=b"Knock: 2 worker",
    )  # fmt: skip
    await serve.start()
    try:
        yield serve
    finally:
        await serve.stop()


async def post(url: str, authorization: str | None = None) -> aiohttp.ClientResponse:
    """One POST on a connection of its own."""
    headers = {} if authorization is None else {"Authorization": authorization}
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http,
        http.post(url, data=b"", headers=headers) as response,
    ):
        await response.read()
        return response


async def test_a_digest_answer_is_accepted_on_any_worker_and_a_replay_on_none(
    digest_workers: Serve,
) -> None:
    url = digest_workers.url
    accepted: list[str] = []
    for _ in range(ROUNDS):
        challenged = await post(url)
        assert challenged.status == 401
        challenge = select_challenge(challenged.headers.getall("WWW-Authenticate"))
        assert isinstance(challenge, DigestChallenge)
        authorization = challenge.authorization("POST", "/", "cpe", "cpe-pw", cnonce=new_cnonce())
        answered = await post(url, authorization)
        assert answered.status != 401, answered.headers.getall("WWW-Authenticate")
        accepted.append(authorization)
    for authorization in accepted:  # the same nonce and count again, on any worker
        replayed = await post(url, authorization)
        assert replayed.status == 401
        stale = select_challenge(replayed.headers.getall("WWW-Authenticate"))
        assert isinstance(stale, DigestChallenge) and stale.stale


async def test_workers_come_back_when_the_database_does(own_postgres: Any) -> None:
    """PostgreSQL goes down and a worker dies: the supervisor keeps starting it again, with
    back-off, instead of stopping every worker and exiting; once the database is back, both
    workers serve."""
    serve = Serve(
        own_postgres.url,
        "--workers", "2", "--stun-port", str(free_udp_port()),
        ready_line=b"Knock: 2 worker",
        read_log=True,
    )  # fmt: skip
    await serve.start()
    try:
        assert serve.proc is not None
        pids = [int(p) for p in re.findall(rb"\d+", serve.output[-1].split(b"pids")[1])]
        own_postgres.pause()
        os.kill(pids[1], signal.SIGKILL)
        await serve.next_log(b"worker 1 (pid")  # its exit seen
        first = await serve.next_log(b"did not start (its error is above); trying again in")
        second = await serve.next_log(b"did not start (its error is above); trying again in")
        assert delay(second) > delay(first)  # back-off
        assert serve.proc.returncode is None
        own_postgres.resume()
        await serve.next_line(b"Knock: worker 1 serving")
        # New connections, over both workers. The first transaction on a connection the outage
        # cut fails (500) and the pool replaces them (knock.store.engine); the CPE retries.
        failures = [await session_with_retries(serve.url, f"B{n}") for n in range(6)]
        assert sum(failures) <= 4, failures
        assert serve.proc.returncode is None
    finally:
        await serve.stop()
    assert await serve.wait() == 0


async def session_with_retries(url: str, serial: str) -> int:
    """A whole session, retried as a CPE does after a 500; returns how many attempts failed."""
    for failed in range(3):
        try:
            async with ScriptedCpe(url, serial=serial) as cpe:
                await cpe.inform("1 BOOT")
                assert (await cpe.empty()).status == 204
                return failed
        except (AcsRefused, XmlError):
            continue
    raise AssertionError(f"{serial}: no session in 3 attempts")


def delay(line: bytes) -> float:
    return float(re.findall(rb"trying again in (\d+) s", line)[0])
