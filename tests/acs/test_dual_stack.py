"""`knock serve` on `::` answers both families, and a list of hosts listens on each."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import aiohttp
from scripted_cpe import ScriptedCpe
from test_xmpp_in_serve import log_in

from knock.acs.xmpp_accounts import put_account
from knock.server import Running
from knock.xmpp.client_conn import ConnState


async def _informs(url: str, serial: str) -> str:
    """A session at *url*; returns the device's id."""
    async with ScriptedCpe(url, serial=serial) as cpe:
        await cpe.inform("1 BOOT")
        assert (await cpe.empty()).status == 204
    return cpe.device_id


async def test_a_wildcard_v6_host_serves_cwmp_and_xmpp_on_both_families(start_acs: Any) -> None:
    acs: Running = await start_acs(cwmp_host="::", xmpp_host="::", stun_host="::")
    assert acs.acs_url == f"http://127.0.0.1:{acs.cwmp_port}/"
    [sock] = acs.cwmp_sockets  # one dual-stack socket
    assert sock.getsockname()[0] == "::"
    for url in (acs.acs_url, f"http://[::1]:{acs.cwmp_port}/"):
        device_id = await _informs(url, f"SN-{len(url)}")
        assert await acs.store.get_device(device_id) is not None, url
    assert acs.xmpp is not None and acs.ca is not None
    await put_account(acs.store, "cpe-1", "cpe-pw")
    for host in ("127.0.0.1", "::1"):
        assert await log_in(
            acs.xmpp.port, "cpe-1@knock.lab/cwmp", "cpe-pw", acs.ca.cert_path, host
        ), host
    # The ACS's own XMPP client found the server listening on `::`.
    assert acs.xmpp_requester is not None
    assert acs.xmpp_requester.status.state is ConnState.ONLINE


async def test_a_host_list_listens_on_each_address_at_one_port(start_acs: Any) -> None:
    acs: Running = await start_acs(
        cwmp_host="127.0.0.1, ::1", xmpp_host="::1,127.0.0.1", stun_host="127.0.0.1,::1"
    )
    names = sorted(sock.getsockname()[0] for sock in acs.cwmp_sockets)
    assert names == ["127.0.0.1", "::1"]
    assert {sock.getsockname()[1] for sock in acs.cwmp_sockets} == {acs.cwmp_port}
    await _informs(f"http://[::1]:{acs.cwmp_port}/", "SN-LIST")
    assert acs.stun is not None
    assert sorted(s.getsockname()[0] for s in acs.stun.sockets) == ["127.0.0.1", "::1"]
    assert acs.xmpp_requester is not None
    assert acs.xmpp_requester.status.state is ConnState.ONLINE


async def test_the_banner_of_a_dual_stack_serve_prints_urls_that_answer(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "knock", "serve",
        "--cwmp-host", "::", "--cwmp-port", "0", "--nbi-host", "::1", "--nbi-port", "0",
        "--stun-host", "::", "--stun-port", "0", "--xmpp-host", "::", "--xmpp-port", "0",
        "--xmpp-tls-port", "0", "--files-host", "::", "--files-port", "0",
        "--store-url", f"sqlite:///{tmp_path / 'k.db'}",
        "--data-dir", str(tmp_path), "--log-level", "warning", "--cr-provision", "off",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        while not lines or not lines[-1].startswith("XMPP"):
            line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
            assert line, f"knock serve ended: {lines}"
            lines.append(line.rstrip())
        primary = lines[0].split()[-1]
        assert lines[0].startswith("Knock ACS: point CPEs at http://127.0.0.1:"), lines
        assert lines[1].startswith("  also at "), lines
        port = primary.rsplit(":", 1)[1].rstrip("/")
        also = lines[1].split()[2:]
        assert also[-1] == f"http://[::1]:{port}/", lines  # loopback last
        assert all(url.startswith("http://") and url.endswith(f":{port}/") for url in also)
        assert not any("::" in url and "[" not in url for url in also), also
        assert lines[2].startswith("NBI: http://[::1]:"), lines
        assert lines[3].startswith("Files: http://127.0.0.1:"), lines
        files_port = lines[3].rsplit(":", 1)[1].rstrip("/")
        assert lines[4].startswith("STUN (TR-111): udp [::]:"), lines
        assert lines[5].startswith("XMPP (knock.lab): tcp [::]:"), lines
        async with aiohttp.ClientSession() as http:
            for host in ("127.0.0.1", "[::1]"):  # the file server's one socket, both families
                async with http.get(f"http://{host}:{files_port}/absent.bin") as response:
                    assert response.status == 404, host
        await _informs(primary, "SN-BANNER-4")
        await _informs(also[-1], "SN-BANNER-6")
    finally:
        proc.terminate()
        await proc.wait()
