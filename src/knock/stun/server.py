"""The STUN server on a UDP socket: datagrams in, StunService's replies out.

The same socket sends UDP connection requests (`send_to`): an address-restricted NAT lets a
datagram in only from the address and port the CPE's Binding Requests went to.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TypeVar, cast

from knock.hosts import authority, bind_sockets
from knock.stun.attributes import Address
from knock.stun.codec import DEFAULT_PORT
from knock.stun.service import (
    AuthFailed,
    Binding,
    BindingLearned,
    Counters,
    Handled,
    LookupFailed,
    PasswordLookup,
    StunService,
    StunSettings,
)

log = logging.getLogger("knock.stun")

BindingHook = Callable[[BindingLearned], object]
"""Called in the event loop for each binding learned; it must not block (queue store writes)."""
RefusalHook = Callable[[AuthFailed], object]
"""Called, likewise, for each signed Binding Request refused with 401."""
_E = TypeVar("_E", BindingLearned, AuthFailed)
Tap = Callable[[bytes, Address, Handled, float], Handled]
"""Sees each datagram, its source, the service's answer and the time, and returns what to send
instead (normally the answer itself): how `knock check` watches a device's Binding Requests and
makes it believe its mapping moved."""


class StunServer:
    """One StunService on one or more UDP sockets (a host list, or one dual-stack socket)."""

    def __init__(
        self,
        service: StunService,
        on_binding: BindingHook | None = None,
        clock: Callable[[], float] = time.time,
        on_refused: RefusalHook | None = None,
    ) -> None:
        self.service = service
        self._on_binding = on_binding
        self._on_refused = on_refused
        self._clock = clock
        self._endpoints: list[_Endpoint] = []
        self.binding_changes = 0  # Binding Requests with BINDING-CHANGE, for the metrics
        self._taps: list[Tap] = []

    @contextlib.contextmanager
    def tapped(self, tap: Tap) -> Iterator[None]:
        """Pass every datagram through *tap* while the block runs."""
        self._taps.append(tap)
        try:
            yield
        finally:
            self._taps.remove(tap)

    @property
    def address(self) -> Address:
        """The first bound address and port (every socket has the same port)."""
        if not self._endpoints:
            raise RuntimeError("the STUN server is not listening")
        return self._endpoints[0].address

    @property
    def sockets(self) -> list[socket.socket]:
        return [endpoint.socket for endpoint in self._endpoints]

    @property
    def counters(self) -> Counters:
        return self.service.counters

    @property
    def bindings(self) -> Mapping[str, Binding]:
        return self.service.bindings

    def send_to(self, datagram: bytes, address: Address) -> None:
        """Send from the STUN socket, the one a CPE's NAT has a binding for: the first of the
        destination's family."""
        version = ipaddress.ip_address(address[0]).version
        for endpoint in self._live():
            if endpoint.reaches(version):
                endpoint.send(datagram, address)
                return
        raise OSError(f"the STUN server has no IPv{version} socket to reach {authority(*address)}")

    def _live(self) -> list[_Endpoint]:
        live = [endpoint for endpoint in self._endpoints if not endpoint.closing]
        if not live:
            raise RuntimeError("the STUN server is not listening")
        return live

    async def close(self) -> None:
        for endpoint in self._endpoints:
            await endpoint.close()

    async def __aenter__(self) -> StunServer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _received(self, endpoint: _Endpoint, data: bytes, addr: tuple[str | int, ...]) -> None:
        source, now = (str(addr[0]), int(addr[1])), self._clock()
        handled = self.service.handle(data, source, now)
        for tap in self._taps:
            handled = tap(data, source, handled, now)
        if handled.reply is not None:
            endpoint.send(handled.reply, handled.to)
        for event in handled.events:
            if isinstance(event, LookupFailed):
                log.error("STUN password lookup for %r failed: %s", event.username, event.error)
            elif isinstance(event, AuthFailed):
                _call(self._on_refused, event, "refusal")
            else:
                self.binding_changes += event.binding_change_flag
                _call(self._on_binding, event, "binding")


class _Endpoint(asyncio.DatagramProtocol):
    """One of the server's sockets."""

    def __init__(self, server: StunServer, sock: socket.socket) -> None:
        self.server = server
        self.socket = sock
        self.family = sock.family
        host, port = sock.getsockname()[:2]
        self.address: Address = (host, port)
        self._dual = sock.family == socket.AF_INET6 and not sock.getsockopt(
            socket.IPPROTO_IPV6, socket.IPV6_V6ONLY
        )
        self._transport: asyncio.DatagramTransport | None = None
        self._closed: asyncio.Future[None] | None = None

    @property
    def closing(self) -> bool:
        return self._transport is None or self._transport.is_closing()

    def itself(self) -> _Endpoint:
        """The protocol factory asyncio is given: this endpoint."""
        return self

    def reaches(self, version: int) -> bool:
        return self._dual or version == (6 if self.family == socket.AF_INET6 else 4)

    def send(self, datagram: bytes, address: Address) -> None:
        if self._transport is None or self._transport.is_closing():
            raise RuntimeError("the STUN server is not listening")
        self._transport.sendto(datagram, self._wire(address))

    async def close(self) -> None:
        if self._transport is not None and self._closed is not None:
            self._transport.close()
            await self._closed

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's datagram transport does not subclass DatagramTransport in 3.11.
        self._transport = cast(asyncio.DatagramTransport, transport)
        self._closed = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.server._received(self, data, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("STUN socket error: %s", exc)

    def _wire(self, address: Address) -> Address:
        """The address as this socket takes it: a dual-stack socket reaches IPv4 peers through
        IPv4-mapped IPv6, while the service keeps them as IPv4."""
        host, port = address
        if self.family == socket.AF_INET6 and ipaddress.ip_address(host).version == 4:
            return f"::ffff:{host}", port
        return address


def _call(hook: Callable[[_E], object] | None, event: _E, kind: str) -> None:
    """Run a hook; its failure is logged and costs the other events nothing."""
    if hook is None:
        return
    try:
        hook(event)
    except Exception:
        log.exception("the %s hook failed for %r", kind, event.username)


async def start_stun_server(
    host: str = "0.0.0.0",
    port: int = DEFAULT_PORT,
    *,
    passwords: PasswordLookup | None = None,
    settings: StunSettings | None = None,
    on_binding: BindingHook | None = None,
    on_refused: RefusalHook | None = None,
    clock: Callable[[], float] = time.time,
    reuse_port: bool = False,
) -> StunServer:
    """Listen on *host* (one address or several separated by commas, `::` on both families)
    and *port* (0 picks a free port); close with `await server.close()`. `reuse_port` lets
    several processes bind the same port (SO_REUSEPORT)."""
    server = StunServer(StunService(passwords, settings), on_binding, clock, on_refused)
    loop = asyncio.get_running_loop()
    for sock in bind_sockets(host, port, socket.SOCK_DGRAM, reuse_port=reuse_port):
        endpoint = _Endpoint(server, sock)
        server._endpoints.append(endpoint)
        await loop.create_datagram_endpoint(endpoint.itself, sock=sock)
    # A wildcard bind does not know which of its addresses a CPE reached.
    named = [
        e.address
        for e in server._endpoints
        if not ipaddress.ip_address(e.address[0]).is_unspecified
    ]
    server.service.address = named[0] if named else None
    return server
