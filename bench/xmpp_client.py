"""Which XMPP client for the ACS and a simulated fleet: Knock's own (knock.xmpp.client_conn) or
slixmpp 1.17, measured on the client side against the built-in server.

For each library a fresh worker process logs N idle devices in (SCRAM-SHA-1 in the clear, bind,
initial presence) and reports its RSS growth per connection; then one ACS connection sends
TR-069 connection-request IQs to one device connection in the same process (a few outstanding
at a time) and the process's CPU time per round trip is reported: the ACS's send and match,
plus the device's receive and answer. The server (bench/xmpp.py's) runs in its own process.
Run: `.venv/bin/python bench/xmpp_client.py --connections 2000` (`--quick`: a smoke run;
`--library knock --connections 10000`: a whole fleet, which slixmpp's memory does not allow).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from lxml import etree

from knock.connreq.xmpp import CONN_REQ_NS, connection_request
from knock.xmpp.client import ClientConfig, IqRequest, TlsPolicy
from knock.xmpp.client_conn import XmppClient
from procfs import rss_kib
from report import compare
from xmpp import DOMAIN, PASSWORD, Child

LIBRARIES = ("knock", "slixmpp")
LOGINS_IN_FLIGHT = 100
IN_FLIGHT = 4  # connection requests outstanding between the ACS and the device


# --- Knock's client ---------------------------------------------------------------------------


def _answer(client: XmppClient, request: IqRequest) -> None:
    client.answer(request)


class KnockSide:
    config = ClientConfig(tls=TlsPolicy.NEVER, keepalive_interval=0)

    def __init__(self, port: int) -> None:
        self.port = port

    async def login(self, name: str) -> XmppClient:
        jid = f"{name}@{DOMAIN}/cwmp"
        client = XmppClient(
            jid, PASSWORD, host="127.0.0.1", port=self.port, config=self.config, on_request=_answer
        )
        client.start()
        await asyncio.wait_for(client.wait_online(), 60)
        return client

    async def connection_request(self, acs: XmppClient, device: XmppClient) -> None:
        result = await acs.request(device.status.jid, connection_request("u", "p"), timeout=10)
        assert result.ok

    async def close(self, client: XmppClient) -> None:
        await client.close()


# --- slixmpp ----------------------------------------------------------------------------------


class SlixSide:
    def __init__(self, port: int) -> None:
        self.port = port
        # slixmpp builds stanzas from ElementTree, which takes no lxml element: the same
        # payload, parsed once; ElementTree keeps no parent, so every IQ can hold it.
        self.payload = ET.fromstring(etree.tostring(connection_request("u", "p")))

    async def login(self, name: str) -> Any:
        import slixmpp
        from slixmpp.xmlstream.handler import Callback
        from slixmpp.xmlstream.matcher import MatchXPath

        client = slixmpp.ClientXMPP(f"{name}@{DOMAIN}/cwmp", PASSWORD)
        # LAB-NOTES: what slixmpp needs to log in without TLS.
        client.enable_starttls = False
        client.enable_direct_tls = False
        client.enable_plaintext = True
        client.plugin["feature_mechanisms"].unencrypted_scram = True
        started = asyncio.get_running_loop().create_future()
        client.add_event_handler("session_start", lambda _: _started(client, started))
        xpath = f"{{jabber:client}}iq/{{{CONN_REQ_NS}}}connectionRequest"
        client.register_handler(Callback("cr", MatchXPath(xpath), lambda iq: iq.reply().send()))
        client.connect("127.0.0.1", self.port)
        await asyncio.wait_for(started, 60)
        return client

    async def connection_request(self, acs: Any, device: Any) -> None:
        iq = acs.Iq()
        iq["type"] = "get"
        iq["to"] = device.boundjid.full
        iq.append(self.payload)
        result = await iq.send(timeout=10)
        assert result["type"] == "result"

    async def close(self, client: Any) -> None:
        disconnected = asyncio.get_running_loop().create_future()
        client.add_event_handler("disconnected", lambda _: _settle(disconnected))
        client.disconnect()
        await asyncio.wait_for(disconnected, 10)


def _started(client: Any, started: asyncio.Future[None]) -> None:
    client.send_presence()
    _settle(started)


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


# --- a worker process -------------------------------------------------------------------------


async def measure(library: str, port: int, connections: int, seconds: float) -> dict[str, Any]:
    side: KnockSide | SlixSide = KnockSide(port) if library == "knock" else SlixSide(port)
    if library == "slixmpp":
        await side.login("warmup")  # imports and first-use caches are not per connection
    gc.collect()
    before = rss_kib(os.getpid())["VmRSS"]
    gate = asyncio.Semaphore(LOGINS_IN_FLIGHT)
    cpu, start = time.process_time(), time.perf_counter()

    async def one(n: int) -> Any:
        async with gate:
            return await side.login(f"{library}{n:06d}")

    idle = await asyncio.gather(*(one(n) for n in range(connections)))
    login_seconds, login_cpu = time.perf_counter() - start, time.process_time() - cpu
    gc.collect()
    after = rss_kib(os.getpid())["VmRSS"]

    acs, device = await side.login(f"{library}-acs"), await side.login(f"{library}-dev")
    done = 0
    deadline = time.perf_counter() + seconds
    cpu, start = time.process_time(), time.perf_counter()

    async def requests() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await side.connection_request(acs, device)
            done += 1

    await asyncio.gather(*(requests() for _ in range(IN_FLIGHT)))
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    for client in [*idle, acs, device]:
        await side.close(client)
    return {
        "library": library,
        "connections": len(idle),
        "bytes_per_connection": round((after - before) * 1024 / max(1, len(idle))),
        "logins_per_s": round(len(idle) / login_seconds, 1),
        "login_cpu_ms": round(login_cpu / max(1, len(idle)) * 1000, 2),
        "round_trips": done,
        "round_trips_per_s": round(done / elapsed, 1),
        "cpu_us_per_round_trip": round(cpu / max(1, done) * 1e6, 1),
    }


async def worker(library: str, port: int, connections: int, seconds: float) -> None:
    print(json.dumps(await measure(library, port, connections, seconds)), flush=True)


# --- the benchmark ----------------------------------------------------------------------------


async def bench(
    connections: int, seconds: float, libraries: list[str]
) -> dict[str, dict[str, Any]]:
    # bench/xmpp.py's server process: every account has one password and salt.
    server = await Child.start("--serve", tempfile.mkdtemp(prefix="knock-xmpp-client-bench-"))
    results = {}
    try:
        _, port, _certificate = await server.line(60)
        for library in libraries:
            process = await asyncio.create_subprocess_exec(
                sys.executable, __file__, "--worker", library, port, str(connections), str(seconds),
                stdout=asyncio.subprocess.PIPE,
            )  # fmt: skip
            assert process.stdout is not None
            line = await asyncio.wait_for(process.stdout.readline(), 1800)
            await process.wait()
            if not line:
                raise RuntimeError(f"the {library} worker exited with {process.returncode}")
            results[library] = json.loads(line)
    finally:
        await server.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=5.0, help="how long round trips run")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 50 connections, 0.5 s")
    parser.add_argument("--library", action="append", choices=LIBRARIES, help="default: both")
    parser.add_argument("--json", type=Path, default=Path("bench/results/xmpp_client.json"))
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        library, port, count, seconds = args.worker
        asyncio.run(worker(library, int(port), int(count), float(seconds)))
        return
    if args.quick:
        args.connections, args.seconds = 50, 0.5
    libraries = args.library or list(LIBRARIES)
    results = asyncio.run(bench(args.connections, args.seconds, libraries))
    common = {"connections": args.connections, "seconds": args.seconds, "cpus": os.cpu_count()}
    title = "XMPP clients: idle connections held, connection-request IQ round trips"
    compare(title, common, results, args.json)


if __name__ == "__main__":
    main()
