"""What an attack on loopback still costs a legitimate device, side by side with the same
device's figures on the same `knock serve` just before the attack.

Three scenarios, each against a fresh `knock serve` (SQLite, started with the common soft
open-files limit of 1,024, which it raises to the hard limit):

* slow clients: connections that send a request header a byte a second (the issue's client sent
  one every 10 s; the rate only changes how long each holds on) and chunked bodies at a byte a
  second, opened at once, against the CWMP port;
* query cost: NBI device queries with `$in` over many values, a few at a time in a loop, over a
  few thousand devices;
* XMPP flood: two device accounts sending 60 KB IQs to a third device and pings to the server as
  fast as they are let, and one client guessing passwords.

The legitimate device runs whole CWMP sessions back to back (Inform, empty POST, 204); in the
XMPP scenario the ACS's account also sends it TR-069 connection requests (IQ round trips).
Every attack is bounded in count and in time. Prints a table and writes JSON.
Run: `.venv/bin/python bench/abuse.py` (`--quick`: a smoke run).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import resource
import ssl
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
from lxml import etree

from informs import free_port, run_session
from knock.acs.xmpp_accounts import put_account
from knock.connreq.xmpp import connection_request
from knock.store import Store
from knock.xmpp.client import ClientConfig, IqRequest, TlsPolicy
from knock.xmpp.client_conn import XmppClient
from knock.xmpp.sasl import ScramClient
from report import compare, percentile

SOFT_NOFILE = 1024
DOMAIN = "knock.lab"
DEVICE_PASSWORD = "device-password-1"
SESSION_TIMEOUT = 10.0  # a legitimate session slower than this counts as failed
ROWS = (
    "session_p50_ms",
    "session_p99_ms",
    "sessions_ok",
    "sessions_failed",
    "cr_p50_ms",
    "cr_p99_ms",
    "cr_ok",
    "cr_failed",
    "attack",
    "attack_s",
    "cut_off_by_server",
    "queries_answered",
    "flood_stanzas_sent",
    "flood_errors",
    "password_guesses",
    "victim_online",
    "serve_log_lines",
)


class Serve:
    """`knock serve` on free loopback ports, with its own data folder and log."""

    def __init__(self, folder: Path, flags: list[str]) -> None:
        self.folder = folder
        self.flags = flags
        self.cwmp, self.nbi, self.xmpp = free_port(), free_port(), free_port()
        self.store_url = f"sqlite:///{folder / 'knock.db'}"
        self.proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> Serve:
        def soft_limit() -> None:
            _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(SOFT_NOFILE, hard), hard))

        self.log = (self.folder / "serve.log").open("wb")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "knock", "serve",
            "--cwmp-host", "127.0.0.1", "--cwmp-port", str(self.cwmp),
            "--nbi-port", str(self.nbi), "--store-url", self.store_url,
            "--cr-provision", "off", "--no-stun-enable", "--no-files-enable",
            # The password guesser speaks SCRAM in the clear, to meet the login throttle rather
            # than the TLS requirement in front of it: a lab flag, as its name says.
            "--xmpp-lab-plaintext", "--log-level", "warning",
            "--xmpp-host", "127.0.0.1", "--xmpp-port", str(self.xmpp), "--xmpp-tls-port", "0",
            "--data-dir", str(self.folder / "data"), *self.flags,
            stdout=asyncio.subprocess.PIPE, stderr=self.log, preexec_fn=soft_limit,
        )  # fmt: skip
        assert self.proc.stdout is not None
        self.banner: list[str] = []
        while not self.banner or not self.banner[-1].startswith("Open files:"):
            line = await asyncio.wait_for(self.proc.stdout.readline(), 60)
            if not line:
                raise RuntimeError(f"knock serve ended: {self.banner}")
            self.banner.append(line.decode().rstrip())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.proc is not None
        self.proc.terminate()
        try:
            await asyncio.wait_for(self.proc.wait(), 30)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        self.log.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.cwmp}/"

    def log_lines(self) -> int:
        return len((self.folder / "serve.log").read_bytes().splitlines())


# --- the legitimate device --------------------------------------------------------------------


async def sessions_until(url: str, stop: asyncio.Event, serial: str) -> dict[str, Any]:
    """Whole CWMP sessions back to back until *stop*; their latencies."""
    times: list[float] = []
    failed = 0
    timeout = aiohttp.ClientTimeout(total=SESSION_TIMEOUT)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        while not stop.is_set():
            try:
                times.append(await run_session(http, url, serial, "2 PERIODIC", 2))
            except (aiohttp.ClientError, TimeoutError, RuntimeError):
                failed += 1
                await asyncio.sleep(0.2)  # a refused device retries, not in a tight loop
    return latency("session", times, failed)


def latency(name: str, times: list[float], failed: int) -> dict[str, Any]:
    ordered = sorted(times)
    return {
        f"{name}_p50_ms": round(statistics.median(ordered) * 1000, 1) if ordered else "",
        f"{name}_p99_ms": round(percentile(ordered, 0.99) * 1000, 1) if ordered else "",
        f"{name}s_ok" if name == "session" else f"{name}_ok": len(ordered),
        f"{name}s_failed" if name == "session" else f"{name}_failed": failed,
    }


async def with_and_without(
    seconds: float,
    measure: Callable[[asyncio.Event], Awaitable[dict[str, Any]]],
    attack: Callable[[asyncio.Event], Awaitable[dict[str, Any]]],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """*measure* alone for *seconds*, then again while *attack* runs for *seconds*."""
    stop = asyncio.Event()
    alone = asyncio.create_task(measure(stop))
    await asyncio.sleep(seconds)
    stop.set()
    without = await alone
    stop = asyncio.Event()
    attacking = asyncio.create_task(attack(stop))
    await asyncio.sleep(min(1.0, seconds / 4))  # the attack is under way
    during = asyncio.create_task(measure(stop))
    await asyncio.sleep(seconds)
    stop.set()
    with_ = await during
    return without, {**with_, **await attacking}


# --- slow clients -----------------------------------------------------------------------------


async def slow_clients(serve: Serve, args: argparse.Namespace) -> tuple[dict, dict]:
    loop = asyncio.get_running_loop()
    ended_by_server = Counter[str]()

    async def trickle(stop: asyncio.Event, kind: str) -> None:
        """One slow client, connecting again each time the server cuts it off."""
        while not stop.is_set():
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", serve.cwmp)
            except OSError:
                ended_by_server["refused"] += 1
                await asyncio.sleep(1.0)
                continue
            try:
                await trickle_once(stop, kind, reader, writer)
            except ConnectionError:
                ended_by_server[kind] += 1
            finally:
                writer.close()

    async def trickle_once(
        stop: asyncio.Event,
        kind: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        if kind == "body":
            writer.write(
                b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
            )
            piece = b"1\r\n<\r\n"
        else:
            writer.write(b"POST / HTTP/1.1\r\n")
            piece = b"X"
        while not stop.is_set():
            writer.write(piece)
            await writer.drain()
            try:
                await asyncio.wait_for(reader.read(65536), 1.0)
                ended_by_server[kind] += 1  # an answer (408) or the end: cut off
                return
            except TimeoutError:
                continue

    async def attack(stop: asyncio.Event) -> dict[str, Any]:
        started = loop.time()
        kinds = ["header"] * args.slow_connections + ["body"] * args.slow_bodies
        await asyncio.gather(*(trickle(stop, kind) for kind in kinds))
        return {
            "attack": f"{args.slow_connections} slow headers + {args.slow_bodies} slow bodies",
            "attack_s": round(loop.time() - started, 1),
            "cut_off_by_server": dict(ended_by_server),
        }

    return await with_and_without(
        args.seconds, lambda stop: sessions_until(serve.url, stop, "LEGIT-1"), attack
    )


# --- query cost -------------------------------------------------------------------------------


async def query_cost(serve: Serve, args: argparse.Namespace) -> tuple[dict, dict]:
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        batch = 50
        for first in range(0, args.devices, batch):
            await asyncio.gather(
                *(
                    run_session(http, serve.url, f"POP-{n:06d}", "1 BOOT", 4)
                    for n in range(first, min(first + batch, args.devices))
                )
            )
    # Numbers, and JSON's punctuation left unescaped, so that 900 values fit the 8 KiB request
    # line HTTP servers accept.
    values = list(range(args.in_values))
    query = json.dumps(
        {"InternetGatewayDevice.DeviceInfo.UpTime": {"$in": values}}, separators=(",", ":")
    )
    url = f"http://127.0.0.1:{serve.nbi}/devices/?query={quote(query, safe=':,[]{}$')}"
    statuses = Counter[str]()

    async def querier(stop: asyncio.Event) -> None:
        limit = aiohttp.ClientTimeout(total=args.seconds * 2)
        async with aiohttp.ClientSession(timeout=limit) as http:
            while not stop.is_set():
                try:
                    async with http.get(url) as r:
                        await r.read()
                        statuses[str(r.status)] += 1
                except (aiohttp.ClientError, TimeoutError) as exc:
                    statuses[type(exc).__name__] += 1

    async def attack(stop: asyncio.Event) -> dict[str, Any]:
        await asyncio.gather(*(querier(stop) for _ in range(args.queriers)))
        return {
            "attack": f"{args.queriers} x GET /devices $in {args.in_values} values "
            f"over {args.devices} devices",
            "queries_answered": dict(statuses),
        }

    return await with_and_without(
        args.seconds, lambda stop: sessions_until(serve.url, stop, "LEGIT-2"), attack
    )


# --- XMPP flood -------------------------------------------------------------------------------


async def xmpp_flood(serve: Serve, args: argparse.Namespace) -> tuple[dict, dict]:
    store = await Store.open(serve.store_url)
    try:
        for name in ("legit", "victim", "flood-1", "flood-2"):
            await put_account(store, name, DEVICE_PASSWORD)
        acs_password = await store.shared_secret("acs_xmpp_password", lambda: "")
    finally:
        await store.close()
    # The server's certificate is signed by the lab CA knock serve made in its data folder.
    trust = ssl.create_default_context(cafile=str(serve.folder / "data" / "ca.pem"))
    config = ClientConfig(tls=TlsPolicy.IF_OFFERED, keepalive_interval=0)

    def client(jid: str, password: str, answer: bool = True) -> XmppClient:
        def on_request(c: XmppClient, request: IqRequest) -> None:
            c.answer(request)

        return XmppClient(
            jid,
            password,
            host="127.0.0.1",
            port=serve.xmpp,
            ssl_context=trust,
            config=config,
            on_request=on_request if answer else None,
        )

    legit = client(f"legit@{DOMAIN}/cwmp", DEVICE_PASSWORD)
    victim = client(f"victim@{DOMAIN}/cwmp", DEVICE_PASSWORD, answer=False)
    probe = client(f"acs@{DOMAIN}/bench-probe", acs_password)
    clients = [legit, victim, probe]
    for c in clients:
        c.start()
    await asyncio.wait_for(asyncio.gather(*(c.wait_online() for c in clients)), 30)

    async def measure(stop: asyncio.Event) -> dict[str, Any]:
        async def round_trips() -> dict[str, Any]:
            times: list[float] = []
            failed = 0
            while not stop.is_set():
                start = time.perf_counter()
                try:
                    await probe.request(
                        f"legit@{DOMAIN}/cwmp", connection_request("u", "p"), timeout=5
                    )
                    times.append(time.perf_counter() - start)
                except Exception:
                    failed += 1
                await asyncio.sleep(0.02)
            return latency("cr", times, failed)

        sessions, crs = await asyncio.gather(
            sessions_until(serve.url, stop, "LEGIT-3"), round_trips()
        )
        return {**sessions, **crs}

    big = etree.Element("{urn:bench:flood}blob")
    big.text = "x" * 60_000
    ping = etree.Element("{urn:xmpp:ping}ping")

    async def flood(
        name: str, stop: asyncio.Event, sent: Counter[str], refused: Counter[str]
    ) -> None:
        c = client(f"{name}@{DOMAIN}/cwmp", DEVICE_PASSWORD)
        c.start()
        await asyncio.wait_for(c.wait_online(), 30)
        in_flight: set[asyncio.Task[Any]] = set()

        def settle(task: asyncio.Task[Any]) -> None:
            in_flight.discard(task)
            if not task.cancelled() and task.exception() is not None:
                refused[type(task.exception()).__name__] += 1

        try:
            while not stop.is_set():
                while len(in_flight) < 64:
                    target, content = (
                        (f"victim@{DOMAIN}/cwmp", big) if sent[name] % 2 else (None, ping)
                    )
                    task = asyncio.create_task(c.request(target, content, timeout=5))
                    in_flight.add(task)
                    task.add_done_callback(settle)
                    sent[name] += 1
                await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in in_flight:
                task.cancel()
            await asyncio.gather(*in_flight, return_exceptions=True)
            await c.close()

    async def guess(stop: asyncio.Event, answers: Counter[str]) -> None:
        """Wrong passwords for the legit account, one login after another."""
        while not stop.is_set():
            answers[await wrong_login(serve.xmpp, "legit")] += 1

    async def attack(stop: asyncio.Event) -> dict[str, Any]:
        sent, refused, answers = Counter[str](), Counter[str](), Counter[str]()
        await asyncio.gather(
            flood("flood-1", stop, sent, refused),
            flood("flood-2", stop, sent, refused),
            guess(stop, answers),
        )
        return {
            "attack": "2 devices flooding 60 KB IQs and pings, 1 password guesser",
            "flood_stanzas_sent": sum(sent.values()),
            "flood_errors": dict(refused),
            "password_guesses": dict(answers),
            "victim_online": victim.online,
        }

    try:
        return await with_and_without(args.seconds, measure, attack)
    finally:
        for c in clients:
            await c.close()


async def wrong_login(port: int, user: str) -> str:
    """One SCRAM-SHA-1 login with a wrong password in the clear; the server's SASL answer."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError as exc:
        return type(exc).__name__
    header = (
        f"<?xml version='1.0'?><stream:stream to='{DOMAIN}' version='1.0' "
        "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
    )
    try:
        writer.write(header.encode())
        await read_until(reader, b"</stream:features>")
        scram = ScramClient(user, "wrong-password")
        writer.write(
            b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>"
            + _b64(scram.first())
            + b"</auth>"
        )
        reply = await read_until(reader, b"</challenge>", b"</failure>")
        if b"<challenge" not in reply:
            return condition(reply)
        server_first = _unb64(reply.split(b">", 1)[1].split(b"<", 1)[0])
        writer.write(
            b"<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
            + _b64(scram.final(server_first))
            + b"</response>"
        )
        return condition(await read_until(reader, b"</failure>", b"</success>"))
    except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
        return type(exc).__name__
    finally:
        writer.close()


async def read_until(reader: asyncio.StreamReader, *ends: bytes) -> bytes:
    data = b""
    async with asyncio.timeout(10):
        while not any(end in data for end in ends):
            chunk = await reader.read(65536)
            if not chunk:
                raise asyncio.IncompleteReadError(data, None)
            data += chunk
    return data


def condition(reply: bytes) -> str:
    for name in (b"temporary-auth-failure", b"not-authorized", b"success"):
        if name in reply:
            return name.decode()
    return reply[:60].decode(errors="replace")


def _b64(data: bytes) -> bytes:
    return base64.b64encode(data)


def _unb64(data: bytes) -> bytes:
    return base64.b64decode(data)


# --- main -------------------------------------------------------------------------------------

SCENARIOS = {"slow clients": slow_clients, "query cost": query_cost, "xmpp flood": xmpp_flood}


async def bench(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    columns: dict[str, dict[str, Any]] = {}
    common: dict[str, Any] = {
        "seconds_per_measure": args.seconds,
        "slow_clients_listen_timeouts_s": args.seconds / 3,
    }
    # The slow clients' scenario shortens the listeners' timeouts (30 s and 60 s by default) to
    # a third of a measurement, so that the server cuts the attackers off while it is measured.
    bound = f"{args.seconds / 3:g}"
    flags = {"slow clients": ["--listen-idle-timeout", bound, "--listen-body-timeout", bound]}
    for name, scenario in SCENARIOS.items():
        if args.only and name not in args.only:
            continue
        with tempfile.TemporaryDirectory(prefix="knock-abuse-") as folder:
            async with Serve(Path(folder), flags.get(name, [])) as serve:
                common.setdefault("open_files", serve.banner[-1])
                without, with_ = await scenario(serve, args)
            with_["serve_log_lines"] = serve.log_lines()
            if args.logs is not None:
                args.logs.mkdir(parents=True, exist_ok=True)
                log = (Path(folder) / "serve.log").read_bytes()
                (args.logs / f"{name.replace(' ', '-')}.log").write_bytes(log)
            columns[f"{name}: without"] = {key: without.get(key, "") for key in ROWS}
            columns[f"{name}: with"] = {key: with_.get(key, "") for key in ROWS}
    return common, columns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: small and short")
    parser.add_argument("--seconds", type=float, default=15.0, help="each measurement's length")
    parser.add_argument("--slow-connections", type=int, default=1100)
    parser.add_argument("--slow-bodies", type=int, default=20)
    parser.add_argument("--devices", type=int, default=2026, help="devices the NBI query scans")
    parser.add_argument("--in-values", type=int, default=900)
    parser.add_argument("--queriers", type=int, default=4)
    parser.add_argument("--json", type=Path, default=Path("bench/results/abuse.json"))
    parser.add_argument("--logs", type=Path, help="keep each scenario's knock serve log here")
    parser.add_argument(
        "--only", choices=sorted(SCENARIOS), action="append", help="run this scenario (repeat)"
    )
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.slow_connections, args.slow_bodies = 3.0, 100, 5
        args.devices, args.in_values, args.queriers = 100, 100, 2
    common, columns = asyncio.run(bench(args))
    compare("A legitimate device with and without each attack", common, columns, args.json)


if __name__ == "__main__":
    main()
