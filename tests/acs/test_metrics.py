"""`/metrics` after real CWMP sessions: sessions, RPCs, faults and bad input, scraped over HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
from scripted_cpe import ScriptedCpe
from test_sessions import UPTIME, queue

from knock.cwmp.faults import cpe_fault
from knock.cwmp.rpcs import GetParameterValuesResponse, ParameterValueStruct, TransferComplete
from knock.server import Running, start
from prom import scrape, value
from serve_support import loopback_settings


async def test_sessions_rpcs_and_faults_are_counted(acs: Running) -> None:
    async with ScriptedCpe(acs.acs_url) as cpe:
        await cpe.inform("0 BOOTSTRAP", "1 BOOT")
        assert (await cpe.empty()).status == 204
        during = await scrape(acs)
        good = {"name": "getParameterValues", "parameterNames": [UPTIME]}
        await queue(acs, cpe.device_id, good)
        await queue(acs, cpe.device_id, {**good, "parameterNames": ["Device.Nope"]})
        await cpe.inform("2 PERIODIC")
        await cpe.send(TransferComplete("t1"))
        step = await cpe.empty()
        step = await cpe.answer(
            step, GetParameterValuesResponse([ParameterValueStruct(UPTIME, "1", "xsd:int")])
        )
        step = await cpe.answer(step, cpe_fault(9005, "Invalid parameter name"))
        assert step.status == 204
    async with ScriptedCpe(acs.acs_url, serial="SN0002") as other:
        await other.inform("1 BOOT")  # and never comes back: in progress at the scrape
        samples = await scrape(acs)
    assert value(during, "knock_sessions_in_progress") == 0
    assert value(samples, "knock_sessions_started_total") == 3
    assert value(samples, "knock_sessions_ended_total", outcome="ok") == 2
    assert value(samples, "knock_sessions_in_progress") == 1
    assert value(samples, "knock_rpcs_total", rpc="Inform", caller="cpe") == 3
    assert value(samples, "knock_rpcs_total", rpc="TransferComplete", caller="cpe") == 1
    assert value(samples, "knock_rpcs_total", rpc="GetParameterValues", caller="acs") == 2
    assert value(samples, "knock_faults_total", code="9005", sender="cpe") == 1


async def test_bad_input_is_counted(start_acs: Any) -> None:
    acs: Running = await start_acs(cwmp_max_body=4096)
    url = acs.acs_url
    async with aiohttp.ClientSession() as http:
        big = b"<a>" + b"y" * 8000 + b"</a>"
        async with http.post(url, data=big, headers={"Content-Type": "text/xml"}) as r:
            assert r.status == 413
        async with http.post(url, data=b"{}", headers={"Content-Type": "application/json"}) as r:
            assert r.status == 415
        async with http.post(url, data=b"<not-xml", headers={"Content-Type": "text/xml"}) as r:
            assert r.status == 400
    samples = await scrape(acs)
    assert value(samples, "knock_bad_input_dropped_total", reason="too-large") == 1
    assert value(samples, "knock_bad_input_dropped_total", reason="content-type") == 1
    assert value(samples, "knock_bad_input_dropped_total", reason="cwmp-fault") == 1
    assert value(samples, "knock_faults_total", code="8003", sender="acs") == 1
    assert value(samples, "knock_sessions_started_total") == 0


async def test_metrics_need_the_nbi_token_when_one_is_set(start_acs: Any) -> None:
    acs: Running = await start_acs(nbi_token="s3cret")
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{acs.nbi_port}/metrics") as r,
    ):
        assert r.status == 401
    assert value(await scrape(acs, token="s3cret"), "knock_sessions_started_total") == 0


async def test_two_servers_in_one_process_count_apart(acs: Running, tmp_path: Path) -> None:
    folder = tmp_path / "second"
    folder.mkdir()
    second = await start(loopback_settings(folder))
    try:
        async with ScriptedCpe(acs.acs_url) as cpe:
            await cpe.inform("1 BOOT")
            await cpe.empty()
        assert value(await scrape(acs), "knock_sessions_started_total") == 1
        assert value(await scrape(second), "knock_sessions_started_total") == 0
    finally:
        await second.close()
