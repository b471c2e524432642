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


class StunServer(asyncio.DatagramProtocol):
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
        self._transport: asyncio.DatagramTransport | None = None
        self._family = socket.AF_INET
        self._closed: asyncio.Future[None] | None = None
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
        """The bound address and port."""
        if self._transport is None:
            raise RuntimeError("the STUN server is not listening")
        host, port = self._transport.get_extra_info("sockname")[:2]
        return host, port

    @property
    def counters(self) -> Counters:
        return self.service.counters

    @property
    def bindings(self) -> Mapping[str, Binding]:
        return self.service.bindings

    def send_to(self, datagram: bytes, address: Address) -> None:
        """Send from the STUN socket, the one a CPE's NAT has a binding for."""
        if self._transport is None or self._transport.is_closing():
            raise RuntimeError("the STUN server is not listening")
        self._transport.sendto(datagram, self._wire(address))

    async def close(self) -> None:
        if self._transport is not None and self._closed is not None:
            self._transport.close()
            await self._closed

    async def __aenter__(self) -> StunServer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- asyncio.DatagramProtocol ---

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's datagram transport does not subclass DatagramTransport in 3.11.
        self._transport = cast(asyncio.DatagramTransport, transport)
        self._family = transport.get_extra_info("socket").family
        self._closed = asyncio.get_running_loop().create_future()
        host, port = self.address
        # A wildcard bind does not know which of its addresses a CPE reached.
        self.service.address = None if ipaddress.ip_address(host).is_unspecified else (host, port)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        source, now = (str(addr[0]), int(addr[1])), self._clock()
        handled = self.service.handle(data, source, now)
        for tap in self._taps:
            handled = tap(data, source, handled, now)
        if handled.reply is not None:
            self.send_to(handled.reply, handled.to)
        for event in handled.events:
            if isinstance(event, LookupFailed):
                log.error("STUN password lookup for %r failed: %s", event.username, event.error)
            elif isinstance(event, AuthFailed):
                _call(self._on_refused, event, "refusal")
            else:
                self.binding_changes += event.binding_change_flag
                _call(self._on_binding, event, "binding")

    def error_received(self, exc: Exception) -> None:
        log.debug("STUN socket error: %s", exc)

    def _wire(self, address: Address) -> Address:
        """The address as this socket takes it: a dual-stack socket reaches IPv4 peers through
        IPv4-mapped IPv6, while the service keeps them as IPv4."""
        host, port = address
        if self._family == socket.AF_INET6 and ipaddress.ip_address(host).version == 4:
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
    """Listen on *host*:*port* (0 picks a free port); close with `await server.close()`.
    `reuse_port` lets several processes bind the same port (SO_REUSEPORT)."""
    server = StunServer(StunService(passwords, settings), on_binding, clock, on_refused)
    await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: server, local_addr=(host, port), reuse_port=reuse_port or None
    )
    return server
