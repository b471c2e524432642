"""Knock's built-in XMPP server beside a real Prosody and ejabberd, in one run, measured alike.

Each server in turn runs in its own process on 127.0.0.1 (Prosody 0.12 and ejabberd 23.01 from
Debian, private instances with their rate limits off; see bench/ejabberd.py and
tests/xmpp_servers.py). Worker processes log a fleet of devices in (SCRAM-SHA-1, bind, initial
presence; at most 5,000 per process for the open-files limit) with the bench's own light client,
which answers connection requests `result` as a CPE does. Per server:
  (a) memory per idle device connection: the server process's RSS before and after the fleet;
  (b) connection-request IQ round trips per second from one ACS connection to the first 1,000
      devices with 100 IQs in flight, p50 and p99;
  (c) fan-out: one connection request to each device (5,000), from the first send until the
      last result.
(b) and (c) run --rounds times each (3) and the best round is reported beside all of them: the
machine is shared, and other work only ever slows a round down.
Run: `.venv/bin/python bench/xmpp.py` (every server installed; `--server builtin` and so on for
fewer, `--server all` to insist on all three; `--tls` for STARTTLS devices; `--quick`).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import functools
import itertools
import math
import os
import shutil
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from lxml import etree

from ejabberd import Ejabberd
from ejabberd import installed as ejabberd_installed
from knock.xmpp import ns
from knock.xmpp.c2s import Policy
from knock.xmpp.sasl import ScramClient, ScramCredentials, salted_password
from knock.xmpp.server import Listen, XmppServer
from knock.xmpp.stream import Stanza, StreamOpened, StreamParser, stream_header
from procfs import cpu_seconds, rss_kib
from report import compare, percentile

# tests/xmpp_servers.py starts Prosody for the tests; the benchmark starts it the same way.
sys.path.append(str(Path(__file__).resolve().parent.parent / "tests"))
import xmpp_servers

DOMAIN = xmpp_servers.DOMAIN
PASSWORD = "bench-password"
# One salt for the whole fleet, so each client process derives the SCRAM key once, not once per
# device; the server's work per login (HMACs over stored keys) is the same either way.
SALT = b"knock-bench-salt"
ITERATIONS = 4096
PER_PROCESS = 5000
LOGINS_IN_FLIGHT = 200
LOGIN_ATTEMPTS = 3
SERVERS = ("builtin", "prosody", "ejabberd")
CONN_REQ = "urn:broadband-forum-org:cwmp:xmppConnReq-1-0"
HEADER = stream_header(to=DOMAIN)
FEATURES = ns.qname(ns.STREAMS, "features")
IQ = ns.qname(ns.CLIENT, "iq")


# --- the servers ------------------------------------------------------------------------------


async def serve(data_dir: Path) -> None:
    """The built-in server's process: every account has PASSWORD with SALT."""
    credentials = ScramCredentials.from_password(PASSWORD, salt=SALT, iterations=ITERATIONS)
    policy = Policy(DOMAIN, ping_interval=3600.0, login_timeout=600.0)
    listen = Listen(host="127.0.0.1", port=0, tls_port=None, data_dir=data_dir)
    server = XmppServer(policy, lambda _user: credentials, listen)
    await server.start()
    print("READY", server.port, server.ca_file, flush=True)  # what clients must trust
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await server.close()


class Builtin:
    """What the benchmark needs of a server (Prosody and Ejabberd alike): name, port, pid (the
    process whose memory and CPU time are read), certificate, start, stop, and accounts made
    by add_accounts or, where accounts_in_band, by in-band registration and a restart."""

    name = "builtin"
    accounts_in_band = False

    def __init__(self) -> None:
        self.port = self.pid = 0
        self.certificate: str | None = None
        self._child: Child | None = None
        self._data = tempfile.mkdtemp(prefix="knock-xmpp-bench-")  # its certificate

    async def start(self) -> None:
        self._child = await Child.start("--serve", self._data)
        _, port, self.certificate = await self._child.line(60)
        self.port, self.pid = int(port), self._child.process.pid

    async def stop(self) -> None:
        if self._child is not None:
            await self._child.stop()
        shutil.rmtree(self._data, ignore_errors=True)

    def add_accounts(self, _names: Sequence[str]) -> None:
        """Every name is an account with PASSWORD already."""


class Prosody:
    name = "prosody"
    accounts_in_band = False

    def __init__(self) -> None:
        self._server = xmpp_servers.Prosody()
        self.port = self.pid = 0
        self.certificate: str | None = str(self._server.certificate)

    async def start(self) -> None:
        await asyncio.to_thread(self._server.start)
        self.port, self.pid = self._server.port, self._server.pid

    async def stop(self) -> None:
        await asyncio.to_thread(self._server.stop)

    def add_accounts(
        self, names: Sequence[str], password_of: Callable[[str], str] = lambda _name: PASSWORD
    ) -> None:
        """Written as internal_hashed account files under its data_path (prosodyctl takes half
        a second an account), all with SALT so a client derives the SCRAM key once a password
        (bench/connreq.py gives each device its own, as `knock sim --xmpp-password-secret`)."""
        derive = functools.cache(
            lambda password: ScramCredentials.from_password(
                password, salt=SALT, iterations=ITERATIONS
            )
        )
        folder = self._server.root / "data" / prosody_escape(DOMAIN) / "accounts"
        folder.mkdir(parents=True, exist_ok=True)
        for name in names:
            creds = derive(password_of(name))
            (folder / f"{prosody_escape(name)}.dat").write_text(
                f'return {{ ["iteration_count"] = {ITERATIONS}; ["salt"] = "{SALT.decode()}"; '
                f'["stored_key"] = "{creds.stored_key.hex()}"; '
                f'["server_key"] = "{creds.server_key.hex()}"; }};\n'
            )
        if os.geteuid() == 0:
            for path in [folder.parent.parent, folder.parent, folder, *folder.iterdir()]:
                shutil.chown(path, xmpp_servers.USER, xmpp_servers.USER)


def prosody_escape(name: str) -> str:
    """As Prosody's datamanager names files: every non-alphanumeric byte as %xx."""
    return "".join(c if c.isalnum() else f"%{ord(c):02x}" for c in name)


def make_server(name: str) -> Builtin | Prosody | Ejabberd:
    if name == "prosody":
        return Prosody()
    if name == "ejabberd":
        return Ejabberd(DOMAIN)
    return Builtin()


def installed(name: str) -> bool:
    if name == "prosody":
        return shutil.which("prosody") is not None
    if name == "ejabberd":
        return ejabberd_installed()
    return True


# --- a device or ACS connection ---------------------------------------------------------------


class Endpoint(asyncio.Protocol):
    """One client connection: logs in, binds, says it is available, answers connection
    requests `result` (as a device does) and can send them (as the ACS does). With *register*
    it only registers its account in-band, then closes."""

    def __init__(
        self,
        username: str,
        salted: bytes | None,
        tls: ssl.SSLContext | None,
        register: bool = False,
    ) -> None:
        loop = asyncio.get_running_loop()
        self.ready: asyncio.Future[None] = loop.create_future()
        self.jid = f"{username}@{DOMAIN}/cwmp"
        self._username, self._tls, self._register = username, tls, register
        self._secured = False
        # salted=None: the server chose this account's salt, so it is derived at each login.
        self._scram = ScramClient(username, PASSWORD, salted_password=salted)
        self._parser = StreamParser()
        self._transport: asyncio.Transport | None = None
        self._pending: dict[str, tuple[float, asyncio.Future[float]]] = {}
        self._ids = itertools.count()
        self._out: list[str] = []

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
        for _start, future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionError(f"{self._username}: connection lost"))

    def _failed(self, why: str) -> None:
        if not self.ready.done():
            self.ready.set_exception(RuntimeError(f"{self._username}: {why}"))

    def _send(self, data: str) -> None:
        """Written at the end of this event-loop round, with whatever else is sent in it: the
        ACS's burst of connection requests goes out in a few system calls, not thousands."""
        if not self._out:
            asyncio.get_running_loop().call_soon(self._flush)
        self._out.append(data)

    def _flush(self) -> None:
        out, self._out = "".join(self._out), []
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(out.encode())

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
            self._send(HEADER.decode())
        elif tag == IQ:
            self._iq(element)
        elif tag != ns.qname(ns.CLIENT, "presence"):  # a server may echo the initial presence
            self._failed(f"unexpected {etree.tostring(element)!r}")

    def _features(self, features: Any) -> None:
        if self._tls is not None and not self._secured:
            if features.find(ns.qname(ns.TLS, "starttls")) is None:
                self._failed("the server offers no STARTTLS (is its certificate loaded?)")
            else:
                self._send(f"<starttls xmlns='{ns.TLS}'/>")
        elif self._register:
            self._send(
                f"<iq type='set' id='reg'><query xmlns='jabber:iq:register'><username>"
                f"{self._username}</username><password>{PASSWORD}</password></query></iq>"
            )
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
        self._transport, self._secured = transport, True
        self._parser = StreamParser()
        self._send(HEADER.decode())

    def _iq(self, iq: Any) -> None:
        kind, stanza_id = iq.get("type"), iq.get("id")
        if stanza_id in ("bind", "reg") and not self.ready.done():
            if kind != "result":
                self._failed(f"{stanza_id} answered {etree.tostring(iq)!r}")
                return
            if stanza_id == "bind":
                self._send("<presence/>")
            self.ready.set_result(None)
        elif kind == "get" and iq.find(f"{{{CONN_REQ}}}connectionRequest") is not None:
            self._send(f"<iq type='result' id='{stanza_id}' to='{iq.get('from')}'/>")
        elif stanza_id in self._pending:
            start, answered = self._pending.pop(stanza_id)
            if kind == "result":
                answered.set_result(time.perf_counter() - start)
            else:
                why = f"connection request {stanza_id} answered {etree.tostring(iq)!r}"
                answered.set_exception(RuntimeError(why))

    def connection_request(self, to: str) -> asyncio.Future[float]:
        """Send a connection request to *to* now; the future holds the seconds until its
        result came."""
        stanza_id = f"cr{next(self._ids)}"
        answered = asyncio.get_running_loop().create_future()
        self._pending[stanza_id] = (time.perf_counter(), answered)
        self._send(
            f"<iq type='get' to='{to}' id='{stanza_id}'><connectionRequest xmlns='{CONN_REQ}'>"
            "<username>cr-user</username><password>cr-pass</password></connectionRequest></iq>"
        )
        return answered

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


async def open_endpoints(
    port: int,
    usernames: Sequence[str],
    certificate: str | None,
    shared_salt: bool = True,
    register: bool = False,
    in_flight: int = LOGINS_IN_FLIGHT,
) -> tuple[list[Endpoint], int]:
    """Connections logged in (or registered) as *usernames*, and how many logins were tried
    again: a server may drop a few under a burst of logins (Prosody resets one now and then)."""
    salted = salted_password(PASSWORD, SALT, ITERATIONS) if shared_salt else None
    tls = ssl.create_default_context(cafile=certificate) if certificate else None
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(in_flight)
    retried = 0

    async def one(username: str) -> Endpoint:
        nonlocal retried
        async with gate:
            for attempt in range(LOGIN_ATTEMPTS):
                endpoint = Endpoint(username, salted, tls, register)
                try:
                    await loop.create_connection(lambda e=endpoint: e, "127.0.0.1", port)
                    await asyncio.wait_for(endpoint.ready, 60)
                    break
                except (OSError, RuntimeError):
                    endpoint.close()
                    if attempt == LOGIN_ATTEMPTS - 1:
                        raise
                    retried += 1
            if register:
                endpoint.close()
            return endpoint

    endpoints = await asyncio.gather(*(one(name) for name in usernames))
    return list(endpoints), retried


# --- a worker process holding idle devices ----------------------------------------------------


async def hold(
    port: int, first: int, count: int, certificate: str | None, shared_salt: bool
) -> None:
    names = device_names(first, count)
    endpoints, retried = await open_endpoints(port, names, certificate, shared_salt)
    print("READY", len(endpoints), retried, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    for endpoint in endpoints:
        endpoint.close()


def device_names(first: int, count: int) -> list[str]:
    return [f"dev{n:06d}" for n in range(first, first + count)]


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
        if self.process.returncode is None:
            await self.say("quit")
        await asyncio.wait_for(self.process.wait(), 60)


async def round_trips(
    acs: Endpoint, targets: Sequence[str], in_flight: int, seconds: float
) -> tuple[list[float], float]:
    """Connection requests to *targets* in turn, *in_flight* outstanding, for *seconds*: each
    one's round trip, and the seconds they took."""
    turn = itertools.cycle(targets)
    latencies: list[float] = []
    start = time.perf_counter()
    deadline = start + seconds

    async def lane() -> None:
        while time.perf_counter() < deadline:
            latencies.append(await acs.connection_request(next(turn)))

    await asyncio.gather(*(lane() for _ in range(in_flight)))
    return latencies, time.perf_counter() - start


async def measure(
    server: Builtin | Prosody | Ejabberd,
    devices: int,
    rtt_devices: int,
    in_flight: int,
    seconds: float,
    tls: bool,
    processes: int,
    rounds: int,
) -> dict[str, Any]:
    names = device_names(0, devices)
    workers: list[Child] = []
    endpoints: list[Endpoint] = []
    await server.start()
    try:
        shared_salt = not server.accounts_in_band
        if server.accounts_in_band:
            # Mnesia's disk table takes about 100 registrations/s, however many come at once.
            await open_endpoints(server.port, [*names, "acs"], None, register=True, in_flight=32)
            await server.restart()
        else:
            server.add_accounts([*names, "acs"])
        certificate = server.certificate if tls else None
        # The ACS logs in first: what a server sets up at its first session is not per device.
        endpoints, _ = await open_endpoints(server.port, ["acs"], certificate, shared_salt)
        acs = endpoints[0]
        await asyncio.sleep(1)
        before = rss_kib(server.pid)
        start = time.perf_counter()
        per_process = min(PER_PROCESS, math.ceil(devices / processes))
        for first in range(0, devices, per_process):
            count = min(per_process, devices - first)
            extra = ["--cert", certificate] if certificate else []
            extra += [] if shared_salt else ["--own-salts"]
            workers.append(
                await Child.start("--hold", str(server.port), str(first), str(count), *extra)
            )
        ready = [await worker.line() for worker in workers]
        held, retried = sum(int(line[1]) for line in ready), sum(int(line[2]) for line in ready)
        login_seconds = time.perf_counter() - start
        await asyncio.sleep(1)  # let the server finish what the logins started
        after = rss_kib(server.pid)
        jids = [f"{name}@{DOMAIN}/cwmp" for name in names]
        clients = [os.getpid(), *(worker.process.pid for worker in workers)]
        tries, fans = [], []
        for _ in range(rounds):
            cpu, client_cpu = cpu_seconds(server.pid), sum(map(cpu_seconds, clients))
            latencies, elapsed = await round_trips(acs, jids[:rtt_devices], in_flight, seconds)
            cpu = cpu_seconds(server.pid) - cpu
            client_cpu = sum(map(cpu_seconds, clients)) - client_cpu
            tries.append((len(latencies) / elapsed, sorted(latencies), cpu, client_cpu))
            await asyncio.sleep(0.5)
            fan_cpu = cpu_seconds(server.pid)
            fan_start = time.perf_counter()
            await asyncio.gather(*[acs.connection_request(jid) for jid in jids])
            fans.append((time.perf_counter() - fan_start, cpu_seconds(server.pid) - fan_cpu))
            await asyncio.sleep(0.5)
        peak = rss_kib(server.pid)
    finally:
        for endpoint in endpoints:
            endpoint.close()
        for worker in workers:
            await worker.stop()
        await server.stop()
    # Other work on the machine only ever slows a round down: the best round is the one it
    # disturbed least, and every round's figure is kept beside it.
    rate, latencies, cpu, client_cpu = max(tries, key=lambda one: one[0])
    fan_out, fan_cpu = min(fans)
    return {
        "held": held,
        "logins_per_s": round(held / login_seconds, 1),
        "logins_retried": retried,
        "server_rss_before_mib": round(before["VmRSS"] / 1024, 1),
        "server_rss_held_mib": round(after["VmRSS"] / 1024, 1),
        "bytes_per_connection": round((after["VmRSS"] - before["VmRSS"]) * 1024 / devices),
        "round_trips": len(latencies),
        "round_trips_per_s": round(rate, 1),
        "round_trips_per_s_rounds": [round(one[0]) for one in tries],
        "p50_ms": round(statistics.median(latencies) * 1000, 3),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 3),
        # The clients share the machine: the server's own CPU per round trip (two stanzas in,
        # two out) says what it could do alone, the clients' (ACS and devices) what they took.
        "server_cpu_us_per_round_trip": round(cpu / len(latencies) * 1e6, 1),
        "client_cpu_us_per_round_trip": round(client_cpu / len(latencies) * 1e6, 1),
        "fan_out_devices": len(jids),
        "fan_out_s": round(fan_out, 3),
        "fan_out_s_rounds": [round(one[0], 3) for one in fans],
        "fan_out_server_cpu_s": round(fan_cpu, 3),
        "server_peak_rss_mib": round(peak["VmHWM"] / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--server",
        action="append",
        choices=[*SERVERS, "all"],
        help="a server to measure (again for more; `all`: the three); default: those installed",
    )
    parser.add_argument("--devices", type=int, default=5000, help="idle devices, each reached")
    parser.add_argument("--rtt-devices", type=int, default=1000, help="devices round trips go to")
    parser.add_argument("--in-flight", type=int, default=100, help="IQs outstanding in (b)")
    parser.add_argument("--seconds", type=float, default=5.0, help="how long round trips run")
    parser.add_argument("--processes", type=int, default=2, help="worker processes for devices")
    parser.add_argument("--rounds", type=int, default=3, help="(b) and (c) each, best reported")
    parser.add_argument("--tls", action="store_true", help="devices and ACS use STARTTLS")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 100 devices, 1 s")
    parser.add_argument("--json", type=Path, default=Path("bench/results/xmpp.json"))
    parser.add_argument("--serve", metavar="DATA_DIR", help=argparse.SUPPRESS)
    parser.add_argument("--hold", nargs=3, type=int, metavar="N", help=argparse.SUPPRESS)
    parser.add_argument("--cert", help=argparse.SUPPRESS)
    parser.add_argument("--own-salts", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(Path(args.serve)))
        return
    if args.hold:
        asyncio.run(hold(*args.hold, args.cert, not args.own_salts))
        return
    if args.quick:
        args.devices, args.rtt_devices, args.in_flight, args.seconds = 100, 50, 10, 1.0
        args.rounds = 1
    chosen = args.server or [name for name in SERVERS if installed(name)]
    names = list(SERVERS) if "all" in chosen else list(dict.fromkeys(chosen))
    common = {
        "devices": args.devices,
        "rtt_devices": min(args.rtt_devices, args.devices),
        "in_flight": args.in_flight,
        "seconds": args.seconds,
        "rounds": args.rounds,
        "tls": args.tls,
        "cpus": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }
    results = {}
    for name in names:
        results[name] = asyncio.run(
            measure(
                make_server(name), args.devices, common["rtt_devices"], args.in_flight,
                args.seconds, args.tls, args.processes, args.rounds,
            )
        )  # fmt: skip
    title = "XMPP servers: idle devices held, connection-request IQ round trips and fan-out"
    compare(title, common, results, args.json)


if __name__ == "__main__":
    main()
