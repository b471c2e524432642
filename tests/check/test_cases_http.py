"""What the HTTP cases record as evidence; that every one passes against a correct device and
that each defect fails exactly its cases is test_defects_http.py's."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from check_lab import CheckLab, check_lab

from knock.check import Kind, Verdict, select
from knock.notify import Arrival
from knock.vocab import Event


@pytest.fixture
async def good(tmp_path: Path) -> AsyncIterator[CheckLab]:
    async with check_lab(tmp_path) as lab:
        yield lab


async def test_valid_digest_request_passes_with_its_evidence(good: CheckLab) -> None:
    result = await good.run("http.digest-valid")
    assert result.verdict is Verdict.PASS, result.reason
    exchanged = [e for e in result.evidence if e.kind is not Kind.NOTE]
    kinds = [e.kind for e in exchanged]
    assert kinds == [Kind.SENT, Kind.RECEIVED, Kind.SENT, Kind.RECEIVED, Kind.INFORM]
    assert exchanged[1].summary.startswith("401")
    assert "WWW-Authenticate: Digest" in exchanged[1].detail
    assert "Authorization: Digest" in exchanged[2].detail
    assert exchanged[3].summary == "200 0 bytes of body"
    assert Event.CONNECTION_REQUEST in exchanged[4].summary
    assert "Device.ManagementServer.ConnectionRequestURL = http://" in exchanged[4].detail
    assert [e.at for e in exchanged] == sorted(e.at for e in exchanged)
    assert select(["http.*"])[0].requirement == "TR-069 §3.2.2"


async def test_a_follow_up_session_of_the_devices_own_is_not_a_second_cr_session(
    good: CheckLab,
) -> None:
    async def periodic_during_the_first_session() -> None:
        with good.acs.hub.subscribe(good.dut.device_id) as heard:
            while not isinstance(await heard.next(), Arrival):
                pass
        good.cpe.request_session(Event.PERIODIC)  # in a session: one more right after it

    follow_up = asyncio.create_task(periodic_during_the_first_session())
    result = await good.run("http.burst-one-session")
    await follow_up
    assert result.verdict is Verdict.PASS, result.reason
    informs = [e.summary for e in result.evidence if e.kind is Kind.INFORM]
    assert len(informs) == 2 and "2 PERIODIC" in informs[1], informs
    assert "a session of the device's own (Inform [2 PERIODIC]), not counted" in [
        e.summary for e in result.evidence
    ]
