"""An XMPP client kept connected: the asyncio adapter around `knock.xmpp.client`.

One callback protocol per connection (no task while online; a short-lived one only while
connecting or waiting to reconnect), all connections of a process reading into one shared
buffer, and TLS in memory BIOs rather than asyncio's TLS transport, which keeps a 256 KiB
buffer per connection: a simulated fleet holds thousands of these.

A lost connection is retried after TR-181's back-off (Device.XMPP.Connection.{i}.
ServerRetryInitialInterval, ServerRetryIntervalMultiplier, ServerRetryMaxInterval): the n-th
wait is drawn at random between 0 and initial * (multiplier / 1000) ** (n - 1), at most the
maximum; a connection that gets online starts the count over.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import math
import random
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from lxml import etree

from knock.hosts import authority
from knock.xmpp.client import (
    ClientConfig,
    ClientConnection,
    Ended,
    IqRequest,
    IqResult,
    NotOnline,
    Online,
    Output,
    StanzaError,
    StartTls,
)
from knock.xmpp.drive import carry_out
from knock.xmpp.jid import parse_jid
from knock.xmpp.srv import (
    CLIENT_SERVICE,
    DIRECT_TLS_SERVICE,
    SYSTEM_RESOLVER,
    ServiceNotOffered,
    SrvResolver,
)
from knock.xmpp.tls import TlsError, TlsLayer

log = logging.getLogger("knock.xmpp.client")

XMPP_PORT = 5222
DIRECT_TLS_PORT = 5223  # XEP-0368
READ_BUFFER = 64 * 1024
_BUFFER = memoryview(bytearray(READ_BUFFER))  # callbacks run one at a time and copy out at once


class ConnState(enum.StrEnum):
    CONNECTING = "connecting"
    ONLINE = "online"  # bound, initial presence sent
    DISCONNECTED = "disconnected"  # waiting to connect again
    CLOSED = "closed"  # `close` was called


@dataclass(frozen=True, slots=True)
class Status:
    state: ConnState
    reason: str = ""  # why the last connection or attempt ended
    jid: str = ""  # the bound full JID, while online
    tls: bool = False
    retry_in: float | None = None  # seconds until the next attempt, while disconnected


@dataclass(frozen=True, slots=True)
class ServerRetry:
    """TR-181's reconnection back-off, in its own units: seconds, and the multiplier in
    thousandths (2000 doubles the wait each time)."""

    initial_interval: float = 60.0
    interval_multiplier: int = 2000
    max_interval: float = 30720.0

    def __post_init__(self) -> None:
        if not 1000 <= self.interval_multiplier <= 65535:
            raise ValueError("ServerRetryIntervalMultiplier is in thousandths: 1000 to 65535")
        if self.initial_interval <= 0 or self.max_interval <= 0:
            raise ValueError("retry intervals must be positive")

    def wait(self, attempt: int, draw: Callable[[], float] = random.random) -> float:
        """The wait before reconnection *attempt* (1 after the first failure); *draw* gives a
        number in [0, 1)."""
        try:
            bound = self.initial_interval * (self.interval_multiplier / 1000) ** (attempt - 1)
        except OverflowError:
            bound = math.inf
        return draw() * min(bound, self.max_interval)


class ConnectionLost(ConnectionError):
    """The connection ended before the answer came."""


class _Failed(Exception):
    """A connection attempt that did not get online; the text says why."""


RequestHandler = Callable[["XmppClient", IqRequest], None]
StatusHandler = Callable[["XmppClient", Status], None]
_UNAVAILABLE = StanzaError("cancel", "service-unavailable")


def _no_handler(client: XmppClient, request: IqRequest) -> None:
    # RFC 6120 §8.4: a get or set nobody handles is still answered.
    client.answer(request, _UNAVAILABLE)


class XmppClient:
    """One account's connection, kept up until `close`."""

    __slots__ = (
        "_config",
        "_connect_timeout",
        "_direct_tls",
        "_draw",
        "_host",
        "_jid",
        "_on_request",
        "_on_status",
        "_online_event",
        "_password",
        "_port",
        "_protocol",
        "_resolver",
        "_retry",
        "_sleep",
        "_ssl_context",
        "_status",
        "_task",
        "_waiting",
    )

    def __init__(
        self,
        jid: str,
        password: str,
        *,
        host: str | None = None,
        port: int | None = None,
        direct_tls: bool = False,
        ssl_context: ssl.SSLContext | None = None,
        config: ClientConfig | None = None,
        retry: ServerRetry | None = None,
        connect_timeout: float = 10.0,
        on_request: RequestHandler | None = None,
        on_status: StatusHandler | None = None,
        resolver: SrvResolver = SYSTEM_RESOLVER,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        draw: Callable[[], float] = random.random,
    ) -> None:
        """*jid*: the account, with the resource to ask for; *host*: the server to dial (None:
        the targets of the JID domain's SRV records, looked up by *resolver* at each attempt,
        or without records the domain itself, RFC 6120 §3.2); *port*: the port of *host*, or
        without a host the fallback when there is no SRV record (default 5222, 5223 for
        *direct_tls*); *ssl_context*: verifies the server (None: the system's trust store) and
        is used for STARTTLS as the config's TLS policy says, or from the start with
        *direct_tls*.
        *on_request* answers incoming get and set IQs with `answer`; without one they are
        answered service-unavailable. *sleep* and *draw* are the back-off's, for tests."""
        self._jid = parse_jid(jid)
        self._password = password
        self._host = host
        self._port = port or (DIRECT_TLS_PORT if direct_tls else XMPP_PORT)
        self._resolver = resolver
        self._direct_tls = direct_tls
        self._ssl_context = ssl_context
        self._config = config or ClientConfig()
        self._retry = retry or ServerRetry()
        self._connect_timeout = connect_timeout
        self._on_request = on_request or _no_handler
        self._on_status = on_status
        self._sleep = sleep
        self._draw = draw
        self._status = Status(ConnState.DISCONNECTED, "not started")
        self._protocol: _Protocol | None = None
        self._task: asyncio.Task[None] | None = None
        self._waiting: dict[str, asyncio.Future[IqResult]] | None = None
        self._online_event: asyncio.Event | None = None

    @property
    def status(self) -> Status:
        return self._status

    @property
    def online(self) -> bool:
        return self._status.state is ConnState.ONLINE

    @property
    def _closed(self) -> bool:
        return self._status.state is ConnState.CLOSED

    def start(self) -> None:
        """Connect now, and again after every loss, until `close`."""
        if self._task is None and self._protocol is None and not self._closed:
            self._attempt_after(0, "")

    async def wait_online(self) -> Status:
        if not self.online:
            if self._online_event is None:
                self._online_event = asyncio.Event()
            await self._online_event.wait()
        return self._status

    # The timeout is not optional: an IQ nobody answers would otherwise be waited for forever.
    async def request(
        self,
        to: str | None,
        content: etree._Element,
        timeout: float,  # noqa: ASYNC109
    ) -> IqResult:
        """Send an IQ get carrying *content* to *to* (None: the server) and wait for its
        answer. Raises NotOnline, JidError (a bad *to*), TimeoutError or ConnectionLost."""
        protocol = self._protocol
        if protocol is None or not self.online:
            raise NotOnline(f"{self._jid.bare} is not online ({self._status.reason})")
        core = protocol.core
        iq_id, data = core.send_iq(to, content)
        future: asyncio.Future[IqResult] = asyncio.get_running_loop().create_future()
        if self._waiting is None:
            self._waiting = {}
        waiting = self._waiting
        waiting[iq_id] = future
        protocol.write(data)
        try:
            async with asyncio.timeout(timeout):
                return await future
        finally:
            waiting.pop(iq_id, None)
            if not waiting and self._waiting is waiting:
                self._waiting = None
            core.forget(iq_id)

    def answer(self, request: IqRequest, error: StanzaError | None = None) -> None:
        """Answer an incoming request: a result, or *error* as it is written."""
        protocol = self._protocol
        if protocol is not None:
            protocol.write(protocol.core.answer(request, error))

    async def close(self) -> None:
        self._set_status(Status(ConnState.CLOSED, "closed"))
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        protocol = self._protocol
        if protocol is not None:
            await protocol.close()

    # --- connecting -----------------------------------------------------------------------

    def _attempt_after(self, failures: int, reason: str) -> None:
        wait = self._retry.wait(failures, self._draw) if failures else 0.0
        if failures:
            log.info("%s: %s; connecting again in %.1f s", self._jid.bare, reason, wait)
            self._set_status(Status(ConnState.DISCONNECTED, reason, retry_in=wait))
        self._task = asyncio.get_running_loop().create_task(self._attempt(wait, failures))

    async def _attempt(self, wait: float, failures: int) -> None:
        if failures:
            await self._sleep(wait)
        self._set_status(Status(ConnState.CONNECTING, self._status.reason))
        try:
            await self._connect()
        except _Failed as exc:
            self._attempt_after(failures + 1, str(exc))
            return
        # A connection lost as soon as it got online has started the next attempt already.
        if self._task is asyncio.current_task():
            self._task = None

    async def _connect(self) -> None:
        failures: list[str] = []
        for host, port in await self._targets():
            try:
                login = await self._dial(host, port)
            except (OSError, TimeoutError) as exc:
                failures.append(f"cannot connect to {authority(host, port)}: {_why(exc)}")
                continue
            await login  # a refused login is not tried on the next server: it is the account's
            return
        found = "" if self._host else f" (from DNS SRV of {self._jid.domain}, or its fallback)"
        raise _Failed("; ".join(failures) + found)

    async def _dial(self, host: str, port: int) -> asyncio.Future[None]:
        """A TCP connection to *host*; the future the login's end sets."""
        loop = asyncio.get_running_loop()
        login: asyncio.Future[None] = loop.create_future()
        core = ClientConnection(
            self._config, self._jid, self._password, now=loop.time(), tls=self._direct_tls
        )
        async with asyncio.timeout(self._connect_timeout):
            await loop.create_connection(lambda: _Protocol(self, core, login), host, port)
        return login

    async def _targets(self) -> list[tuple[str, int]]:
        if self._host:
            return [(self._host, self._port)]
        service = DIRECT_TLS_SERVICE if self._direct_tls else CLIENT_SERVICE
        try:
            return await self._resolver.lookup(self._jid.domain, self._port, service)
        except ServiceNotOffered as exc:
            raise _Failed(str(exc)) from exc

    # --- called by the protocol -----------------------------------------------------------

    def _made(self, protocol: _Protocol) -> None:
        self._protocol = protocol

    def _online(self, online: Online) -> None:
        self._set_status(Status(ConnState.ONLINE, jid=online.jid, tls=online.tls))
        if self._online_event is not None:
            self._online_event.set()
            self._online_event = None

    def _request(self, request: IqRequest) -> None:
        try:
            self._on_request(self, request)
        except Exception:
            log.exception("%s: the handler of an IQ from %s failed", self._jid, request.sender)

    def _result(self, result: IqResult) -> None:
        future = None if self._waiting is None else self._waiting.get(result.id)
        if future is not None and not future.done():
            future.set_result(result)

    def _lost(self, protocol: _Protocol, reason: str, login: asyncio.Future[None] | None) -> None:
        if protocol is not self._protocol:
            return
        self._protocol = None
        waiting, self._waiting = self._waiting, None
        for future in (waiting or {}).values():
            if not future.done():
                future.set_exception(ConnectionLost(reason))
        if login is not None:
            if not login.done():
                login.set_exception(_Failed(reason))
        elif self._status.state is ConnState.ONLINE:
            self._attempt_after(1, reason)

    def _set_status(self, status: Status) -> None:
        if self._closed:
            return
        self._status = status
        if self._on_status is not None:
            self._on_status(self, status)


class _ClientTls(TlsLayer):
    """The server's memory-BIO TLS layer, wrapped for the client end: the certificate is
    checked against the XMPP domain (RFC 6120 §13.7.2.1), not the host that was dialled."""

    __slots__ = ()

    def __init__(self, context: ssl.SSLContext, domain: str) -> None:
        super().__init__(context, domain)

    @property
    def established(self) -> bool:
        return self._ready


class _Protocol(asyncio.BufferedProtocol):
    """One connection: moves bytes between the socket, TLS and the client core."""

    __slots__ = ("_client", "_closed", "_login", "_reason", "_timer", "_tls", "_transport", "core")

    def __init__(
        self, client: XmppClient, core: ClientConnection, login: asyncio.Future[None]
    ) -> None:
        self._client = client
        self.core = core
        self._login: asyncio.Future[None] | None = login
        self._transport: asyncio.Transport | None = None
        self._tls: _ClientTls | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._reason = "the server closed the connection"
        self._closed: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._client._made(self)
        if self._client._direct_tls:
            self._start_tls()
            self._schedule()  # the login deadline covers a handshake that never ends
        else:
            self._run(self.core.start())

    def get_buffer(self, sizehint: int) -> memoryview:
        return _BUFFER

    def buffer_updated(self, nbytes: int) -> None:
        data = bytes(_BUFFER[:nbytes])
        tls = self._tls
        if tls is not None:
            handshaking = not tls.established
            try:
                data = tls.receive(data)
            except TlsError as exc:
                # As OpenSSL on a socket does, the alert that says why (unknown CA, bad
                # certificate) leaves before the connection closes: the server can tell.
                self._send_raw(tls.outgoing())
                self._reason = f"TLS failed: {exc}"
                return self._transport.close() if self._transport is not None else None
            self._send_raw(tls.outgoing())
            if handshaking and tls.established:
                core = self.core
                self._run(core.start() if self._client._direct_tls else core.tls_established())
        if data:
            self._run(self.core.receive(data, asyncio.get_running_loop().time()))
        if tls is not None and tls.eof:
            self._abort("the server ended TLS")

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if exc is not None and not self.core.ended:
            self._reason = f"connection lost: {_why(exc)}"
        login, self._login = self._login, None
        self._client._lost(self, self._reason, login)
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)

    # --- driving the core -----------------------------------------------------------------

    def _run(self, outputs: list[Output]) -> None:
        carry_out(outputs, self.write, self._act)
        self._schedule()

    def _act(self, output: Output) -> None:
        client = self._client
        if isinstance(output, IqResult):
            client._result(output)
        elif isinstance(output, IqRequest):
            client._request(output)
        elif isinstance(output, Online):
            login, self._login = self._login, None
            client._online(output)
            if login is not None and not login.done():
                login.set_result(None)
        elif isinstance(output, StartTls):
            self._start_tls()
        elif isinstance(output, Ended):
            self._reason = output.describe()
            if self._transport is not None:
                self._transport.close()

    def _start_tls(self) -> None:
        client = self._client
        context = client._ssl_context or ssl.create_default_context()
        self._tls = _ClientTls(context, client._jid.domain)
        try:
            self._tls.receive(b"")  # the ClientHello
        except TlsError as exc:
            return self._abort(f"TLS failed: {exc}")
        self._send_raw(self._tls.outgoing())

    def _schedule(self) -> None:
        due, timer = self.core.due, self._timer
        if timer is not None and (due is None or timer.when() != due):
            timer.cancel()
            self._timer = timer = None
        if due is not None and timer is None:
            self._timer = asyncio.get_running_loop().call_at(due, self._tick)

    def _tick(self) -> None:
        self._timer = None
        self._run(self.core.tick(asyncio.get_running_loop().time()))

    def write(self, data: bytes) -> None:
        if self._tls is not None:
            self._tls.send(data)
            data = self._tls.outgoing()
        self._send_raw(data)

    def _send_raw(self, data: bytes) -> None:
        transport = self._transport
        if data and transport is not None and not transport.is_closing():
            transport.write(data)

    def _abort(self, reason: str) -> None:
        self._reason = reason
        if self._transport is not None:
            self._transport.abort()

    async def close(self) -> None:
        """End the stream and wait for the socket to close."""
        transport = self._transport
        if transport is None:
            return
        if not transport.is_closing():
            self._closed = asyncio.get_running_loop().create_future()
            self._reason = "closed"
            self._run(self.core.close())
        if self._closed is not None:
            await self._closed


def _why(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
