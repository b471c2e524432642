"""The STUN server's figures as the metrics show them: bindings, requests, BINDING-CHANGE, drops."""

from __future__ import annotations

import os

from stun_support import USER, OpenClient, StartServer

from knock.metrics import Metrics
from knock.stun.codec import binding_request
from prom import parse, value


async def test_bindings_requests_binding_changes_and_drops(
    start_server: StartServer, open_client: OpenClient
) -> None:
    server, client = await start_server(), await open_client()
    metrics = Metrics()
    metrics.watch_stun(
        server.counters, lambda: len(server.bindings), lambda: server.binding_changes
    )

    def tr111(binding_change: bool) -> bytes:
        return binding_request(
            os.urandom(16),
            username=USER,
            connection_request_binding=True,
            binding_change=binding_change,
        )

    await client.ask(tr111(False), server.address)
    client.send(b"\xff" * 40, server.address)
    client.send(binding_request(os.urandom(16)), server.address)  # too small for any answer
    await client.ask(tr111(True), server.address)
    await client.ask(tr111(True), server.address)
    samples = parse(metrics.exposition().decode())
    assert value(samples, "knock_stun_bindings") == 1
    assert value(samples, "knock_stun_requests_total") == 4
    assert value(samples, "knock_stun_responses_total") == 3
    assert value(samples, "knock_stun_binding_changes_total") == 2
    assert value(samples, "knock_stun_dropped_total", reason="malformed") == 1
    assert value(samples, "knock_stun_dropped_total", reason="ignored") == 0
    assert value(samples, "knock_stun_dropped_total", reason="withheld") == 1
    assert value(samples, "knock_stun_error_responses_total", code="401") == 0
