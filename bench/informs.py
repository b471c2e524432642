"""CPU per CWMP session in `knock serve` on SQLite and on PostgreSQL, against a floor measured in
the same run: bare aiohttp answering a fixed InformResponse (bench/floor_server.py).

Simulated CPEs, `--concurrency` at a time, each run whole sessions, round after round:
- bootstrap: Inform "0 BOOTSTRAP,1 BOOT", empty POST, the ACS's GetParameterValues of
  ManagementServer. and its SetParameterValues of the connection-request pair, 204;
- periodic: Inform "2 PERIODIC", empty POST, 204 (no task), also against the floor;
- task: "2 PERIODIC" with one GetParameterValues queued through the NBI.
Each session keeps one connection (so that with several workers the kernel's choice of worker
holds for it); with `--connection new` (the default) every session opens a new one, as a fleet's
CPEs do. The figure that carries over between machines is the server's CPU time per session (user
+ system from /proc, over the timed rounds only), and ratios of those measured in one run: the
machine is shared, wall-clock figures are not. PostgreSQL's own CPU (its process tree) is
counted for the rounds too when the benchmark starts the server itself.
Neither side checks the CPEs by default (knock serve on loopback without cwmp_auth, the floor
never); `--cwmp-auth basic` has knock serve check a shared Basic pair, to show what that adds.
Prints a table and writes JSON.
Run: `.venv/bin/python bench/informs.py --devices 1000`; bench/informs_scale.py runs the rounds
against 1..N processes on PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from procfs import children, cpu_seconds, machine_cpu, rss_kib, tree_cpu_seconds
from report import compare

NS = "urn:dslforum-org:cwmp-1-0"
_ENV_HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns:soap-enc="http://schemas.xmlsoap.org/soap/encoding/" '
    'xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
    f'xmlns:cwmp="{NS}">'
    '<soap-env:Header><cwmp:ID soap-env:mustUnderstand="1">{id}</cwmp:ID></soap-env:Header>'
    "<soap-env:Body>"
)
_ENV_TAIL = "</soap-env:Body></soap-env:Envelope>"

_PARAMS = [
    ("InternetGatewayDevice.DeviceSummary", "InternetGatewayDevice:1.4[](Baseline:1)", "string"),
    ("InternetGatewayDevice.DeviceInfo.HardwareVersion", "HW-1.0", "string"),
    ("InternetGatewayDevice.DeviceInfo.SoftwareVersion", "SW-2.3.4", "string"),
    ("InternetGatewayDevice.DeviceInfo.ProvisioningCode", "", "string"),
    ("InternetGatewayDevice.DeviceInfo.UpTime", "3600", "unsignedInt"),
    ("InternetGatewayDevice.ManagementServer.ParameterKey", "", "string"),
    (
        "InternetGatewayDevice.ManagementServer.ConnectionRequestURL",
        "http://127.0.0.1:30005/{serial}",
        "string",
    ),
    (
        "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.ExternalIPAddress",
        "192.0.2.10",
        "string",
    ),
]


def inform_body(serial: str, events: str) -> bytes:
    """An Inform with the comma-separated *events*."""
    params = "".join(
        f"<ParameterValueStruct><Name>{n}</Name>"
        f'<Value xsi:type="xsd:{t}">{v.format(serial=serial)}</Value></ParameterValueStruct>'
        for n, v, t in _PARAMS
    )
    codes = events.split(",")
    return (
        _ENV_HEAD.format(id="1")
        + "<cwmp:Inform><DeviceId><Manufacturer>Knock</Manufacturer><OUI>00D09E</OUI>"
        f"<ProductClass>BenchBox</ProductClass><SerialNumber>{serial}</SerialNumber></DeviceId>"
        f'<Event soap-enc:arrayType="cwmp:EventStruct[{len(codes)}]">'
        + "".join(
            f"<EventStruct><EventCode>{code}</EventCode><CommandKey></CommandKey></EventStruct>"
            for code in codes
        )
        + "</Event>"
        "<MaxEnvelopes>1</MaxEnvelopes><CurrentTime>2026-11-26T12:00:00Z</CurrentTime>"
        "<RetryCount>0</RetryCount>"
        f'<ParameterList soap-enc:arrayType="cwmp:ParameterValueStruct[{len(_PARAMS)}]">'
        f"{params}</ParameterList></cwmp:Inform>" + _ENV_TAIL
    ).encode()


_ID_RE = re.compile(rb"<cwmp:ID[^>]*>([^<]*)</cwmp:ID>")
_NAME_RE = re.compile(rb"<string>([^<]*)</string>")


def answer(request: bytes) -> bytes:
    """Answer the ACS's request: fixed values for a GetParameterValues, success for a
    SetParameterValues (the connection-request credentials the ACS sets at bootstrap)."""
    match = _ID_RE.search(request)
    if match is None:
        raise RuntimeError(f"expected an ACS request, got {request[:300]!r}")
    head = _ENV_HEAD.format(id=match.group(1).decode())
    if b"SetParameterValues" in request:
        return (
            head + "<cwmp:SetParameterValuesResponse><Status>0</Status>"
            "</cwmp:SetParameterValuesResponse>" + _ENV_TAIL
        ).encode()
    if b"GetParameterValues" not in request:
        raise RuntimeError(f"unexpected ACS request {request[:300]!r}")
    # A partial path (the ACS reading ManagementServer. at bootstrap) gets nothing back.
    names = [n.decode() for n in _NAME_RE.findall(request) if not n.endswith(b".")]
    items = "".join(
        f'<ParameterValueStruct><Name>{n}</Name><Value xsi:type="xsd:string">v</Value>'
        "</ParameterValueStruct>"
        for n in names
    )
    return (
        head + "<cwmp:GetParameterValuesResponse>"
        f'<ParameterList soap-enc:arrayType="cwmp:ParameterValueStruct[{len(names)}]">'
        f"{items}</ParameterList></cwmp:GetParameterValuesResponse>" + _ENV_TAIL
    ).encode()


FLOOR_SERVER = str(Path(__file__).resolve().parent / "floor_server.py")
HEADERS = {"Content-Type": 'text/xml; charset="utf-8"', "SOAPAction": ""}
# The shared CPE pair of `--cwmp-auth basic` (loopback only, a benchmark's own server).
BASIC = aiohttp.BasicAuth("bench", "bench-cwmp-password")


async def run_session(
    http: aiohttp.ClientSession, url: str, serial: str, events: str, requests: int
) -> float:
    """One whole session in which the ACS is expected to send `requests` RPCs; *events* as
    inform_body takes them."""
    start = time.perf_counter()
    async with http.post(url, data=inform_body(serial, events), headers=HEADERS) as r:
        if r.status != 200:
            raise RuntimeError(f"{serial}: Inform answered {r.status}: {await r.text()}")
        await r.read()
        cookie = r.cookies.get("knock_session")
    headers = {"Cookie": f"knock_session={cookie.value}"} if cookie else {}
    body = b""
    for _ in range(requests + 1):
        async with http.post(
            url, data=body, headers={**HEADERS, **headers} if body else headers
        ) as r:
            reply = await r.read()
            status = r.status
        if status == 204:
            break
        body = answer(reply)
    if status != 204:
        raise RuntimeError(f"{serial}: session did not end with 204 but {status}")
    return time.perf_counter() - start


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def start_serve(
    store_url: str,
    workers: int,
    cwmp: int,
    nbi: int,
    stun: int,
    profile: Path | None = None,
    basic: bool = False,
) -> asyncio.subprocess.Process:
    """`knock serve`, returned once every worker is ready (the banner says so); with *profile*,
    under cProfile, which writes its statistics there when the process ends; with *basic*,
    CPEs authenticate with the shared pair `BASIC`."""
    profiling = ("-m", "cProfile", "-o", str(profile)) if profile else ()
    auth = (
        ("--cwmp-auth", "basic", "--cwmp-username", BASIC.login, "--cwmp-password", BASIC.password)
        if basic
        else ()
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *profiling, "-m", "knock", "serve",
        "--cwmp-host", "127.0.0.1", "--cwmp-port", str(cwmp),
        "--nbi-port", str(nbi), "--store-url", store_url,
        "--log-level", "warning", "--no-xmpp-enable", "--no-files-enable",
        "--stun-host", "127.0.0.1", "--stun-port", str(stun), "--workers", str(workers), *auth,
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    ready = b"Knock: " if workers > 1 else b"NBI: "
    while not (line := await asyncio.wait_for(proc.stdout.readline(), 60)).startswith(ready):
        if not line:
            raise RuntimeError(f"knock serve exited with {await proc.wait()}")
    return proc


async def start_floor(port: int) -> asyncio.subprocess.Process:
    """bench/floor_server.py in its own process, returned once it listens."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        FLOOR_SERVER,
        str(port),
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    if await asyncio.wait_for(proc.stdout.readline(), 30) != b"ready\n":
        raise RuntimeError(f"the floor server exited with {await proc.wait()}")
    return proc


async def stop(proc: asyncio.subprocess.Process) -> None:
    proc.terminate()
    await asyncio.wait_for(proc.wait(), 20)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Clients:
    """Where the simulated CPEs' sessions come from: `concurrency` at a time, each on one
    connection, a new one per session (`new`) or one kept per CPE slot; with *basic*, every
    POST carries the Basic pair `BASIC`."""

    def __init__(self, url: str, concurrency: int, new: bool, basic: bool = False) -> None:
        self.url = url
        self._new = new
        self._auth = BASIC if basic else None
        self._free: asyncio.Queue[aiohttp.ClientSession] = asyncio.Queue()
        for _ in range(concurrency):
            self._free.put_nowait(self._client())

    def _client(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=1),
            cookie_jar=aiohttp.DummyCookieJar(),
            auth=self._auth,
        )

    async def session(self, serial: str, events: str, requests: int) -> float:
        http = await self._free.get()
        try:
            return await run_session(http, self.url, serial, events, requests)
        finally:
            if self._new:  # the connection closes with its session
                await http.close()
                http = self._client()
            self._free.put_nowait(http)

    async def close(self) -> None:
        while not self._free.empty():
            await self._free.get_nowait().close()


async def timed(
    clients: Clients,
    serials: list[str],
    events: str,
    requests: int,
    servers: list[int],
    database: int | None = None,
) -> dict[str, Any]:
    """One session of each serial, all `clients` at once; the CPU the *servers* processes (and
    the *database* process tree) spent on them, per session."""
    cpu_before = sum(cpu_seconds(pid) for pid in servers)
    db_before = tree_cpu_seconds(database) if database else 0.0
    busy_before, all_before = machine_cpu()
    start = time.perf_counter()
    latencies = sorted(
        await asyncio.gather(*(clients.session(s, events, requests) for s in serials))
    )
    elapsed = time.perf_counter() - start
    cpu = sum(cpu_seconds(pid) for pid in servers) - cpu_before
    busy_after, all_after = machine_cpu()
    figures = {
        "sessions": len(latencies),
        "cpu_ms_per_session": round(cpu * 1000 / len(latencies), 3),
        "sessions_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2),
        # Everything on the machine (the client, PostgreSQL, other work): 100 means no core idle.
        "machine_busy_pct": round(100 * (busy_after - busy_before) / (all_after - all_before), 1),
    }
    if database:
        db_cpu = tree_cpu_seconds(database) - db_before
        figures["db_cpu_ms_per_session"] = round(db_cpu * 1000 / len(latencies), 3)
    return figures


def merged(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Rounds of the same sessions as one: totals, and the median of the per-round figures."""
    figures = {key: round(statistics.median(run[key] for run in runs), 3) for key in runs[0]}
    figures["sessions"] = sum(run["sessions"] for run in runs)
    return figures


async def floor(
    devices: int, concurrency: int, rounds: int, new: bool, basic: bool = False
) -> dict[str, Any]:
    """Periodic sessions against the floor server (which checks no Authorization header)."""
    port = free_port()
    proc = await start_floor(port)
    clients = Clients(f"http://127.0.0.1:{port}/", concurrency, new, basic)
    try:
        serials = [f"BENCH{i:06d}" for i in range(devices)]
        runs = [await timed(clients, serials, "2 PERIODIC", 0, [proc.pid]) for _ in range(rounds)]
    finally:
        await clients.close()
        await stop(proc)
    return {"periodic": merged(runs)}


async def bench(
    devices: int,
    concurrency: int,
    rounds: int,
    store_url: str | None = None,
    workers: int = 1,
    new: bool = True,
    database: int | None = None,
    profile: Path | None = None,
    basic: bool = False,
) -> dict[str, Any]:
    """The bootstrap, periodic and task rounds against `knock serve`; *database*: the process
    whose tree runs the store's database, to count its CPU; *profile*, *basic*: as start_serve
    takes them."""
    tmp = Path(tempfile.mkdtemp(prefix="knock-bench-"))
    cwmp, nbi = free_port(), free_port()
    store = store_url or f"sqlite:///{tmp / 'bench.db'}"
    proc = await start_serve(store, workers, cwmp, nbi, free_udp_port(), profile, basic)
    acs_pids = children(proc.pid) if workers > 1 else [proc.pid]
    clients = Clients(f"http://127.0.0.1:{cwmp}/", concurrency, new, basic)
    try:
        serials = [f"BENCH{i:06d}" for i in range(devices)]
        # Each device's first session: the ACS reads its ManagementServer object and sets its
        # connection-request credentials, which makes it known so that tasks can be queued.
        figures = {
            "bootstrap": await timed(clients, serials, "0 BOOTSTRAP,1 BOOT", 2, acs_pids, database)
        }
        runs = [
            await timed(clients, serials, "2 PERIODIC", 0, acs_pids, database)
            for _ in range(rounds)
        ]
        figures["periodic"] = merged(runs)
        runs = []
        async with aiohttp.ClientSession() as nbi_http:
            for _ in range(rounds):
                for serial in serials:
                    async with nbi_http.post(
                        f"http://127.0.0.1:{nbi}/devices/00D09E-BenchBox-{serial}/tasks",
                        json={
                            "name": "getParameterValues",
                            "parameterNames": ["InternetGatewayDevice.DeviceInfo.UpTime"],
                        },
                    ) as r:
                        if r.status not in (200, 202):
                            raise RuntimeError(f"NBI refused the task: {r.status} {await r.text()}")
                runs.append(await timed(clients, serials, "2 PERIODIC", 1, acs_pids, database))
        figures["task"] = merged(runs)
        memory = [rss_kib(pid) for pid in acs_pids]
    finally:
        await clients.close()
        await stop(proc)
    figures["acs_rss_mib"] = round(max(m.get("VmRSS", 0) for m in memory) / 1024, 1)
    figures["acs_peak_rss_mib"] = round(max(m.get("VmHWM", 0) for m in memory) / 1024, 1)
    return figures


def _ratio(a: float, b: float) -> float:
    return round(a / b, 2) if b else 0.0


def ratios(subjects: dict[str, dict[str, Any]]) -> dict[str, float]:
    """The issue's figures: each store's periodic session against the floor, its bootstrap
    against its periodic, PostgreSQL against SQLite, PostgreSQL's own CPU per session."""
    cpu = {
        (name, kind): figures[kind]["cpu_ms_per_session"]
        for name, figures in subjects.items()
        for kind in ("bootstrap", "periodic", "task")
        if kind in figures
    }
    found: dict[str, float] = {}
    for store in ("sqlite", "postgresql"):
        if (store, "periodic") not in cpu:
            continue
        found[f"{store}_periodic_over_floor"] = _ratio(
            cpu[store, "periodic"], cpu["floor", "periodic"]
        )
        found[f"{store}_bootstrap_over_periodic"] = _ratio(
            cpu[store, "bootstrap"], cpu[store, "periodic"]
        )
    if ("sqlite", "periodic") in cpu and ("postgresql", "periodic") in cpu:
        for kind in ("bootstrap", "periodic", "task"):
            found[f"postgresql_over_sqlite_{kind}"] = _ratio(
                cpu["postgresql", kind], cpu["sqlite", kind]
            )
    pg = subjects.get("postgresql", {})
    for kind in ("bootstrap", "periodic"):
        if "db_cpu_ms_per_session" in pg.get(kind, {}):
            found[f"postgresql_server_cpu_ms_per_{kind}"] = pg[kind]["db_cpu_ms_per_session"]
    return found


def table(subjects: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """A column per subject, a row per round and figure."""
    return {
        name: {
            f"{kind}_{key}": value
            for kind, round_figures in figures.items()
            if isinstance(round_figures, dict)
            for key, value in round_figures.items()
        }
        | {key: value for key, value in figures.items() if not isinstance(value, dict)}
        for name, figures in subjects.items()
    }


async def run_all(
    stores: list[str],
    devices: int,
    concurrency: int,
    rounds: int,
    new: bool,
    pg_url: str | None,
    profile: Path | None,
    basic: bool = False,
) -> dict[str, dict[str, Any]]:
    subjects = {"floor": await floor(devices, concurrency, rounds, new, basic)}
    for store in stores:
        profiled = None if profile is None else profile.with_name(f"{profile.name}.{store}")
        if store == "sqlite":
            subjects[store] = await bench(
                devices, concurrency, rounds, new=new, profile=profiled, basic=basic
            )
            continue
        server = None if pg_url else private_postgres()
        try:
            url = pg_url or server.url  # type: ignore[union-attr]
            await empty(url)
            postmaster = None if server is None else server.postmaster_pid()
            subjects[store] = await bench(
                devices,
                concurrency,
                rounds,
                url,
                new=new,
                database=postmaster,
                profile=profiled,
                basic=basic,
            )
        finally:
            if server is not None:
                server.stop()
    return subjects


def private_postgres() -> Any:
    """PostgreSQL as the tests start it (tests/pg_server.py: loopback, durability off)."""
    pg_server = _pg_server()
    server = pg_server._Server(pg_server._bin_dir())
    server.start()
    return server


async def empty(url: str) -> None:
    """Drop Knock's tables, for a run that starts from no device."""
    await _pg_server().emptied(url)


def _pg_server() -> Any:
    """tests/pg_server.py, imported when a run needs PostgreSQL (the other benchmarks that
    import this module do not)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    import pg_server

    return pg_server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2, help="periodic and task rounds each")
    parser.add_argument("--quick", action="store_true", help="a small smoke run: 50 devices")
    parser.add_argument(
        "--stores", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql"
    )
    parser.add_argument(
        "--pg-url",
        help="a scratch PostgreSQL database (its tables are dropped); default: a private "
        "server started for the run, whose own CPU is then counted too",
    )
    parser.add_argument(
        "--connection",
        choices=("new", "kept"),
        default="new",
        help="a new TCP connection per session, or one kept per simulated CPE",
    )
    parser.add_argument(
        "--cwmp-auth",
        choices=("none", "basic"),
        default="none",
        help="none: neither knock serve nor the floor checks the CPEs (the default); basic: "
        "knock serve checks a shared Basic pair on each session's Inform, which every POST "
        "carries, and the floor checks nothing: what authentication adds to Knock's figures",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="run knock serve under cProfile, writing PROFILE.sqlite and PROFILE.postgresql "
        "(read them with python -m pstats); its figures are then cProfile's, not Knock's",
    )
    parser.add_argument("--json", type=Path, default=Path("bench/results/informs.json"))
    args = parser.parse_args()
    if args.quick:
        args.devices, args.rounds = 50, 1
    stores = args.stores.split(",")
    new = args.connection == "new"
    basic = args.cwmp_auth == "basic"
    subjects = asyncio.run(
        run_all(
            stores,
            args.devices,
            args.concurrency,
            args.rounds,
            new,
            args.pg_url,
            args.profile,
            basic,
        )
    )
    common = {
        "devices": args.devices,
        "concurrency": args.concurrency,
        "connection": args.connection,
        "cwmp_auth": args.cwmp_auth,
        "cpus": os.cpu_count(),
        **ratios(subjects),
    }
    compare(
        "CPU per CWMP session: knock serve against the bare aiohttp floor (ms of server CPU)",
        common,
        table({name: subjects[name] for name in [*stores, "floor"]}),
        args.json,
    )


if __name__ == "__main__":
    main()
