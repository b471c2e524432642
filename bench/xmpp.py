"""The built-in XMPP server under a fleet: memory per idle connection, IQ round trips.

The server runs in its own process. Worker processes open N device connections (SCRAM-SHA-1,
bind, initial presence; at most 5,000 per process to stay clear of the open-files limit) that
then sit idle, and the server's RSS is read before and after. Then, with the fleet still
connected, pairs of ACS and device connections exchange TR-069 connection-request IQs through
the server, one outstanding per pair: round trips per second, p50 and p99.
Run: `.venv/bin/python bench/xmpp.py --connections 10000` (`--tls` for STARTTLS devices).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import json
import os
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from lxml import etree

from knock.xmpp import ns
from knock.xmpp.c2s import Policy
from knock.xmpp.sasl import ScramClient, ScramCredentials, salted_password
from knock.xmpp.server import Listen, XmppServer
from knock.xmpp.stream import Stanza, StreamOpened, StreamParser, stream_header
from report import report

DOMAIN = "bench.knock"
PASSWORD = "bench-password"
# One salt for the whole fleet, so each client process derives the SCRAM key once, not once per
# device; the server's work per login (HMACs over stored keys) is the same either way.
SALT = b"knock-bench-salt"
ITERATIONS = 4096
PER_PROCESS = 5000
LOGINS_IN_FLIGHT = 200
CONN_REQ = "urn:broadband-forum-org:cwmp:xmppConnReq-1-0"
HEADER = stream_header(to=DOMAIN)
FEATURES = ns.qname(ns.STREAMS, "features")
IQ = ns.qname(ns.CLIENT, "iq")


# --- the server process -----------------------------------------------------------------------


async def serve(data_dir: Path) -> None:
    credentials = ScramCredentials.from_password(PASSWORD, salt=SALT, iterations=ITERATIONS)
    policy = Policy(DOMAIN, ping_interval=3600.0, login_timeout=600.0)
    listen = Listen(host="127.0.0.1", port=0, tls_port=None, data_dir=data_dir)
    server = XmppServer(policy, lambda _user: credentials, listen)
    await server.start()
    print("READY", server.port, server.certificate, flush=True)
    loop = asyncio.get_running_loop()
    while (await loop.run_in_executor(None, sys.stdin.readline)).strip() == "stats":
        print(json.dumps(server.stats.snapshot()), flush=True)
    await server.close()


# --- a device or ACS connection ---------------------------------------------------------------


class Endpoint(asyncio.Protocol):
    """One client connection: logs in, binds, says it is available, answers connection
    requests `result` (as a device does) and can send them (as the ACS does)."""

    def __init__(self, username: str, salted: bytes, tls: ssl.SSLContext | None) -> None:
        loop = asyncio.get_running_loop()
        self.ready: asyncio.Future[None] = loop.create_future()
        self.jid = f"{username}@{DOMAIN}/cwmp"
        self._username, self._tls = username, tls
        self._scram = ScramClient(username, PASSWORD, salted_password=salted)
        self._parser = StreamParser()
        self._transport: asyncio.Transport | None = None
        self._pending: dict[str, asyncio.Future[str]] = {}
        self._ids = itertools.count()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        transport.write(HEADER)

    def data_received(self, data: bytes) -> None:
        for event in self._parser.feed(data):
            if isinstance(event, Stanza):
                self._stanza(event.element)
            elif not isinstance(event, StreamOpened):
                self._failed(f"stream ended: {event}")

    def connection_lost(self, exc: Exception | None) -> None:
        self._failed(f"connection lost: {exc}")
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionError("connection lost"))

    def _failed(self, why: str) -> None:
        if not self.ready.done():
            self.ready.set_exception(RuntimeError(f"{self._username}: {why}"))

    def _send(self, data: bytes | str) -> None:
        assert self._transport is not None
        self._transport.write(data.encode() if isinstance(data, str) else data)

    def _stanza(self, element: Any) -> None:
        tag, text = element.tag, element.text or ""
        if tag == FEATURES:
            self._features(element)
        elif tag == ns.qname(ns.TLS, "proceed"):
            asyncio.get_running_loop().create_task(self._upgrade())
        elif tag == ns.qname(ns.SASL, "challenge"):
            final = self._scram.final(base64.b64decode(text))
            self._send(f"<response xmlns='{ns.SASL}'>{base64.b64encode(final).decode()}</response>")
        elif tag == ns.qname(ns.SASL, "success"):
            self._scram.verify(base64.b64decode(text))
            self._parser.restart()
            self._send(HEADER)
        elif tag == IQ:
            self._iq(element)
        else:
            self._failed(f"unexpected {etree.tostring(element)!r}")

    def _features(self, features: Any) -> None:
        if self._tls is not None and features.find(ns.qname(ns.TLS, "starttls")) is not None:
            self._send(f"<starttls xmlns='{ns.TLS}'/>")
        elif features.find(ns.qname(ns.SASL, "mechanisms")) is not None:
            first = base64.b64encode(self._scram.first()).decode()
            self._send(f"<auth xmlns='{ns.SASL}' mechanism='SCRAM-SHA-1'>{first}</auth>")
        else:
            bind = f"<bind xmlns='{ns.BIND}'><resource>cwmp</resource></bind>"
            self._send(f"<iq type='set' id='bind'>{bind}</iq>")

    async def _upgrade(self) -> None:
        assert self._transport is not None and self._tls is not None
        loop = asyncio.get_running_loop()
        transport = await loop.start_tls(self._transport, self, self._tls, server_hostname=DOMAIN)
        assert transport is not None
        self._transport = transport
        self._parser = StreamParser()
        self._send(HEADER)

    def _iq(self, iq: Any) -> None:
        kind, stanza_id = iq.get("type"), iq.get("id")
        if stanza_id == "bind":
            self._send("<presence/>")
            self.ready.set_result(None)
        elif kind == "get" and iq.find(f"{{{CONN_REQ}}}connectionRequest") is not None:
            self._send(f"<iq type='result' id='{stanza_id}' to='{iq.get('from')}'/>")
        elif stanza_id in self._pending:
            self._pending.pop(stanza_id).set_result(kind)

    async def connection_request(self, to: str) -> float:
        """Send a connection request to *to*; seconds until its answer came."""
        stanza_id = f"cr{next(self._ids)}"
        answered = asyncio.get_running_loop().create_future()
        self._pending[stanza_id] = answered
        start = time.perf_counter()
        self._send(
            f"<iq type='get' to='{to}' id='{stanza_id}'><connectionRequest xmlns='{CONN_REQ}'>"
            "<username>cr-user</username><password>cr-pass</password></connectionRequest></iq>"
        )
        if await answered != "result":
            raise RuntimeError(f"connection request to {to} answered {answered.result()}")
        return time.perf_counter() - start

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


async def open_endpoints(
    port: int, usernames: list[str], certificate: str | None
) -> list[Endpoint]:
    salted = salted_password(PASSWORD, SALT, ITERATIONS)
    tls = ssl.create_default_context(cafile=certificate) if certificate else None
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(LOGINS_IN_FLIGHT)

    async def one(username: str) -> Endpoint:
        async with gate:
            endpoint = Endpoint(username, salted, tls)
            await loop.create_connection(lambda: endpoint, "127.0.0.1", port)
            await asyncio.wait_for(endpoint.ready, 60)
            return endpoint

    return list(await asyncio.gather(*(one(name) for name in usernames)))


# --- a worker process holding idle devices ----------------------------------------------------


async def hold(port: int, first: int, count: int, certificate: str | None) -> None:
    endpoints = await open_endpoints(
        port, [f"dev{n:06d}" for n in range(first, first + count)], certificate
    )
    print("READY", len(endpoints), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    for endpoint in endpoints:
        endpoint.close()


# --- the benchmark ----------------------------------------------------------------------------


class Child:
    """A process of this script, spoken to one line at a time."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, *args: str) -> Child:
        process = await asyncio.create_subprocess_exec(
            sys.executable, __file__, *args,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        return cls(process)

    async def line(self, within: float = 300) -> list[str]:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), within)
        if not line:
            raise RuntimeError(f"process {self.process.pid} exited with {self.process.returncode}")
        return line.decode().split()

    async def say(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        await self.process.stdin.drain()

    async def stop(self) -> None:
        await self.say("quit")
        await asyncio.wait_for(self.process.wait(), 60)


def cpu_seconds(pid: int) -> float:
    """User and system CPU time the process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> dict[str, int]:
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0])
    return found


async def round_trips(
    port: int, pairs: int, seconds: float, certificate: str | None
) -> list[float]:
    names = [f"acs{n:03d}" for n in range(pairs)] + [f"rtt{n:03d}" for n in range(pairs)]
    endpoints = await open_endpoints(port, names, certificate)
    acses, devices = endpoints[:pairs], endpoints[pairs:]
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def pair(acs: Endpoint, device: Endpoint) -> None:
        while time.perf_counter() < deadline:
            latencies.append(await acs.connection_request(device.jid))

    await asyncio.gather(*(pair(a, d) for a, d in zip(acses, devices, strict=True)))
    for endpoint in endpoints:
        endpoint.close()
    return latencies


async def bench(connections: int, pairs: int, seconds: float, tls: bool) -> dict[str, Any]:
    server = await Child.start("--serve", tempfile.mkdtemp(prefix="knock-xmpp-bench-"))
    workers: list[Child] = []
    try:
        _, port, certificate = await server.line(60)
        cert = certificate if tls else None
        before = rss_kib(server.process.pid)
        start = time.perf_counter()
        for first in range(0, connections, PER_PROCESS):
            count = min(PER_PROCESS, connections - first)
            trust = ["--cert", certificate] if tls else []
            workers.append(await Child.start("--hold", port, str(first), str(count), *trust))
        held = sum([int((await worker.line())[1]) for worker in workers])
        login_seconds = time.perf_counter() - start
        after = rss_kib(server.process.pid)
        await server.say("stats")
        stats = json.loads(" ".join(await server.line()))
        start, cpu = time.perf_counter(), cpu_seconds(server.process.pid)
        latencies = await round_trips(int(port), pairs, seconds, cert)
        elapsed = time.perf_counter() - start
        cpu = cpu_seconds(server.process.pid) - cpu
        peak = rss_kib(server.process.pid)
    finally:
        for child in [*workers, server]:
            await child.stop()
    latencies.sort()
    grown = (after["VmRSS"] - before["VmRSS"]) * 1024
    return {
        "connections": connections,
        "held": held,
        "server_bound": stats["bound"],
        "tls": tls,
        "logins_per_s": round(held / login_seconds, 1),
        "server_rss_idle_mib": round(before["VmRSS"] / 1024, 1),
        "server_rss_held_mib": round(after["VmRSS"] / 1024, 1),
        "bytes_per_connection": round(grown / connections) if connections else 0,
        "pairs": pairs,
        "round_trips": len(latencies),
        "round_trips_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 3),
        "p99_ms": round(latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000, 3),
        # The clients share the machine: the server's own CPU per round trip (two stanzas in,
        # two out) says what it could do alone.
        "server_cpu_us_per_round_trip": round(cpu / len(latencies) * 1e6, 1),
        "server_peak_rss_mib": round(peak["VmHWM"] / 1024, 1),
        "cpus": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--pairs", type=int, default=20, help="ACS-device pairs doing round trips")
    parser.add_argument("--seconds", type=float, default=5.0, help="how long round trips run")
    parser.add_argument("--tls", action="store_true", help="devices use STARTTLS")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 200 connections, 1 s")
    parser.add_argument("--json", type=Path, default=Path("bench/results/xmpp.json"))
    parser.add_argument("--serve", metavar="DATA_DIR", help=argparse.SUPPRESS)
    parser.add_argument("--hold", nargs=3, type=int, metavar="N", help=argparse.SUPPRESS)
    parser.add_argument("--cert", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(Path(args.serve)))
        return
    if args.hold:
        asyncio.run(hold(*args.hold, args.cert))
        return
    if args.quick:
        args.connections, args.pairs, args.seconds = 200, 5, 1.0
    result = asyncio.run(bench(args.connections, args.pairs, args.seconds, args.tls))
    report(
        "knock.xmpp server: idle devices held, connection-request IQ round trips", result, args.json
    )


if __name__ == "__main__":
    main()
