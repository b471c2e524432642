"""`knock serve --workers 2 --cwmp-auth digest` on a real PostgreSQL server, real processes: a
Digest answer is accepted on whichever worker its new TCP connection reaches, and a replayed one
is refused on every worker."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from serve_process import Serve, free_udp_port

from knock.auth import DigestChallenge, new_cnonce, select_challenge

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
