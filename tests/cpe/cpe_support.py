"""Helpers of the simulated-CPE tests: a scripted ACS on a real 127.0.0.1 socket, a clock that
moves only when told, and the types of the fixtures in conftest.py.

A module of its own, not conftest.py, so test modules can import from it by a unique name.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from knock.auth import DigestServer
from knock.cpe.device import SimulatedCpe
from knock.cwmp import (
    Inform,
    InformResponse,
    Rpc,
    TransferComplete,
    TransferCompleteResponse,
    build_envelope,
    parse_envelope,
)

T0 = 1_750_000_000.0  # the fake clock's start, a Unix time
WAIT = 5.0  # longest a test waits for something that should happen at once


class _Timer:
    def __init__(self, due: float, callback: Callable[[], None]) -> None:
        self.due = due
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """Time moves only when a test says so; timers fire from `advance`."""

    def __init__(self, start: float = T0) -> None:
        self.now = start
        self._timers: list[_Timer] = []
        self._armed = asyncio.Event()

    def time(self) -> float:
        return self.now

    def call_later(self, delay: float, callback: Callable[[], None]) -> _Timer:
        timer = _Timer(self.now + delay, callback)
        self._timers.append(timer)
        self._armed.set()
        return timer

    def _active(self) -> list[_Timer]:
        self._timers = [t for t in self._timers if not t.cancelled]
        return self._timers

    async def next_timer(self) -> float:
        """Wait until the device sleeps on a timer; when that timer is due."""
        async with asyncio.timeout(WAIT):
            while not self._active():
                self._armed.clear()
                await self._armed.wait()
        return min(t.due for t in self._timers)

    def advance_to(self, moment: float) -> None:
        self.now = moment
        for timer in [t for t in self._active() if t.due <= moment]:
            timer.cancelled = True
            timer.callback()


@dataclass
class AcsSession:
    """What the fake ACS saw in one session that reached its Inform."""

    inform: Inform
    cwmp_ns: str
    cpe_requests: list[Rpc] = field(default_factory=list)
    responses: list[Rpc] = field(default_factory=list)
    response_ids: list[str | None] = field(default_factory=list)
    cookie_echoed: bool = True
    script: deque[Rpc | bytes] = field(default_factory=deque)
    sent: int = 0  # requests sent so far; their IDs are acs-1, acs-2, ...


Script = list[Rpc | bytes]  # ACS requests for one session; bytes go out as they are


class FakeAcs:
    """Plays the ACS side of CWMP from scripts, one script per session, and records all.

    Sessions may overlap; the session cookie tells them apart, as in a real ACS.
    """

    def __init__(self, digest: DigestServer | None = None, password: str = "") -> None:
        self.digest = digest
        self.password = password
        self.scripts: deque[Script] = deque()
        self.fail_informs = 0  # answer this many Informs with 503
        self.informs: asyncio.Queue[Inform] = asyncio.Queue()  # every Inform, failed ones too
        self.sessions: asyncio.Queue[AcsSession] = asyncio.Queue()  # sessions ended with 204
        self.on_request: Callable[[Rpc | bytes], None] | None = None
        self.on_inform: Callable[[Inform], None] | None = None  # before its InformResponse
        self.challenges = 0
        self._open: dict[str, AcsSession] = {}
        self._keys = 0
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/acs", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/acs"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def next_session(self) -> AcsSession:
        async with asyncio.timeout(WAIT):
            return await self.sessions.get()

    async def next_inform(self) -> Inform:
        async with asyncio.timeout(WAIT):
            return await self.informs.get()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if self.digest is not None and not self._authorized(request):
            self.challenges += 1
            response = web.Response(status=401)
            for value in self.digest.challenge(time.time()):
                response.headers.add("WWW-Authenticate", value)
            return response
        body = await request.read()
        envelope = parse_envelope(body) if body.strip() else None
        if envelope is not None and isinstance(envelope.body, Inform):
            return self._inform(envelope.body, envelope.cwmp_ns, envelope.id)
        session = self._session_of(request)
        if envelope is None:
            return self._next_request(session)
        if isinstance(envelope.body, TransferComplete):
            session.cpe_requests.append(envelope.body)
            return _reply(session, TransferCompleteResponse(), envelope.id)
        session.responses.append(envelope.body)
        session.response_ids.append(envelope.id)
        return self._next_request(session)

    def _authorized(self, request: web.Request) -> bool:
        assert self.digest is not None
        decision = self.digest.verify(
            request.headers.get("Authorization"),
            method="POST",
            uri=request.path_qs,
            lookup=lambda user: self.password if user == "cpe" else None,
            now=time.time(),
        )
        return decision.ok

    def _session_of(self, request: web.Request) -> AcsSession:
        session = self._open.get(request.cookies.get("acs-session", ""))
        if session is None and len(self._open) == 1:
            (session,) = self._open.values()
            session.cookie_echoed = False
        if session is None:
            raise web.HTTPBadRequest(text="no session cookie")
        return session

    def _inform(self, inform: Inform, cwmp_ns: str, id_: str | None) -> web.Response:
        self.informs.put_nowait(inform)
        if self.on_inform is not None:
            self.on_inform(inform)
        if self.fail_informs:
            self.fail_informs -= 1
            return web.Response(status=503, text="ACS busy")
        script = self.scripts.popleft() if self.scripts else []
        session = AcsSession(inform, cwmp_ns, script=deque(script))
        self._keys += 1
        key = f"s{self._keys}"
        self._open[key] = session
        response = _reply(session, InformResponse(1), id_)
        response.set_cookie("acs-session", key)
        return response

    def _next_request(self, session: AcsSession) -> web.Response:
        if not session.script:
            self._open = {k: s for k, s in self._open.items() if s is not session}
            self.sessions.put_nowait(session)
            return web.Response(status=204)
        request = session.script.popleft()
        if self.on_request is not None:
            self.on_request(request)
        if isinstance(request, bytes):
            return _xml(request)
        session.sent += 1
        return _reply(session, request, f"acs-{session.sent}")


def _reply(session: AcsSession, rpc: Rpc, id_: str | None) -> web.Response:
    return _xml(build_envelope(rpc, cwmp_ns=session.cwmp_ns, id=id_))


def _xml(body: bytes) -> web.Response:
    return web.Response(body=body, content_type="text/xml", charset="utf-8")


MakeCpe = Callable[..., SimulatedCpe]
RunCpe = Callable[[SimulatedCpe], asyncio.Task[None]]
