"""The NBI against browser attacks, over real HTTP to `knock serve`'s NBI: a Host it is not
served under (DNS rebinding) gets 421, a state-changing request another site's page sent gets
403, and the dashboard's own requests, curl and scripts pass as before. Also in headless
Chromium: a page on another site posts a task and nothing is queued, while the NBI's own page
queues one."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from nbi_support import inform

from browser import chromium
from knock.config import ConfigError
from knock.nbi.origin import AllowedHosts, host_name
from knock.server import Running, start
from serve_support import loopback_settings

DEVICE = "00D09E-Router-SN7"
EXTRA = "acs.example.net"
TASK = {"name": "getParameterValues", "parameterNames": ["Device.DeviceInfo.UpTime"]}


@pytest.fixture
async def acs(tmp_path: Path) -> AsyncIterator[Running]:
    """`knock serve` on loopback with one extra name for its NBI and one known device."""
    settings = loopback_settings(
        tmp_path, nbi_allowed_hosts=f" {EXTRA.upper()}, lab-acs:7557", stun_enable=False
    )
    running = await start(settings)
    await running.store.record_inform(inform(DEVICE))
    yield running
    await running.close()


async def _call(
    running: Running, method: str, path: str, headers: dict[str, str], body: str = ""
) -> tuple[int, Any]:
    url = f"http://127.0.0.1:{running.nbi_port}{path}"
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, url, headers=headers, data=body) as answer,
    ):
        return answer.status, await answer.json(content_type=None)


async def _tasks(running: Running) -> list[dict[str, Any]]:
    status, tasks = await _call(running, "GET", "/tasks", {})
    assert status == 200
    return list(tasks)


def _post_task(origin_headers: dict[str, str]) -> dict[str, str]:
    # text/plain: what a page can send without the browser asking the server first.
    return {"Content-Type": "text/plain", **origin_headers}


async def test_a_host_the_nbi_is_not_served_under_is_refused(acs: Running) -> None:
    port = acs.nbi_port
    for forged in (f"rebind.attacker.example:{port}", "localhost.attacker.example", "x:y"):
        status, body = await _call(acs, "GET", "/devices", {"Host": forged})
        assert status == 421, forged
        assert "nbi_allowed_hosts" in body["error"]
        assert forged.lower() in body["error"]
    rebound = {"Host": "rebind.attacker.example"}
    status, _ = await _call(acs, "POST", f"/devices/{DEVICE}/tasks", rebound, json.dumps(TASK))
    assert status == 421
    # The dashboard's pages and the metrics are refused alike: nothing answers a rebound name.
    for path in ("/", "/metrics"):
        status, _ = await _call(acs, "GET", path, {"Host": "rebind.attacker.example"})
        assert status == 421
    assert await _tasks(acs) == []


async def test_its_own_names_and_addresses_are_served(acs: Running) -> None:
    port = acs.nbi_port
    for host in (
        f"127.0.0.1:{port}",
        f"localhost:{port}",
        f"LocalHost:{port}",
        f"[::1]:{port}",
        f"{EXTRA}:{port}",  # configured (in upper case, with spaces)
        "lab-acs",  # configured with a port, which is not compared
        "192.0.2.10:7557",  # any address: rebinding needs a name
    ):
        status, devices = await _call(acs, "GET", "/devices", {"Host": host})
        assert status == 200, host
        assert [d["_id"] for d in devices] == [DEVICE]


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"},
        # Another port of loopback is the same site, and not the NBI's page.
        {"Origin": "http://127.0.0.1:8000", "Sec-Fetch-Site": "same-site"},
        # Browsers without Sec-Fetch-Site: the Origin decides.
        {"Origin": "http://localhost:8000"},
        {"Origin": "null"},  # a sandboxed frame or a file
    ],
    ids=["cross-site", "same-site", "origin-only", "opaque-origin"],
)
async def test_a_cross_site_change_is_refused(acs: Running, headers: dict[str, str]) -> None:
    path = f"/devices/{DEVICE}/tasks"
    status, body = await _call(acs, "POST", path, _post_task(headers), json.dumps(TASK))
    assert status == 403
    assert "refused" in body["error"] and "dashboard" in body["error"]
    status, _ = await _call(
        acs, "POST", f"/devices/{DEVICE}/connection-request", _post_task(headers)
    )
    assert status == 403
    status, _ = await _call(acs, "DELETE", f"/devices/{DEVICE}", headers)
    assert status == 403
    assert await _tasks(acs) == []
    assert await acs.store.get_device(DEVICE) is not None
    # Reading stays open to such a page: the browser keeps the answer from it (no CORS).
    status, _ = await _call(acs, "GET", "/devices", headers)
    assert status == 200


async def test_the_dashboards_own_change_is_accepted(acs: Running) -> None:
    own = f"http://127.0.0.1:{acs.nbi_port}"
    for headers in (
        {"Origin": own, "Sec-Fetch-Site": "same-origin"},
        {"Origin": own},  # a browser without Sec-Fetch-Site
        {"Origin": f"http://{EXTRA}:{acs.nbi_port}", "Host": f"{EXTRA}:{acs.nbi_port}"},
    ):
        path = f"/devices/{DEVICE}/tasks"
        status, body = await _call(acs, "POST", path, _post_task(headers), json.dumps(TASK))
        assert status == 202, headers
        assert body["name"] == TASK["name"]
    assert len(await _tasks(acs)) == 3


async def test_curl_is_accepted(acs: Running) -> None:
    """curl sends no Origin and no Sec-Fetch-Site: the GenieACS scripts' way in."""
    curl = await asyncio.create_subprocess_exec(
        "curl", "-sS", "-X", "POST", "--data-binary", json.dumps(TASK),
        "-w", "\n%{http_code}",
        f"http://127.0.0.1:{acs.nbi_port}/devices/{DEVICE}/tasks",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await curl.communicate()
    body, _, code = out.decode().rpartition("\n")
    assert curl.returncode == 0
    assert code == "202", body
    assert [t["name"] for t in await _tasks(acs)] == [TASK["name"]]


async def test_in_chromium_another_sites_page_queues_nothing(acs: Running, tmp_path: Path) -> None:
    """A page on http://localhost:<other port> (another site than 127.0.0.1) posts a task the
    way an attacker's page would; the NBI's own page posts the same task and it is queued."""
    nbi = f"http://127.0.0.1:{acs.nbi_port}"
    target = f"{nbi}/devices/{DEVICE}/tasks"
    attack = (
        f"fetch({json.dumps(target)}, {{method: 'POST', mode: 'no-cors', body: "
        f"{json.dumps(json.dumps(TASK))}, headers: {{'Content-Type': 'text/plain'}}}})"
        ".then((r) => r.type)"
    )
    app = web.Application()
    app.router.add_get("/", _elsewhere)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    elsewhere = f"http://localhost:{runner.addresses[0][1]}/"
    try:
        async with chromium(tmp_path) as browser:
            tab = await browser.new_page()
            await tab.goto(elsewhere)
            # An opaque answer: the request went out and the NBI answered it (the 403 is hidden
            # from the page), so the empty queue below is the NBI's refusal, not a lost request.
            assert await tab.evaluate(attack) == "opaque"
            assert await _tasks(acs) == []
            await tab.goto(nbi + "/")
            same_origin = attack.replace("'no-cors'", "'same-origin'").replace("r.type", "r.status")
            assert await tab.evaluate(same_origin) == 202
    finally:
        await runner.cleanup()
    assert [t["name"] for t in await _tasks(acs)] == [TASK["name"]]


async def _elsewhere(request: web.Request) -> web.Response:
    page = "<!doctype html><title>elsewhere</title><p>a page on another site</p>"
    return web.Response(text=page, content_type="text/html")


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("127.0.0.1:7557", "127.0.0.1"),
        ("[::1]:7557", "::1"),
        ("[::1]", "::1"),
        ("ACS.Example.NET", "acs.example.net"),
        ("acs:", None),
        ("acs:75a", None),
        ("[acs]:1", None),
        ("[::1", None),
        ("::1", None),
        ("", None),
    ],
)
def test_host_header_names(header: str, name: str | None) -> None:
    assert host_name(header) == name


def test_allowed_hosts_from_the_settings() -> None:
    assert AllowedHosts.of().names == {"localhost"}
    assert AllowedHosts.of("0.0.0.0", "a.example,  ,B.example:80").names == {
        "localhost",
        "a.example",
        "b.example",
    }
    assert "acs.lan" in AllowedHosts.of("acs.lan").names
    with pytest.raises(ValueError, match=re.escape("'http://acs.example' is not a host name")):
        AllowedHosts.of(extra="http://acs.example")


def test_a_bad_setting_stops_the_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=re.escape("nbi_allowed_hosts entry 'acs.example/x'")):
        loopback_settings(tmp_path, nbi_allowed_hosts="acs.example/x")
