"""How Knock's HTTP servers (CWMP, NBI) are served: on a `Listener` that sheds under
descriptor pressure, with a deadline for request headers and idle keep-alive, and one for the
body.

aiohttp's keep-alive timer runs from the moment a connection opens and from the end of each
response until a complete request header has arrived, so `idle_timeout` bounds a client that
trickles its header a byte at a time as well as one that just sits there. The `body_deadline`
middleware gives the body its own deadline, so a body at one byte a second is cut off too.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass
from typing import Any, cast

from aiohttp import web
from aiohttp.typedefs import Handler

from knock.listener import DEFAULT_RESERVE, Listener
from knock.ratelog import RepeatedLog, quiet_logger

log = logging.getLogger("knock.http")

# How long a refused request's unread body is still drained so the client sees the answer.
LINGER = 1.0


@dataclass(frozen=True, slots=True)
class HttpLimits:
    idle_timeout: float = 30.0  # request header, from connecting or from the last response
    body_timeout: float = 60.0  # the whole request body
    fd_reserve: int = DEFAULT_RESERVE

    def runner_options(self) -> dict[str, Any]:
        return {
            "keepalive_timeout": self.idle_timeout,
            "lingering_time": LINGER,
            # aiohttp logs every bad request line or header with a traceback: once a minute.
            "logger": quiet_logger("knock.http.server"),
        }


def body_deadline(limits: HttpLimits, name: str) -> Any:
    """Middleware: a request whose body has not arrived in full within `limits.body_timeout`
    is answered 408 and its connection closed. The handler reads the body as it always does
    (its own size limit and errors unchanged); it is cancelled only while the body is still
    coming, never once it is all in."""
    slow = RepeatedLog(log, f"{name}: request body not received in {limits.body_timeout:g} s")

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.can_read_body or request.content.is_eof():
            # No body, or all of it in already (a CWMP message in one or two segments): no
            # deadline to keep, and no timer to arm and cancel on every request.
            return await handler(request)
        task = asyncio.current_task()
        assert task is not None
        expired = False

        def expire() -> None:
            nonlocal expired
            if not request.content.is_eof():
                expired = True
                task.cancel()

        timer = asyncio.get_running_loop().call_later(limits.body_timeout, expire)
        try:
            return await handler(request)
        except asyncio.CancelledError:
            if not expired:
                raise
            task.uncancel()
            slow.hit(request.remote or "")
            raise web.HTTPRequestTimeout(
                text=f"the request body did not arrive within {limits.body_timeout:g} s\n",
                headers={"Connection": "close"},
            ) from None
        finally:
            timer.cancel()

    return middleware


class GuardedSite(web.BaseSite):
    """A TCP site on a shedding `Listener` instead of the loop's own accept."""

    __slots__ = ("_host", "_limits", "_listener", "_name", "_port", "_reuse_port")

    def __init__(
        self,
        runner: web.BaseRunner,
        name: str,
        host: str,
        port: int,
        *,
        limits: HttpLimits,
        ssl_context: ssl.SSLContext | None = None,
        reuse_port: bool = False,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context)
        self._name, self._host, self._port = name, host, port
        self._limits = limits
        self._reuse_port = reuse_port
        self._listener: Listener | None = None

    @property
    def name(self) -> str:
        return self._name

    @property
    def listener(self) -> Listener | None:
        """The listener once started, for its counts."""
        return self._listener

    async def start(self) -> None:
        await super().start()
        factory = self._runner.server
        assert factory is not None
        listener = await Listener.open(
            self._name,
            factory,
            self._host,
            self._port,
            ssl_context=self._ssl_context,
            handshake_timeout=self._limits.idle_timeout,
            reuse_port=self._reuse_port,
            reserve=self._limits.fd_reserve,
        )
        # BaseSite.stop() closes it, AppRunner.addresses reads its sockets.
        self._server = cast(asyncio.AbstractServer, listener)
        self._listener = listener


async def serve_app(
    app: web.Application,
    name: str,
    host: str,
    port: int,
    limits: HttpLimits,
    *,
    ssl_context: ssl.SSLContext | None = None,
    reuse_port: bool = False,
) -> web.AppRunner:
    """Set up *app* with the limits and listen; the caller cleans the runner up."""
    app.middlewares.append(body_deadline(limits, name))
    runner = web.AppRunner(app, access_log=None, **limits.runner_options())
    await runner.setup()
    await GuardedSite(
        runner, name, host, port, limits=limits, ssl_context=ssl_context, reuse_port=reuse_port
    ).start()
    return runner


def listeners(runner: web.BaseRunner) -> list[Listener]:
    """The listeners of *runner*'s guarded sites."""
    return [
        site.listener
        for site in runner.sites
        if isinstance(site, GuardedSite) and site.listener is not None
    ]
