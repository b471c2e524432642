"""`/metrics` after real connection requests by each method to simulated devices, scraped over
HTTP: attempts and latency by method, the STUN and XMPP figures."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from live_lab import MS, lab, settled

from knock.logs import JsonFormatter
from knock.vocab import CrMethod, CrOutcome
from prom import scrape, value


async def test_connection_requests_stun_and_xmpp_show_in_the_metrics(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with lab(tmp_path, count=2) as running:
        for cpe in running.devices:
            await running.provisioned(cpe)
        cpe = running.devices[0]
        methods = (CrMethod.XMPP, CrMethod.UDP, CrMethod.HTTP)
        for method in methods:
            if cpe.in_session:  # a device in a session refuses (Busy.REFUSE)
                await settled(cpe)
            result = await running.acs.dispatcher.reach(
                running.device_id(cpe), within=5, via=method
            )
            assert result.outcome is CrOutcome.DELIVERED, result
        samples = await scrape(running.acs)
        stun = running.acs.stun
        assert stun is not None
        requests, bindings = stun.counters.requests, len(stun.bindings)
        xmpp = running.acs.xmpp
        assert xmpp is not None
        secrets = [
            cpe.model.get(name)
            for name in (
                f"{MS}ConnectionRequestPassword",
                f"{MS}STUNPassword",
                "Device.XMPP.Connection.1.Password",
            )
        ]
    assert all(secrets)
    lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records]
    assert not [line for line in lines for s in secrets if s in json.dumps(line)]
    attempts = [line for line in lines if line.get("event") == "connection-request"]
    assert [(a["method"], a["outcome"]) for a in attempts] == [(m, "delivered") for m in methods]
    assert all(a["device_id"] == running.device_id(cpe) and a["latency_s"] > 0 for a in attempts)
    for method in methods:
        assert value(samples, "knock_cr_attempts_total", method=method, outcome="delivered") == 1
        assert value(samples, "knock_cr_latency_seconds_count", method=method) == 1
        assert value(samples, "knock_cr_latency_seconds_bucket", method=method, le="30.0") == 1
        assert 0 < value(samples, "knock_cr_latency_seconds_sum", method=method) < 5
    assert value(samples, "knock_stun_bindings") == bindings == 2
    # Keep-alives go on between the scrape and the read: never fewer than it showed.
    assert 2 <= value(samples, "knock_stun_requests_total") <= requests
    assert value(samples, "knock_stun_dropped_total", reason="malformed") == 0
    assert value(samples, "knock_xmpp_acs_connected") == 1
    # The two devices and the ACS itself, each logged in with a resource.
    assert value(samples, "knock_xmpp_server_connections") == 3
    assert value(samples, "knock_xmpp_server_bound") == 3
    # Every session ended well: bootstraps, value changes, one per delivered request.
    started = value(samples, "knock_sessions_started_total")
    assert started >= 2 + len(methods)
    in_progress = value(samples, "knock_sessions_in_progress")
    assert value(samples, "knock_sessions_ended_total", outcome="ok") == started - in_progress
