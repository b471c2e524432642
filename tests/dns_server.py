"""A name server on 127.0.0.1 at a free UDP port, answering SRV questions from a table the test
fills: a name in the table gets its records, any other name NXDOMAIN. dnspython builds the
answers, so the client's resolver parses real DNS messages."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import cast

import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset


class DnsServer(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.srv: dict[str, list[str]] = {}  # "_xmpp-client._tcp.example." -> ["10 5 5222 h."]
        self.asked: list[str] = []  # the names asked, in order
        self.port = 0
        self._transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio's datagram transport is not registered as a DatagramTransport subclass.
        self._transport = cast(asyncio.DatagramTransport, transport)
        self.port = transport.get_extra_info("sockname")[1]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        query = dns.message.from_wire(data)
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        question = query.question[0]
        name = question.name.to_text()
        self.asked.append(name)
        records = self.srv.get(name)
        if records is None or question.rdtype != dns.rdatatype.SRV:
            response.set_rcode(dns.rcode.NXDOMAIN)
        else:
            response.answer.append(
                dns.rrset.from_text_list(question.name, 60, dns.rdataclass.IN, "SRV", records)
            )
        assert self._transport is not None
        self._transport.sendto(response.to_wire(), addr)


@asynccontextmanager
async def running_dns() -> AsyncIterator[DnsServer]:
    loop = asyncio.get_running_loop()
    transport, server = await loop.create_datagram_endpoint(DnsServer, local_addr=("127.0.0.1", 0))
    try:
        yield server
    finally:
        transport.close()
