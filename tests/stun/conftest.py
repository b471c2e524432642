"""A STUN server on loopback, and UDP clients to talk to it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from stun_support import PASSWORD, USER, Client, OpenClient, StartServer

from knock.stun.server import BindingHook, StunServer, start_stun_server
from knock.stun.service import StunSettings


@pytest.fixture
async def open_client() -> AsyncIterator[OpenClient]:
    clients: list[Client] = []

    async def open_one(host: str = "127.0.0.1") -> Client:
        loop = asyncio.get_running_loop()
        _, client = await loop.create_datagram_endpoint(Client, local_addr=(host, 0))
        clients.append(client)
        return client

    yield open_one
    for client in clients:
        if client.transport is not None:
            client.transport.close()


@pytest.fixture
async def start_server() -> AsyncIterator[StartServer]:
    servers: list[StunServer] = []

    async def start(
        host: str = "127.0.0.1",
        require_auth: bool = False,
        on_binding: BindingHook | None = None,
    ) -> StunServer:
        server = await start_stun_server(
            host,
            0,
            passwords={USER: PASSWORD}.get,
            settings=StunSettings(require_auth=require_auth),
            on_binding=on_binding,
        )
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.close()
