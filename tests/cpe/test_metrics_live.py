"""`/metrics` after real connection requests by each method to simulated devices, scraped over
HTTP: attempts and latency by method, the STUN and XMPP figures."""

from __future__ import annotations

from pathlib import Path

from live_lab import lab, settled

from knock.vocab import CrMethod, CrOutcome
from prom import scrape, value


async def test_connection_requests_stun_and_xmpp_show_in_the_metrics(tmp_path: Path) -> None:
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
