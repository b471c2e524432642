"""TCP listening sockets that stay up under descriptor pressure.

asyncio's own accept loop, when accept() fails with EMFILE, logs a traceback and then tries
again up to `backlog` times in the same round, so a flood of idle connections at the open-files
limit writes hundreds of thousands of tracebacks and starves every other descriptor the process
needs (the store, connection requests, a device's next session). Here the accept is ours:

* a connection whose descriptor lands in the top `reserve` of the open-files limit is accepted
  and closed at once (Linux hands out the lowest free descriptor, so a high number means nearly
  all lower ones are taken): the client learns at once, and the process keeps headroom;
* if accept() itself runs out (EMFILE, ENFILE, ENOBUFS, ENOMEM), accepting stops for a moment;
* both are counted and logged once per interval, never per connection.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import resource
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass

import knock.hosts
from knock.ratelog import RepeatedLog

log = logging.getLogger("knock.listen")

DEFAULT_RESERVE = 64
ACCEPT_PAUSE = 0.25  # seconds without accepting after accept() itself ran out of something
ACCEPT_BATCH = 128  # connections taken per readiness event, so other work gets its turn
_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


def raise_open_files_limit() -> tuple[int, int]:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit; return (before, after)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft, soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (OSError, ValueError) as exc:
        log.warning("could not raise the open-files limit from %d to %d: %s", soft, target, exc)
        return soft, soft
    return soft, target


def descriptor_ceiling(reserve: int) -> int:
    """The first descriptor number a listener sheds: the soft limit less *reserve* (at most
    half the limit, so a small limit still serves)."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 1 << 30
    return soft - min(reserve, soft // 2)


@dataclass(slots=True)
class ListenStats:
    accepted: int = 0
    shed: int = 0  # accepted and closed at once: too few descriptors left
    paused: int = 0  # times accept() itself ran out and accepting stopped for a moment


class Listener:
    """Accepts on *sockets* and hands each connection to the loop with *factory*'s protocol."""

    def __init__(
        self,
        name: str,
        factory: Callable[[], asyncio.BaseProtocol],
        sockets: list[socket.socket],
        *,
        ssl_context: ssl.SSLContext | None = None,
        handshake_timeout: float = 60.0,
        reserve: int = DEFAULT_RESERVE,
    ) -> None:
        self.name = name
        self.stats = ListenStats()
        self._factory = factory
        self._sockets = sockets
        self._ssl = ssl_context
        self._handshake_timeout = handshake_timeout
        self._ceiling = descriptor_ceiling(reserve)
        self._loop = asyncio.get_running_loop()
        self._handshakes: set[asyncio.Task[object]] = set()
        self._closed = False
        self._shed_log = RepeatedLog(
            log, f"{name}: too few open files left, new connections closed at once"
        )
        self._pause_log = RepeatedLog(
            log, f"{name}: out of descriptors or memory, accepting paused {ACCEPT_PAUSE} s"
        )
        self._error_log = RepeatedLog(log, f"{name}: accept failed")
        self._handshake_log = RepeatedLog(log, f"{name}: TLS handshake failed", level=logging.DEBUG)
        for sock in sockets:
            self._loop.add_reader(sock.fileno(), self._accept, sock)

    @classmethod
    async def open(
        cls,
        name: str,
        factory: Callable[[], asyncio.BaseProtocol],
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None = None,
        handshake_timeout: float = 60.0,
        reuse_port: bool = False,
        backlog: int = 1024,
        reserve: int = DEFAULT_RESERVE,
    ) -> Listener:
        sockets = await bind_sockets(host, port, reuse_port=reuse_port, backlog=backlog)
        return cls(
            name,
            factory,
            sockets,
            ssl_context=ssl_context,
            handshake_timeout=handshake_timeout,
            reserve=reserve,
        )

    @property
    def sockets(self) -> list[socket.socket]:
        return list(self._sockets)

    @property
    def port(self) -> int:
        return int(self._sockets[0].getsockname()[1])

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for sock in self._sockets:
            self._loop.remove_reader(sock.fileno())
            sock.close()
        for task in self._handshakes:
            task.cancel()

    async def wait_closed(self) -> None:
        if self._handshakes:
            await asyncio.gather(*self._handshakes, return_exceptions=True)

    def _accept(self, sock: socket.socket) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                conn, _address = sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as exc:
                if exc.errno in _OUT_OF_RESOURCES:
                    self._pause(sock, exc)
                else:
                    self._error_log.hit(exc)
                return
            if conn.fileno() >= self._ceiling:
                conn.close()
                self.stats.shed += 1
                self._shed_log.hit(f"descriptor {conn.fileno()} of {self._ceiling}")
                continue
            self.stats.accepted += 1
            self._serve(conn)

    def _serve(self, conn: socket.socket) -> None:
        conn.setblocking(False)
        # asyncio refuses a handshake timeout without TLS.
        timeout = self._handshake_timeout if self._ssl is not None else None
        task = self._loop.create_task(
            self._loop.connect_accepted_socket(
                self._factory, conn, ssl=self._ssl, ssl_handshake_timeout=timeout
            )
        )
        self._handshakes.add(task)
        task.add_done_callback(self._connected)

    def _connected(self, task: asyncio.Task[object]) -> None:
        self._handshakes.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            self._handshake_log.hit(exc)

    def _pause(self, sock: socket.socket, exc: OSError) -> None:
        self.stats.paused += 1
        self._pause_log.hit(exc)
        self._loop.remove_reader(sock.fileno())
        self._loop.call_later(ACCEPT_PAUSE, self._resume, sock)

    def _resume(self, sock: socket.socket) -> None:
        if not self._closed:
            self._loop.add_reader(sock.fileno(), self._accept, sock)


async def bind_sockets(
    host: str, port: int, *, reuse_port: bool = False, backlog: int = 1024
) -> list[socket.socket]:
    """Listening sockets for every address *host* names (a list, `::` dual-stack: see
    knock.hosts), all on one port."""
    return knock.hosts.bind_sockets(
        host, port, socket.SOCK_STREAM, reuse_port=reuse_port, backlog=backlog
    )
