"""Where the Upload cases have the device send its file: an HTTP listener of the check's own,
on a free port of the host the device reaches the file server at, up for one case. It takes a
PUT or POST of any path, keeps what arrived (never more than `MAX_BYTES`) and answers 201, so
the case can tell a file that really came from a TransferComplete that only says so."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import web

from knock.hosts import authority
from knock.http_listen import HttpLimits, serve_app

MAX_BYTES = 4 * 1024 * 1024  # a configuration or log file; more is refused with 413
LIMITS = HttpLimits(idle_timeout=10.0, body_timeout=30.0)


@dataclass(frozen=True, slots=True)
class Arrived:
    method: str
    path: str
    size: int
    content_type: str


class UploadSink:
    def __init__(self) -> None:
        self.url = ""  # where the device is told to send the file, once listening
        self.arrived: list[Arrived] = []
        self._came = asyncio.Event()

    async def first(self, within: float) -> Arrived | None:
        """The first file that arrived, waiting up to *within* seconds for one."""
        try:
            await asyncio.wait_for(self._came.wait(), within)
        except TimeoutError:
            return None
        return self.arrived[0]

    async def _take(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.arrived.append(Arrived(request.method, request.path, len(body), request.content_type))
        self._came.set()
        return web.Response(status=201)


@asynccontextmanager
async def upload_sink(files_url: str, name: str) -> AsyncIterator[UploadSink]:
    """A sink listening on the host of *files_url* (the check's file server) until the block
    ends; the device is to send to `<its URL>/<name>`."""
    host = urlsplit(files_url).hostname or "127.0.0.1"
    sink = UploadSink()
    app = web.Application(client_max_size=MAX_BYTES)
    app.router.add_route("PUT", "/{tail:.*}", sink._take)
    app.router.add_route("POST", "/{tail:.*}", sink._take)
    runner = await serve_app(app, "check-uploads", host, 0, LIMITS)
    try:
        sink.url = f"http://{authority(host, int(runner.addresses[0][1]))}/{name}"
        yield sink
    finally:
        await runner.cleanup()
