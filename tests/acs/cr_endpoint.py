"""A scripted device-side connection-request endpoint for the ACS's tests: Digest with the
credentials the ACS provisioned, then a session through a ScriptedCpe, each step chosen by the
test. The simulator's own listener is tested in tests/cpe."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from knock.auth import DigestServer

OnAccepted = Callable[[], Awaitable[None]]


@dataclass
class CrEndpoint:
    username: str = ""
    password: str = ""
    answer: int = 200  # what a correctly authenticated request gets
    on_accepted: OnAccepted | None = None  # the session the device opens after a 200
    requests: int = 0
    sessions: list[asyncio.Task[None]] = field(default_factory=list)
    _digest: DigestServer = field(default_factory=lambda: DigestServer("scripted-cpe"))
    _runner: web.AppRunner | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/cr/device"

    async def start(self) -> CrEndpoint:
        app = web.Application()
        app.router.add_get("/cr/device", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def close(self) -> None:
        for task in self.sessions:
            await task
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        decision = self._digest.verify(
            request.headers.get("Authorization"),
            method="GET",
            uri=request.path_qs,
            lookup=lambda user: self.password if user == self.username else None,
            now=time.time(),
        )
        if not decision.ok:
            response = web.Response(status=401)
            for value in self._digest.challenge(time.time(), stale=decision.verdict == "stale"):
                response.headers.add("WWW-Authenticate", value)
            return response
        if self.answer == 200 and self.on_accepted is not None:
            self.sessions.append(asyncio.create_task(self.on_accepted()))
        return web.Response(status=self.answer)
