"""The file server: GET and HEAD of the files stored through the NBI (`PUT /files/<name>`).

CPEs fetch what a download task points them at from here. It answers one byte range when asked
(a CPE resuming a firmware image), streams from the store a chunk at a time, and is served like
CWMP (knock.http_listen: the listen limits, dual-stack hosts, HTTPS with the CWMP certificate).
With a guard it asks for credentials: the CWMP authenticator, so each device gives its own pair
by Digest (or Basic) as it does to the ACS, or a Basic-only one for a shared pair; either way the
pair is what Knock puts into the Download RPC.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable

from aiohttp import web

from knock.files.ranges import Unsatisfiable, parse_range
from knock.http_listen import HttpLimits, serve_app
from knock.store import Store

log = logging.getLogger(__name__)

Guard = Callable[[web.Request], Awaitable[web.Response | None]]
"""None when the request may proceed, else the 401 to send (knock.acs.auth.CpeAuthenticator)."""


def make_file_app(
    store: Store, write_timeout: float, guard: Guard | None = None
) -> web.Application:
    app = web.Application()
    server = _FileServer(store, write_timeout, guard)
    app.router.add_route("GET", "/{name}", server.get)
    app.router.add_route("HEAD", "/{name}", server.get)
    return app


async def start_file_server(
    store: Store,
    host: str,
    port: int,
    limits: HttpLimits,
    *,
    guard: Guard | None = None,
    ssl_context: ssl.SSLContext | None = None,
    reuse_port: bool = False,
) -> web.AppRunner:
    """Listen on every address of *host* (a list, `::` dual-stack: see knock.hosts) at *port*
    (0: a free port). A client that stops reading for `limits.idle_timeout` is dropped, as one
    that stalls in its headers is."""
    app = make_file_app(store, limits.idle_timeout, guard)
    return await serve_app(
        app, "files", host, port, limits, ssl_context=ssl_context, reuse_port=reuse_port
    )


class _FileServer:
    def __init__(self, store: Store, write_timeout: float, guard: Guard | None) -> None:
        self._store = store
        self._write_timeout = write_timeout
        self._guard = guard

    async def get(self, request: web.Request) -> web.StreamResponse:
        if self._guard is not None and (refused := await self._guard(request)) is not None:
            return refused
        name = request.match_info["name"]
        row = await self._store.get_file(name)
        if row is None:
            raise web.HTTPNotFound(
                text=f"no file {name!r}; PUT /files/<name> on the NBI stores one"
            )
        headers = {
            "Accept-Ranges": "bytes",
            "ETag": f'"{row.md5}"',
            "Last-Modified": row.uploaded.strftime("%a, %d %b %Y %H:%M:%S GMT"),
            "Content-Type": "application/octet-stream",
        }
        try:
            wanted = parse_range(request.headers.get("Range"), row.length)
        except Unsatisfiable:
            raise web.HTTPRequestRangeNotSatisfiable(
                headers={"Content-Range": f"bytes */{row.length}"}
            ) from None
        if wanted is not None and request.headers.get("If-Range", f'"{row.md5}"') != f'"{row.md5}"':
            wanted = None  # the file changed since the client's first part: send it whole
        start, end = (0, row.length) if wanted is None else (wanted.start, wanted.end)
        response = web.StreamResponse(status=200 if wanted is None else 206, headers=headers)
        if wanted is not None:
            response.headers["Content-Range"] = wanted.content_range(row.length)
        response.content_length = end - start
        await response.prepare(request)
        if request.method == "HEAD":
            return response
        async for data in self._store.read_file(row.id, start, end):
            async with asyncio.timeout(
                self._write_timeout
            ):  # a client that stops reading is dropped
                await response.write(data)
        await response.write_eof()
        return response
