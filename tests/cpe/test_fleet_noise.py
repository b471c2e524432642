"""`knock sim`'s manners (issue 18.3): a reason many devices share is one log line per interval
and a count per reason in the live view; a timeout says what timed out; the summary at the end
keeps the STUN bindings the fleet had, against a real `knock serve`."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console
from test_fleet import WAIT, Runner, config, knock_acs, runner

from knock.cpe.acs_client import AcsClient
from knock.cpe.fleet_config import FleetConfig
from knock.cpe.fleet_stats import FleetSnapshot
from knock.cpe.fleet_view import status_line, status_table
from knock.server import Running, start
from knock.vocab import CrMethod
from serve_support import loopback_settings

__all__ = ["knock_acs", "runner"]  # the fixtures, used by name
COUNT = 20


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port nothing listens on (bound, never listening, so no one else takes it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


async def test_devices_failing_for_one_reason_make_one_line_and_one_count(
    runner: Runner, tmp_path: Path, caplog: pytest.LogCaptureFixture, closed_port: int
) -> None:
    caplog.set_level(logging.WARNING)
    acs = f"http://127.0.0.1:{closed_port}/"
    fleet = runner.start(
        FleetConfig(acs, COUNT, state_dir=str(tmp_path), start_rate=1000, report_interval=0.05)
    )
    async with asyncio.timeout(WAIT):
        stats = await fleet.wait_until(lambda s: s.errors >= COUNT)
    await runner.stop(fleet)
    assert list(stats.failures.values()) == [stats.errors]
    reason = next(iter(stats.failures))
    lines = [r.getMessage() for r in caplog.records if "session failed" in r.getMessage()]
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"session failed ({reason}: Cannot connect to host 127.0.0.1:")
    assert ": device SIM0000" in lines[0] and ", attempt 1, next in " in lines[0]

    console = Console(record=True, width=200)
    console.print(status_table(FleetSnapshot(fleet.config, stats, 1.0, None)))
    text = " ".join(console.export_text().replace("│", " ").split())
    assert f"errors {stats.errors} failed sessions: {reason} {stats.errors}" in text


async def test_a_timeout_says_what_timed_out() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # holds the connection open, never answers
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}/acs"
    try:
        async with AcsClient(url, timeout=0.2) as client:
            with pytest.raises(TimeoutError) as caught:
                await client.post_raw(b"<x/>")
    finally:
        server.close()
    assert str(caught.value) == f"no complete answer from the ACS at {url} within 0.2 s"


async def test_the_summary_keeps_the_stun_bindings_the_fleet_had(
    knock_acs: Running, runner: Runner, tmp_path: Path
) -> None:
    fleet = runner.start(
        config(knock_acs, tmp_path / "state", 4, cr_methods=(CrMethod.HTTP, CrMethod.UDP))
    )
    async with asyncio.timeout(WAIT):
        await fleet.wait_until(lambda s: s.stun_bound == 4)
    final = await runner.stop(fleet)
    assert (final.online, final.stun_bound) == (4, 4)
    line = status_line(fleet.snapshot())
    assert " stun_bound=4 " in line and "xmpp_online" not in line


async def test_a_setting_every_device_shares_is_one_line_for_the_fleet(
    runner: Runner, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    # The ACS gives every device a STUN server by name, which the simulator does not resolve.
    acs = await start(loopback_settings(tmp_path, stun_advertise="stun.example"))
    try:
        fleet = runner.start(
            config(acs, tmp_path / "state", 4, cr_methods=(CrMethod.HTTP, CrMethod.UDP))
        )
        async with asyncio.timeout(WAIT):
            # Each device reads its STUN settings as its first session, which sets them, ends.
            await fleet.wait_until(lambda s: s.sessions >= 4)
        await runner.stop(fleet)
    finally:
        await acs.close()
    lines = [
        r.getMessage() for r in caplog.records if "STUN server 'stun.example'" in r.getMessage()
    ]
    assert len(lines) == 1, lines
    assert lines[0].startswith(
        "STUN server 'stun.example': 'stun.example' does not appear to be an IPv4 or IPv6 "
        "address; give an IP address of --cr-host's family: device SIM00000"
    )
