"""UDP clients for the STUN server tests, and their shared constants."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import cast

from knock.stun.attributes import Address
from knock.stun.codec import Message, parse
from knock.stun.server import StunServer

REPLY_TIMEOUT = 5.0  # a safety net for a lost reply, never a wait for something to happen

USER, PASSWORD = "CPE57689", "stunpass"


class Client(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received: asyncio.Queue[tuple[bytes, Address]] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.received.put_nowait((data, (str(addr[0]), int(addr[1]))))

    @property
    def address(self) -> Address:
        assert self.transport is not None
        host, port = self.transport.get_extra_info("sockname")[:2]
        return host, port

    def send(self, datagram: bytes, to: Address) -> None:
        assert self.transport is not None
        self.transport.sendto(datagram, to)

    async def next(self) -> tuple[bytes, Address]:
        return await asyncio.wait_for(self.received.get(), REPLY_TIMEOUT)

    async def ask(self, datagram: bytes, to: Address) -> Message:
        self.send(datagram, to)
        reply, _ = await self.next()
        return parse(reply)


OpenClient = Callable[..., Awaitable[Client]]
StartServer = Callable[..., Awaitable[StunServer]]
