"""A port on the host's loopback that leads into a lab namespace (the NAT demo's dashboard)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import aiohttp

from knock.lab import NatLab
from knock.lab.forward import forward


async def test_a_host_port_leads_to_a_server_on_the_namespaces_own_loopback(
    nat_lab: NatLab, tmp_path: Path
) -> None:
    (tmp_path / "hello.txt").write_text("from pub\n" * 20_000)  # more than one read's worth
    inside = nat_lab.python(
        "pub", "-u", "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(tmp_path), "0",
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert inside.stdout is not None
        banner = inside.stdout.readline()  # "Serving HTTP on 127.0.0.1 port N (...) ..."
        port = int(banner.split(" port ")[1].split()[0])
        server = await forward(nat_lab, "pub", ("127.0.0.1", 0), ("127.0.0.1", port))
        try:
            here = server.sockets[0].getsockname()[1]
            async with aiohttp.ClientSession() as http:
                for _ in range(2):  # a connection each time: http.server closes after one
                    async with http.get(f"http://127.0.0.1:{here}/hello.txt") as r:
                        assert r.status == 200
                        assert await r.text() == "from pub\n" * 20_000
                async with http.get(f"http://127.0.0.1:{here}/nothing") as r:
                    assert r.status == 404
        finally:
            server.close()
            await server.wait_closed()
    finally:
        inside.terminate()
        inside.wait(10)
