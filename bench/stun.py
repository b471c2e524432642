"""Binding Requests per second through Knock's STUN server, and their round-trip times.

The server runs in its own process; one asyncio client keeps a window of requests in flight, each
reply sending the next, and counts a request lost after a second without reply. Prints a table
and writes JSON. Run: `.venv/bin/python bench/stun.py` (or `--quick` for a smoke run).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import time
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, cast

from rich.console import Console
from rich.table import Table

from knock.stun.codec import MessageType, binding_request
from knock.stun.server import start_stun_server
from knock.stun.service import StunSettings

USER, PASSWORD = "CPE57689", "stunpass"
LOST_AFTER = 1.0
_RESPONSE = MessageType.BINDING_RESPONSE.to_bytes(2, "big")


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    window: int
    signed: bool


CASES = [
    Case("keep-alive", 1, False),  # latency alone
    Case("keep-alive", 64, False),  # USERNAME and CONNECTION-REQUEST-BINDING, as TR-111 sends
    Case("signed", 64, True),  # the same with MESSAGE-INTEGRITY, checked and answered signed
]


def serve(require_auth: bool, conn: Connection) -> None:
    """The server process: report the port, serve until asked to stop, report what it did."""

    async def main() -> None:
        server = await start_stun_server(
            "127.0.0.1",
            0,
            passwords={USER: PASSWORD}.get,
            settings=StunSettings(require_auth=require_auth),
        )
        conn.send(server.address[1])
        cpu = time.process_time()
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)
        cpu = time.process_time() - cpu
        await server.close()
        conn.send({"counters": asdict(server.counters), "cpu_s": cpu})

    asyncio.run(main())


class Blaster(asyncio.DatagramProtocol):
    """Keeps `window` requests in flight until every one of `requests` is answered or lost."""

    def __init__(self, requests: list[bytes], window: int, target: tuple[str, int]) -> None:
        self._pending = iter(requests)
        self._window = window
        self._target = target
        self._sent: dict[bytes, float] = {}
        self._transport: asyncio.DatagramTransport | None = None
        self.rtts: list[float] = []
        self.errors = 0
        self.lost = 0
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)
        for _ in range(self._window):
            self._send_next()
        self._watch()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        sent = self._sent.pop(data[4:20], None)
        if sent is None:
            return  # the reply to a request already counted lost
        if data[:2] == _RESPONSE:
            self.rtts.append(time.perf_counter() - sent)
        else:
            self.errors += 1
        self._send_next()

    def _send_next(self) -> None:
        datagram = next(self._pending, None)
        if datagram is None:
            if not self._sent and not self.done.done():
                self.done.set_result(None)
            return
        self._sent[datagram[4:20]] = time.perf_counter()
        assert self._transport is not None
        self._transport.sendto(datagram, self._target)

    def _watch(self) -> None:
        if self.done.done():
            return
        cutoff = time.perf_counter() - LOST_AFTER
        for txid in [t for t, at in self._sent.items() if at < cutoff]:
            del self._sent[txid]
            self.lost += 1
            self._send_next()
        asyncio.get_running_loop().call_later(0.1, self._watch)


async def blast(case: Case, requests: int, port: int) -> dict[str, Any]:
    datagrams = [
        binding_request(
            os.urandom(16),
            username=USER,
            password=PASSWORD if case.signed else None,
            connection_request_binding=True,
        )
        for _ in range(requests)
    ]
    loop = asyncio.get_running_loop()
    start = time.perf_counter()
    transport, blaster = await loop.create_datagram_endpoint(
        lambda: Blaster(datagrams, case.window, ("127.0.0.1", port)), local_addr=("127.0.0.1", 0)
    )
    try:
        await blaster.done
    finally:
        transport.close()
    elapsed = time.perf_counter() - start
    rtts = sorted(blaster.rtts)
    return {
        "per_s": round(len(rtts) / elapsed),
        "p50_ms": round(statistics.median(rtts) * 1000, 3),
        "p99_ms": round(rtts[max(0, int(len(rtts) * 0.99) - 1)] * 1000, 3),
        "errors": blaster.errors,
        "lost": blaster.lost,
    }


def run_case(case: Case, requests: int) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    server = context.Process(target=serve, args=(case.signed, theirs))
    server.start()
    try:
        port = ours.recv()
        client = asyncio.run(blast(case, requests, port))
        ours.send("stop")
        report = ours.recv()
    finally:
        server.join(10)
    counters = report["counters"]
    return {
        "case": case.name,
        "window": case.window,
        "requests": requests,
        **client,
        "server_us": round(report["cpu_s"] / max(1, counters["requests"]) * 1e6, 1),
        "responses": counters["responses"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2,000 requests a case")
    parser.add_argument("--json", type=Path, default=Path("bench/results/stun.json"))
    args = parser.parse_args()
    requests = 2_000 if args.quick else args.requests
    rows = [run_case(case, requests if case.window > 1 else requests // 10) for case in CASES]
    table = Table(title="knock STUN server: Binding Requests over loopback, one server process")
    for key in rows[0]:
        table.add_column(key)
    for row in rows:
        table.add_row(*(str(v) for v in row.values()))
    Console(width=120).print(table)
    print("per_s: answers a second; server_us: server CPU per request; w=1 runs a tenth as many")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    result = {"cases": rows, "cpus": os.cpu_count()}
    args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
