"""Knock's built-in XMPP server: the asyncio adapter around the sans-IO connection core.

One listener for STARTTLS (5222) and one for direct TLS (XEP-0368, 5223), one protocol object
per connection driven by callbacks (no task or thread per connection), one routing table of
full JIDs, and one sweeper for keep-alives and dead connections. All connections read into a
single buffer: callbacks run one at a time and copy out what they read at once. What is written
to a connection waits for the end of the event loop's round: the stanzas routed to one connection
in a round (results from many devices to one ACS) leave in one system call.

The certificate is the operator's (`Listen.cert`) or one the lab CA in the data folder signs;
`reload` (SIGHUP, or a change of the files seen by the sweeper) serves renewed files to new
logins while the connections already up keep theirs.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from knock.certcheck import check_server_pair
from knock.labca import LabCa, listen_names
from knock.listener import DEFAULT_RESERVE, Listener
from knock.ratelog import RepeatedLog
from knock.tlsutil import server_context
from knock.xmpp.accounts import Lookup
from knock.xmpp.c2s import (
    C2S,
    Action,
    Authenticated,
    AuthFailed,
    Bound,
    Closed,
    Pause,
    Policy,
    PresenceChanged,
    Refused,
    Route,
    StartTls,
)
from knock.xmpp.drive import carry_out
from knock.xmpp.jid import Jid
from knock.xmpp.limits import Guard
from knock.xmpp.sasl import NeedCredentials, ScramCredentials
from knock.xmpp.stream import StreamCondition, serialize
from knock.xmpp.tls import CLOSED_IN_HANDSHAKE, TlsError, TlsLayer

log = logging.getLogger("knock.xmpp")

READ_BUFFER = 64 * 1024
# A client that leaves this much of what it was sent unread is cut off, so that one stalled
# reader cannot hold the server's memory.
MAX_UNREAD = 1024 * 1024
SHUTDOWN_GRACE = 5.0


@dataclass(frozen=True, slots=True)
class Listen:
    host: str = "0.0.0.0"
    port: int = 5222  # 0: any free port (tests)
    tls_port: int | None = 5223  # direct TLS; None: no such listener
    cert: Path | None = None
    key: Path | None = None
    data_dir: Path = Path(".knock")  # where the lab CA signs a pair when none is given
    names: tuple[str, ...] = ()  # for the lab certificate, besides the domain and the host
    fd_reserve: int = DEFAULT_RESERVE  # open files kept free: see knock.listener


class LoginOutcome(StrEnum):
    OK = "ok"
    TLS_REFUSED = "tls-refused"  # the client aborted the handshake over our certificate


@dataclass(frozen=True, slots=True)
class LoginEvent:
    """How a client's login went, for whoever keeps devices' last outcome."""

    address: str  # the client's IP address
    outcome: LoginOutcome
    username: str = ""  # the account, once SASL named it
    detail: str = ""  # for a refusal, the alert: unknown-ca, bad-certificate, ...


@dataclass(slots=True)
class Stats:
    connections: int = 0  # open now
    connections_total: int = 0
    authenticated: int = 0  # open now
    bound: int = 0  # open now, with a resource
    available: int = 0  # open now, after initial presence
    stanzas_routed: int = 0
    auth_failures: Counter[str] = field(default_factory=Counter)
    stream_errors: Counter[str] = field(default_factory=Counter)  # sent, by condition
    stanza_errors: Counter[str] = field(default_factory=Counter)  # answered or dropped
    tls_failures: int = 0
    paused: int = 0  # times a connection's reading was paused by the shaper
    tls_refusals: Counter[str] = field(default_factory=Counter)  # by alert the client sent

    def snapshot(self) -> dict[str, Any]:
        return {
            f.name: {str(k): n for k, n in value.items()} if isinstance(value, Counter) else value
            for f in fields(self)
            for value in [getattr(self, f.name)]
        }


class XmppServer:
    def __init__(
        self,
        policy: Policy,
        accounts: Lookup,
        listen: Listen | None = None,
        on_login: Callable[[LoginEvent], None] | None = None,
    ) -> None:
        self.policy = policy
        self.on_login = on_login
        self.stats = Stats()
        self._accounts = accounts
        self._listen = listen or Listen()
        self._sessions: dict[Jid, _Connection] = {}
        self._connections: set[_Connection] = set()
        self._servers: list[Listener] = []
        self.guard = Guard(policy.limits) if policy.limits is not None else None
        self._lookup_failed = RepeatedLog(log, "XMPP account lookup failed")
        self._lookups: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self.read_buffer = memoryview(bytearray(READ_BUFFER))
        self.tls_context: ssl.SSLContext | None = None
        self._all_gone: asyncio.Event | None = None
        self._unflushed: list[_Connection] = []
        self.certificate: Path | None = None
        self.ca_file: Path | None = None  # the lab CA that signed the certificate, if it did
        self._files: tuple[tuple[int, int], ...] | None = None  # the pair's (mtime, size) served
        # Told each certificate file served after a reload (the ACS's own client trusts it).
        self.on_certificate: Callable[[Path], None] | None = None
        self.port = 0
        self.tls_port: int | None = None

    def add_service_account(self, username: str) -> None:
        """Let *username* address every account, unshaped and uncapped, as the ACS does
        (`knock check`'s second JID, which must reach the device to see it refuse)."""
        limits = self.policy.limits
        if limits is None or self.guard is None:
            return
        limits = replace(limits, service_accounts=limits.service_accounts | {username})
        self.policy = replace(self.policy, limits=limits)
        self.guard.limits = limits

    @property
    def listeners(self) -> list[Listener]:
        return list(self._servers)

    @property
    def sessions(self) -> Mapping[Jid, object]:
        """Bound connections by full JID."""
        return self._sessions

    async def start(self) -> None:
        """Raises `CertificateError` when the operator's certificate cannot serve the domain."""
        listen = self._listen
        self._load_certificate()
        self.port = await self._serve(listen.port, direct_tls=False)
        if listen.tls_port is not None:
            self.tls_port = await self._serve(listen.tls_port, direct_tls=True)
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep())
        log.info(
            "XMPP server for %s on %s port %s, direct TLS port %s",
            self.policy.domain,
            listen.host,
            self.port,
            self.tls_port,
        )

    def _pair(self) -> tuple[Path, Path]:
        listen = self._listen
        if listen.cert is not None and listen.key is not None:
            return listen.cert, listen.key
        return listen.data_dir / "xmpp-cert.pem", listen.data_dir / "xmpp-key.pem"

    def _load_certificate(self) -> None:
        listen = self._listen
        cert, key = self._pair()
        if listen.cert is None or listen.key is None:
            names = [self.policy.domain, *listen.names, *listen_names(listen.host)]
            ca = LabCa.ensure(listen.data_dir)
            ca.ensure_leaf(cert, key, names)
            self.ca_file = ca.cert_path
        self._files = _stamp(cert, key)
        check_server_pair(cert, key, self.policy.domain, "xmpp_tls_cert/xmpp_tls_key")
        self.tls_context = server_context(cert, key)
        self.certificate = cert
        if self.on_certificate is not None:
            self.on_certificate(cert)

    def reload(self) -> bool:
        """Serve the certificate files as they are now (renewed): logins from now on get them;
        connections already up keep theirs. A pair that does not fit is logged and the one
        served stays."""
        try:
            self._load_certificate()
        except (OSError, ValueError, ssl.SSLError) as exc:  # CertificateError is a ValueError
            log.error("XMPP certificate not reloaded, still serving the previous one: %s", exc)
            return False
        log.info("XMPP certificate reloaded from %s for new logins", self.certificate)
        return True

    def serve_context(self, context: ssl.SSLContext) -> ssl.SSLContext:
        """Serve *context* to new logins (`knock check` offers a wrong certificate this way);
        returns the one served so far, to put back."""
        served, self.tls_context = self.tls_context, context
        assert served is not None, "start the server first"
        return served

    def peer(self, jid: Jid) -> str:
        """The address the client bound as *jid* (a full JID, or any resource of a bare one)
        connected from; "" when none is bound."""
        connection = self._sessions.get(jid) or next(
            (c for bound, c in self._sessions.items() if bound.bare == jid), None
        )
        return connection.address if connection is not None else ""

    def drop(self, jid: Jid) -> bool:
        """End the stream bound as *jid* (system-shutdown), as a restart would for it alone;
        False when no such stream is bound."""
        connection = self._sessions.get(jid)
        if connection is None:
            return False
        connection.run(connection.c2s.close(StreamCondition.SYSTEM_SHUTDOWN))
        return True

    def _files_changed(self) -> bool:
        return _stamp(*self._pair()) != self._files

    @property
    def listen(self) -> Listen:
        return self._listen

    async def restart(self) -> None:
        """Close every stream and listen again on the same ports, as a restarted server would
        (`knock check` watches devices reconnect)."""
        await self.close()
        self._servers.clear()
        self._listen = replace(self._listen, port=self.port, tls_port=self.tls_port)
        await self.start()

    async def _serve(self, port: int, *, direct_tls: bool) -> int:
        server = await Listener.open(
            "XMPP direct TLS" if direct_tls else "XMPP",
            lambda: _Connection(self, direct_tls=direct_tls),
            self._listen.host,
            port,
            backlog=4096,
            reserve=self._listen.fd_reserve,
        )
        self._servers.append(server)
        return server.port

    @property
    def sockets(self) -> list[socket.socket]:
        """The client port's listening sockets (the direct-TLS port has the same addresses)."""
        return [
            sock for server in self._servers if server.port == self.port for sock in server.sockets
        ]

    async def close(self) -> None:
        """Stop listening, end every stream with system-shutdown, and wait for them to go."""
        for server in self._servers:
            server.close()
        for task in [*self._lookups, *([self._sweeper] if self._sweeper else [])]:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self._all_gone = asyncio.Event()
        for connection in list(self._connections):
            connection.run(connection.c2s.close(StreamCondition.SYSTEM_SHUTDOWN))
        if self._connections:
            try:
                await asyncio.wait_for(self._all_gone.wait(), SHUTDOWN_GRACE)
            except TimeoutError:
                for connection in list(self._connections):
                    connection.abort()
        for server in self._servers:
            await server.wait_closed()

    async def _sweep(self) -> None:
        policy = self.policy
        period = min(policy.ping_interval, policy.ping_timeout, policy.login_timeout) / 4
        period = min(max(period, 0.01), 5.0)
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(period)
            now = loop.time()
            for connection in list(self._connections):
                connection.run(connection.c2s.tick(now))
            if self._files_changed():
                self.reload()

    # --- called by connections ------------------------------------------------------------

    def _opened(self, connection: _Connection) -> None:
        self._connections.add(connection)
        self.stats.connections += 1
        self.stats.connections_total += 1

    def _lost(self, connection: _Connection) -> None:
        if connection not in self._connections:
            return
        self._connections.discard(connection)
        stats, c2s = self.stats, connection.c2s
        stats.connections -= 1
        stats.authenticated -= c2s.authenticated
        stats.available -= c2s.available
        jid = c2s.jid
        if jid is not None:
            stats.bound -= 1
            if self._sessions.get(jid) is connection:
                del self._sessions[jid]
                if self.guard is not None:
                    self.guard.sessions.discard(jid)
        if self._all_gone is not None and not self._connections:
            self._all_gone.set()

    def _act(self, connection: _Connection, action: Action) -> None:
        stats = self.stats
        if isinstance(action, Route):
            self._route(connection, action)
        elif isinstance(action, NeedCredentials):
            self._lookup(connection, action.username)
        elif isinstance(action, Bound):
            self._bind(connection, action.jid)
        elif isinstance(action, StartTls):
            assert self.tls_context is not None
            connection.start_tls(self.tls_context)
        elif isinstance(action, Pause):
            stats.paused += 1
            connection.pause_until(action.until)
        elif isinstance(action, Closed):
            if action.condition is not None:
                stats.stream_errors[action.condition] += 1
            connection.close()
        elif isinstance(action, Refused):
            stats.stanza_errors[action.condition] += 1
        elif isinstance(action, PresenceChanged):
            stats.available += 1 if action.available else -1
        elif isinstance(action, Authenticated):
            stats.authenticated += 1
            if self.on_login is not None:
                self.on_login(LoginEvent(connection.address, LoginOutcome.OK, action.username))
        elif isinstance(action, AuthFailed):
            stats.auth_failures[action.condition] += 1

    def _route(self, sender: _Connection, route: Route) -> None:
        target = self._sessions.get(route.to)
        if target is None or target.c2s.closed:
            sender.run(sender.c2s.undeliverable(route.stanza))
            return
        target.write(serialize(route.stanza))
        self.stats.stanzas_routed += 1

    def _queued(self, connection: _Connection) -> None:
        """*connection* has output waiting: flush it once this round of callbacks is done."""
        if not self._unflushed:
            asyncio.get_running_loop().call_soon(self._flush)
        self._unflushed.append(connection)

    def _flush(self) -> None:
        unflushed, self._unflushed = self._unflushed, []
        for connection in unflushed:
            connection.flush()

    def _bind(self, connection: _Connection, jid: Jid) -> None:
        self.stats.bound += 1
        previous = self._sessions.get(jid)
        self._sessions[jid] = connection
        if self.guard is not None:
            self.guard.sessions.add(jid)
        if previous is not None:
            # RFC 6120 §7.7.2.2: the newer connection wins; the older one ends with conflict.
            previous.run(previous.c2s.close(StreamCondition.CONFLICT, "replaced by a new login"))

    def _lookup(self, connection: _Connection, username: str) -> None:
        try:
            found = self._accounts(username)
        except Exception as exc:
            self._lookup_failed.hit(repr(exc))
            connection.run(connection.c2s.close(StreamCondition.INTERNAL_SERVER_ERROR))
            return
        if found is None or isinstance(found, ScramCredentials):
            connection.run(connection.c2s.credentials(found))
            return
        connection.pause()
        task = asyncio.get_running_loop().create_task(self._await_lookup(connection, found))
        self._lookups.add(task)
        task.add_done_callback(self._lookups.discard)

    async def _await_lookup(
        self, connection: _Connection, pending: Awaitable[ScramCredentials | None]
    ) -> None:
        try:
            found = await pending
        except Exception as exc:
            self._lookup_failed.hit(repr(exc))
            connection.run(connection.c2s.close(StreamCondition.INTERNAL_SERVER_ERROR))
            return
        connection.run(connection.c2s.credentials(found))
        connection.resume()

    def _tls_failed(self, connection: _Connection, error: TlsError) -> None:
        self.stats.tls_failures += 1
        log.debug("TLS failed from %s: %s", connection.address, error)
        refusal = error.refusal
        if refusal is not None:
            self.stats.tls_refusals[refusal] += 1
            if self.on_login is not None:
                event = LoginEvent(connection.address, LoginOutcome.TLS_REFUSED, detail=refusal)
                self.on_login(event)
        connection.abort()


def _stamp(*paths: Path) -> tuple[tuple[int, int], ...] | None:
    try:
        return tuple((s.st_mtime_ns, s.st_size) for s in (path.stat() for path in paths))
    except OSError:
        return None


class _Connection(asyncio.BufferedProtocol):
    """One client connection: moves bytes between the socket, TLS and the C2S core."""

    __slots__ = (
        "_out",
        "_resume",
        "_server",
        "_tls",
        "_transport",
        "address",
        "c2s",
        "direct_tls",
    )

    def __init__(self, server: XmppServer, *, direct_tls: bool) -> None:
        self._server = server
        self.direct_tls = direct_tls
        self._tls: TlsLayer | None = None
        self._transport: asyncio.Transport | None = None
        self._out: list[bytes] | None = None  # written, not yet flushed
        self._resume: asyncio.TimerHandle | None = None  # the shaper's pause
        self.address = ""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        peer = transport.get_extra_info("peername")
        self.address = str(peer[0]) if peer else ""
        server = self._server
        peer = transport.get_extra_info("peername")
        self.c2s = C2S(
            server.policy,
            now=asyncio.get_running_loop().time(),
            tls=self.direct_tls,
            starttls=not self.direct_tls,
            peer=str(peer[0]) if peer else "",
            guard=server.guard,
        )
        if self.direct_tls:
            assert server.tls_context is not None
            self._tls = TlsLayer(server.tls_context)
        server._opened(self)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._server.read_buffer

    def buffer_updated(self, nbytes: int) -> None:
        data = bytes(self._server.read_buffer[:nbytes])
        tls = self._tls
        if tls is not None:
            try:
                data = tls.receive(data)
            except TlsError as exc:
                self._tls = None  # failed once: its closing is no second failure
                self._server._tls_failed(self, exc)
                return
            self._send_raw(tls.outgoing())
        if data:
            self.run(self.c2s.receive(data, asyncio.get_running_loop().time()))
        if tls is not None and tls.eof:
            self.close()

    def eof_received(self) -> bool:
        return False  # a half-closed XMPP stream is over: close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        if self._tls is not None and self._tls.in_handshake:
            self._server._tls_failed(self, TlsError("closed in the handshake", CLOSED_IN_HANDSHAKE))
        if self._resume is not None:
            self._resume.cancel()
        self._server._lost(self)

    def run(self, actions: list[Action]) -> None:
        """Carry out what the core asked for."""
        carry_out(actions, self.write, lambda action: self._server._act(self, action))

    def write(self, data: bytes) -> None:
        if self._out is None:
            self._out = [data]
            self._server._queued(self)
        else:
            self._out.append(data)

    def flush(self) -> None:
        out, self._out = self._out, None
        if not out:
            return
        data = b"".join(out)
        if self._tls is not None:
            self._tls.send(data)
            data = self._tls.outgoing()
        self._send_raw(data)

    def _send_raw(self, data: bytes) -> None:
        transport = self._transport
        if not data or transport is None or transport.is_closing():
            return
        transport.write(data)
        if transport.get_write_buffer_size() > MAX_UNREAD:
            self._server.stats.stream_errors[StreamCondition.RESOURCE_CONSTRAINT] += 1
            self.c2s.close(StreamCondition.RESOURCE_CONSTRAINT)
            self.abort()

    def start_tls(self, context: ssl.SSLContext) -> None:
        self.flush()  # <proceed/> goes in the clear
        self._tls = TlsLayer(context)

    def pause(self) -> None:
        if self._transport is not None:
            self._transport.pause_reading()

    def resume(self) -> None:
        if self._resume is not None:
            return  # the shaper's pause ends on its own time
        if self._transport is not None and not self._transport.is_closing():
            self._transport.resume_reading()

    def pause_until(self, until: float) -> None:
        """The shaper's pause: no reading until *until* (loop time)."""
        if self._resume is not None:
            self._resume.cancel()
        self.pause()
        self._resume = asyncio.get_running_loop().call_at(until, self._shaped)

    def _shaped(self) -> None:
        self._resume = None
        self.resume()

    def close(self) -> None:
        self.flush()
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()
