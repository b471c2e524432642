"""A renewed XMPP certificate, swapped in on disk and announced with SIGHUP to a real
`knock serve`, is what the next login gets, while a device logged in before keeps its
connection and takes connection requests over it."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from knock.cpe.cr_rate import CrPolicy
from knock.cpe.cr_services import CrServices
from knock.cpe.device import SimulatedCpe
from knock.cpe.trust import device_tls
from knock.cwmp.deviceid import device_key
from knock.vocab import CrMethod
from serve_process import Serve, free_port
from tls_support import OperatorCa, install, served_certificate

WAIT = 15.0
UPTIME = "Device.DeviceInfo.UpTime"


async def opened(nbi: str, http: aiohttp.ClientSession) -> float:
    async with http.get(f"{nbi}/metrics") as answer:
        text = await answer.text()
    (line,) = [
        line
        for line in text.splitlines()
        if line.startswith("knock_xmpp_server_connections_opened_total ")
    ]
    return float(line.split()[1])


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator[tuple[Serve, OperatorCa, Path, Path]]:
    operator = OperatorCa(tmp_path)
    cert, key = tmp_path / "xmpp-cert.pem", tmp_path / "xmpp-key.pem"
    install(operator.issue("first", ["knock.lab"]), cert, key)
    server = Serve(
        f"sqlite:///{tmp_path / 'knock.db'}",
        "--xmpp-enable", "--xmpp-host", "127.0.0.1", "--xmpp-port", str(free_port()),
        "--xmpp-tls-port", "0", "--xmpp-tls-cert", str(cert), "--xmpp-tls-key", str(key),
        "--data-dir", str(tmp_path / "data"), "--cr-provision", "random", "--cr-order", "xmpp",
        ready_line=b"XMPP (",
    )  # fmt: skip
    await server.start()
    yield server, operator, cert, key
    await server.stop()


async def test_a_renewed_certificate_reaches_new_logins_and_spares_connected_devices(
    serve: tuple[Serve, OperatorCa, Path, Path], tmp_path: Path
) -> None:
    server, operator, cert, key = serve
    (banner,) = [line.decode() for line in server.output if line.startswith(b"XMPP (")]
    tls_port = int(re.findall(r"direct TLS (\d+)", banner)[0])
    trust = device_tls(str(operator.path))
    services = CrServices((CrMethod.HTTP, CrMethod.XMPP), CrPolicy(rate_limit=0), tls=trust)
    await services.start()
    cpe = SimulatedCpe("RELOAD1", "tr181", tmp_path / "state", server.url)
    services.attach(cpe)
    settled = asyncio.Event()
    cpe.on_settled(settled.set)
    running = asyncio.create_task(cpe.run())
    assert services.xmpp is not None
    (agent,) = services.xmpp.agents
    try:
        async with asyncio.timeout(WAIT):
            while agent.client is None:  # provisioned at the end of the first session
                settled.clear()
                await settled.wait()
            await agent.client.wait_online()
        client = agent.client
        before = await served_certificate(tls_port, trust, "knock.lab")
        async with aiohttp.ClientSession() as http:
            connections = await opened(server.nbi_url, http)
            install(operator.issue("renewed", ["knock.lab"]), cert, key)
            renewed = ssl.PEM_cert_to_DER_cert(cert.read_text())
            assert server.proc is not None
            os.kill(server.proc.pid, signal.SIGHUP)
            probes = 1
            async with asyncio.timeout(WAIT):
                while (now := await served_certificate(tls_port, trust, "knock.lab")) != renewed:
                    assert now == before
                    probes += 1
            device_id = device_key(cpe.model.device_id())
            async with http.post(
                f"{server.nbi_url}/devices/{device_id}/tasks",
                params={"connection_request": "", "timeout": "10000"},
                json={"name": "getParameterValues", "parameterNames": [UPTIME]},
            ) as answer:
                assert answer.status == 200, await answer.text()
            # The device's connection is the one it had: no login but the probes' since.
            assert agent.client is client and client.online
            assert await opened(server.nbi_url, http) == connections + probes
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await services.close()


async def test_knock_serve_prints_where_the_lab_ca_is_and_the_nbi_serves_it(
    tmp_path: Path,
) -> None:
    server = Serve(
        f"sqlite:///{tmp_path / 'knock.db'}",
        "--xmpp-enable", "--xmpp-host", "127.0.0.1", "--xmpp-port", "0", "--xmpp-tls-port", "0",
        "--data-dir", str(tmp_path / "data"), "--nbi-token", "secret",
        ready_line=b"Lab CA",
    )  # fmt: skip
    await server.start()
    try:
        line = server.output[-1].decode()
        ca = tmp_path / "data" / "ca.pem"
        assert f" {ca}, also GET {server.nbi_url}/ca.pem" in line
        async with aiohttp.ClientSession() as http, http.get(f"{server.nbi_url}/ca.pem") as got:
            assert got.status == 200  # no token: the CA is no secret
            assert await got.read() == ca.read_bytes()
        assert (tmp_path / "data" / "ca-key.pem").stat().st_mode & 0o777 == 0o600
    finally:
        await server.stop()
