"""A TCP port on this host that leads into a lab namespace: the demo's dashboard, whose NBI
listens on the public side's own loopback, opens in the host's browser."""

from __future__ import annotations

import asyncio
import socket
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from knock.lab.nat import NatLab

CHUNK = 64 * 1024


async def forward(
    lab: NatLab, role: str, listen: tuple[str, int], target: tuple[str, int]
) -> asyncio.Server:
    """Accept on *listen* here; carry each connection to *target* as seen inside *role*."""

    async def carry(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A socket made inside the namespace stays there, while this loop drives it.
        inner = await asyncio.to_thread(lab.socket, role, socket.AF_INET, socket.SOCK_STREAM)
        inner.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(inner, target)
        except OSError:
            inner.close()
            writer.close()
            return
        inner_reader, inner_writer = await asyncio.open_connection(sock=inner)
        pipes = [
            asyncio.create_task(_pipe(reader, inner_writer)),
            asyncio.create_task(_pipe(inner_reader, writer)),
        ]
        # Both ends close once both directions are done, or at once when either side resets.
        await asyncio.wait(pipes, return_when=asyncio.FIRST_EXCEPTION)
        writer.close()
        inner_writer.close()
        await asyncio.gather(*pipes, return_exceptions=True)

    return await asyncio.start_server(carry, *listen)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(CHUNK):
        writer.write(data)
        await writer.drain()
    if writer.can_write_eof():
        writer.write_eof()  # the other direction may still be answering
