"""The file server: GET and HEAD of the files stored through the NBI (`PUT /files/<name>`).

CPEs fetch what a download task points them at from here. It answers one byte range when asked
(a CPE resuming a firmware image), streams from the store a chunk at a time, and, with
credentials set, asks for HTTP Basic: the same pair Knock puts into the Download RPC.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import logging
import socket
from dataclasses import dataclass

from aiohttp import web

from knock.files.ranges import Unsatisfiable, parse_range
from knock.hosts import bind_sockets
from knock.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FileServerSettings:
    username: str = ""  # with a password: HTTP Basic required
    password: str = ""
    idle_timeout: float = 30.0  # a keep-alive connection, or a client that stops reading


def make_file_app(store: Store, settings: FileServerSettings) -> web.Application:
    app = web.Application()
    server = _FileServer(store, settings)
    app.router.add_route("GET", "/{name}", server.get)
    app.router.add_route("HEAD", "/{name}", server.get)
    return app


async def start_file_server(
    store: Store, settings: FileServerSettings, host: str, port: int, reuse_port: bool = False
) -> web.AppRunner:
    """Listen on every address of *host* (a list, `::` dual-stack: see knock.hosts) at *port*
    (0: a free port). The idle timeout also bounds a request's headers: a client that sends part
    of them and stalls is dropped as an idle connection is."""
    runner = web.AppRunner(
        make_file_app(store, settings), access_log=None, keepalive_timeout=settings.idle_timeout
    )
    await runner.setup()
    for sock in bind_sockets(host, port, socket.SOCK_STREAM, reuse_port=reuse_port):
        await web.SockSite(runner, sock).start()
    return runner


class _FileServer:
    def __init__(self, store: Store, settings: FileServerSettings) -> None:
        self._store = store
        self._settings = settings

    async def get(self, request: web.Request) -> web.StreamResponse:
        self._check_auth(request)
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
        idle = self._settings.idle_timeout
        async for data in self._store.read_file(row.id, start, end):
            async with asyncio.timeout(idle):  # a client that stops reading is dropped
                await response.write(data)
        await response.write_eof()
        return response

    def _check_auth(self, request: web.Request) -> None:
        settings = self._settings
        if not settings.password:
            return
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        try:
            given = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            given = b""
        expected = f"{settings.username}:{settings.password}".encode()
        if scheme.lower() != "basic" or not hmac.compare_digest(given, expected):
            raise web.HTTPUnauthorized(headers={"WWW-Authenticate": 'Basic realm="knock-files"'})
