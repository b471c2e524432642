"""Sessions per second through `knock serve` (one process, or --workers N on PostgreSQL).

N concurrent simulated CPEs each run a whole session: Inform, empty POST, one
GetParameterValues queued for it through the NBI, its response, and the final 204. Each CPE keeps
one connection, as CPEs do within a session, so that with several workers the kernel's choice of
worker holds for the whole session. Prints a table and writes JSON.
Run: `.venv/bin/python bench/informs.py --devices 2000`; bench/informs_scale.py runs it against
1..N processes on PostgreSQL.
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

from procfs import children, cpu_seconds, machine_cpu, rss_kib
from report import report

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


def inform_body(serial: str, event: str) -> bytes:
    params = "".join(
        f"<ParameterValueStruct><Name>{n}</Name>"
        f'<Value xsi:type="xsd:{t}">{v.format(serial=serial)}</Value></ParameterValueStruct>'
        for n, v, t in _PARAMS
    )
    return (
        _ENV_HEAD.format(id="1")
        + "<cwmp:Inform><DeviceId><Manufacturer>Knock</Manufacturer><OUI>00D09E</OUI>"
        f"<ProductClass>BenchBox</ProductClass><SerialNumber>{serial}</SerialNumber></DeviceId>"
        f'<Event soap-enc:arrayType="cwmp:EventStruct[1]"><EventStruct><EventCode>{event}'
        "</EventCode><CommandKey></CommandKey></EventStruct></Event>"
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


HEADERS = {"Content-Type": 'text/xml; charset="utf-8"', "SOAPAction": ""}


async def run_session(
    http: aiohttp.ClientSession, url: str, serial: str, event: str, requests: int
) -> float:
    """One whole session in which the ACS is expected to send `requests` RPCs."""
    start = time.perf_counter()
    async with http.post(url, data=inform_body(serial, event), headers=HEADERS) as r:
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
    store_url: str, workers: int, cwmp: int, nbi: int, stun: int
) -> asyncio.subprocess.Process:
    """`knock serve`, returned once every worker is ready (the banner says so)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "knock", "serve",
        "--cwmp-host", "127.0.0.1", "--cwmp-port", str(cwmp),
        "--nbi-port", str(nbi), "--store-url", store_url,
        "--log-level", "warning", "--no-xmpp-enable", "--no-files-enable",
        "--stun-host", "127.0.0.1", "--stun-port", str(stun), "--workers", str(workers),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    ready = b"Knock: " if workers > 1 else b"NBI: "
    while not (line := await asyncio.wait_for(proc.stdout.readline(), 60)).startswith(ready):
        if not line:
            raise RuntimeError(f"knock serve exited with {await proc.wait()}")
    return proc


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def bench(
    devices: int, concurrency: int, rounds: int, store_url: str | None = None, workers: int = 1
) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="knock-bench-"))
    cwmp, nbi = free_port(), free_port()
    proc = await start_serve(
        store_url or f"sqlite:///{tmp / 'bench.db'}", workers, cwmp, nbi, free_udp_port()
    )
    acs_pids = children(proc.pid) if workers > 1 else [proc.pid]
    try:
        url = f"http://127.0.0.1:{cwmp}/"
        serials = [f"BENCH{i:06d}" for i in range(devices)]
        # One connection per simulated CPE (see the module's docstring).
        free: asyncio.Queue[aiohttp.ClientSession] = asyncio.Queue()
        for _ in range(concurrency):
            free.put_nowait(
                aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(limit=1), cookie_jar=aiohttp.DummyCookieJar()
                )
            )

        async def one(serial: str, event: str, requests: int) -> float:
            http = await free.get()
            try:
                return await run_session(http, url, serial, event, requests)
            finally:
                free.put_nowait(http)

        async with aiohttp.ClientSession() as nbi_http:
            # Register every device (a bootstrap session each, in which the ACS reads its
            # ManagementServer object and sets its connection-request credentials) so that
            # tasks can be queued.
            await asyncio.gather(*(one(s, "0 BOOTSTRAP", 2) for s in serials))
            latencies: list[float] = []
            elapsed = cpu = busy = spent = 0.0
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
                cpu_before = sum(cpu_seconds(pid) for pid in acs_pids)
                busy_before, all_before = machine_cpu()
                start = time.perf_counter()
                latencies += await asyncio.gather(*(one(s, "2 PERIODIC", 1) for s in serials))
                elapsed += time.perf_counter() - start
                cpu += sum(cpu_seconds(pid) for pid in acs_pids) - cpu_before
                busy_after, all_after = machine_cpu()
                busy += busy_after - busy_before
                spent += all_after - all_before
        while not free.empty():
            await free.get_nowait().close()
        memory = [rss_kib(pid) for pid in acs_pids]
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 20)
    latencies.sort()
    return {
        "devices": devices,
        "concurrency": concurrency,
        "store": "postgresql" if store_url and store_url.startswith("postgres") else "sqlite",
        "acs_processes": workers,
        "sessions": len(latencies),
        "sessions_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2),
        "acs_cpu_ms_per_session": round(cpu * 1000 / len(latencies), 3),
        # Everything on the machine (the client, PostgreSQL, other work): 100 means no core idle.
        "machine_busy_pct": round(100 * busy / spent, 1) if spent else 0.0,
        "acs_rss_mib": round(max(m.get("VmRSS", 0) for m in memory) / 1024, 1),
        "acs_peak_rss_mib": round(max(m.get("VmHWM", 0) for m in memory) / 1024, 1),
        "cpus": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="a small smoke run: 50 devices")
    parser.add_argument("--store-url", help="default: a new SQLite file")
    parser.add_argument("--workers", type=int, default=1, help="knock serve --workers")
    parser.add_argument("--json", type=Path, default=Path("bench/results/informs.json"))
    args = parser.parse_args()
    if args.quick:
        args.devices, args.rounds = 50, 1
    result = asyncio.run(
        bench(args.devices, args.concurrency, args.rounds, args.store_url, args.workers)
    )
    report("knock serve: full sessions (Inform, empty POST, GPV, 204)", result, args.json)


if __name__ == "__main__":
    main()
