"""HTTP connection requests from the ACS, proven by the Inform that follows, over real sockets."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from cr_endpoint import CrEndpoint
from scripted_cpe import ScriptedCpe

from knock.cwmp.rpcs import (
    GetParameterValues,
    GetParameterValuesResponse,
    ParameterValueStruct,
)
from knock.server import Running
from knock.vocab import CrMethod, CrOutcome

CR_URL = "Device.ManagementServer.ConnectionRequestURL"
UPTIME = "Device.DeviceInfo.UpTime"


@dataclass
class Lab:
    acs: Running
    cpe: ScriptedCpe
    endpoint: CrEndpoint


async def session_after_cr(cpe: ScriptedCpe) -> None:
    """What the device does after accepting: inform, then answer whatever the ACS asks."""
    await cpe.inform("6 CONNECTION REQUEST")
    step = await cpe.empty()
    while step.envelope is not None:
        request = step.envelope.body
        assert isinstance(request, GetParameterValues), request
        values = [ParameterValueStruct(n, "77", "xsd:unsignedInt") for n in request.parameter_names]
        step = await cpe.answer(step, GetParameterValuesResponse(values))
    assert step.status == 204


@pytest.fixture
async def lab(start_acs: Any) -> AsyncIterator[Lab]:
    endpoint = await CrEndpoint().start()
    acs: Running = await start_acs(cr_provision="random", cr_session_wait=5.0, cr_timeout=2.0)
    async with ScriptedCpe(acs.acs_url) as cpe:
        cpe.params[CR_URL] = (endpoint.url, "xsd:string")
        # The bootstrap session, in which the ACS sets the device's credentials.
        await cpe.inform("0 BOOTSTRAP", "1 BOOT")
        sent, last = await cpe.accept_provisioning(await cpe.empty())
        assert last.status == 204
        endpoint.username = sent["Device.ManagementServer.ConnectionRequestUsername"]
        endpoint.password = sent["Device.ManagementServer.ConnectionRequestPassword"]
        endpoint.on_accepted = lambda: session_after_cr(cpe)
        yield Lab(acs, cpe, endpoint)
        await endpoint.close()


async def test_delivered_when_the_inform_arrives(lab: Lab) -> None:
    result = await lab.acs.dispatcher.reach(lab.cpe.device_id)
    assert result.outcome is CrOutcome.DELIVERED, result
    assert result.method is CrMethod.HTTP
    assert result.latency is not None and 0 < result.latency < 5
    assert [a.outcome for a in result.attempts] == [CrOutcome.DELIVERED]
    assert lab.endpoint.requests == 2  # the challenge, then the authenticated request
    [stored] = await lab.acs.store.list_cr_attempts(lab.cpe.device_id)
    assert (stored.method, stored.outcome) == ("http", "delivered")
    # One latency for one request: the result, its attempt, and the record the dashboard reads
    # (to the microsecond a timestamp keeps).
    assert stored.ended is not None
    assert result.attempts[0].seconds == result.latency
    assert abs((stored.ended - stored.started).total_seconds() - result.latency) < 2e-6
    sessions = await lab.acs.store.list_sessions(lab.cpe.device_id)
    assert sessions[0].events == ["6 CONNECTION REQUEST"]


async def test_nbi_task_runs_in_the_session_the_request_started(lab: Lab) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"http://127.0.0.1:{lab.acs.nbi_port}/devices/{lab.cpe.device_id}/tasks"
            "?connection_request&timeout=8000",
            json={"name": "getParameterValues", "parameterNames": [UPTIME]},
        ) as r,
    ):
        task = await r.json()
        assert r.status == 200, task
    assert task["status"] == "done"
    stored = (await lab.acs.store.get_parameters([lab.cpe.device_id], [UPTIME]))[lab.cpe.device_id]
    assert [(p.path, p.value) for p in stored] == [(UPTIME, "77")]


async def test_wrong_stored_password_is_bad_credentials_and_no_session(lab: Lab) -> None:
    await lab.acs.store.set_cr_credentials(lab.cpe.device_id, lab.endpoint.username, "stale")
    result = await lab.acs.dispatcher.reach(lab.cpe.device_id)
    assert result.outcome is CrOutcome.BAD_CREDENTIALS, result
    assert lab.endpoint.sessions == []
    assert len(await lab.acs.store.list_sessions(lab.cpe.device_id)) == 1  # bootstrap only


async def test_503_is_rate_limited(lab: Lab) -> None:
    lab.endpoint.answer = 503
    result = await lab.acs.dispatcher.reach(lab.cpe.device_id)
    assert result.outcome is CrOutcome.RATE_LIMITED
    assert lab.endpoint.sessions == []


async def test_accepted_without_a_session_is_no_session(lab: Lab) -> None:
    lab.endpoint.on_accepted = None
    result = await lab.acs.dispatcher.reach(lab.cpe.device_id, within=0.4)
    assert result.outcome is CrOutcome.NO_SESSION
    assert "no Inform with 6 CONNECTION REQUEST" in result.detail


async def test_offline_device_is_unreachable_within_the_timeout(lab: Lab) -> None:
    await lab.endpoint.close()
    loop = asyncio.get_running_loop()
    start = loop.time()
    # A dispatcher that waited for a session instead of reporting the failed request would
    # take the whole minute; the bound is generous so a loaded machine cannot fail it.
    result = await lab.acs.dispatcher.reach(lab.cpe.device_id, within=60.0)
    assert result.outcome is CrOutcome.UNREACHABLE, result
    assert loop.time() - start < 30  # cr_timeout is 2 s


async def test_a_device_in_session_gets_its_task_without_a_request(lab: Lab) -> None:
    await lab.cpe.inform("2 PERIODIC")  # the device is in session, in its own turn
    assert await lab.acs.dispatcher.nbi_hook(lab.cpe.device_id, 1.0) is None
    assert lab.endpoint.requests == 0
    assert (await lab.cpe.empty()).status == 204


async def test_knock_cr_prints_outcome_and_latency(lab: Lab) -> None:
    cli = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "knock", "cr", lab.cpe.device_id, "--via", "http",
        "--nbi", f"http://127.0.0.1:{lab.acs.nbi_port}",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={"COLUMNS": "200", "PATH": ""},
    )  # fmt: skip
    out, err = await asyncio.wait_for(cli.communicate(), 30)
    assert cli.returncode == 0, err.decode()
    text = out.decode()
    assert "delivered by http in" in text and "delivered" in text


async def test_knock_cr_reports_a_failure_with_a_nonzero_exit(lab: Lab) -> None:
    lab.endpoint.answer = 503  # without Retry-After: asked again each cr_rate_limit_pause
    cli = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "knock", "cr", lab.cpe.device_id,
        "--nbi", f"http://127.0.0.1:{lab.acs.nbi_port}", "--timeout", "3",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={"COLUMNS": "200", "PATH": ""},
    )  # fmt: skip
    _, err = await asyncio.wait_for(cli.communicate(), 30)
    assert cli.returncode == 1
    assert "rate-limited" in err.decode()
    assert lab.endpoint.requests >= 4  # asked again after the pause: a 401 and a 503 a round
