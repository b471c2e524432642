"""The UDP and STUN cases against simulated CPEs over real loopback sockets: every case passes
against a correct device, and against each UDP or STUN defect exactly the matching cases fail.
The labs run side by side in one event loop, so the table costs about one run of the cases."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
import pytest_asyncio
from check_lab import CheckLab, assert_fails_exactly, check_lab, run_table

from knock.check import CaseResult, Kind, Verdict, run_cases, select
from knock.cpe.defects import Defect
from knock.vocab import CrMethod

WAIT = 10.0

# What a device with each defect fails; every other UDP case passes. Beside the case named for
# the defect: a device that never answers the 401 holds no STUN binding, so no mapping to report
# and none to move; a session without 6 CONNECTION REQUEST is no answer to a valid request.
EXPECTED_FAILURES: dict[Defect | None, set[str]] = {
    None: set(),
    Defect.UDP_BAD_SIG: {"udp.bad-sig"},
    Defect.UDP_OLD_TS: {"udp.old-ts"},
    Defect.UDP_REPLAY: {"udp.repeated-id"},
    Defect.UDP_WRONG_USERNAME: {"udp.wrong-username"},
    Defect.NO_BINDING_CHANGE: {"udp.binding-change"},
    Defect.STUN_NO_INTEGRITY: {"udp.stun-integrity", "udp.address-mapped", "udp.binding-change"},
    Defect.NO_CR_EVENT: {"udp.valid-cr"},
}


async def udp_ready(lab: CheckLab) -> None:
    """Wait until the STUN server holds the device's binding and the device reported it (only
    the address when it cannot authenticate to STUN), and the session that reported it ended."""
    stun = lab.acs.stun
    assert stun is not None
    name = "Device.ManagementServer.UDPConnectionRequestAddress"
    async with asyncio.timeout(WAIT):
        while True:
            target = await lab.acs.store.get_cr_target(lab.dut.device_id)
            assert target is not None
            binding = stun.bindings.get(target.stun_username or "")
            reported = target.management.get("UDPConnectionRequestAddress", "")
            local = lab.cpe.model.get(name)
            if Defect.STUN_NO_INTEGRITY in lab.cpe.defects and reported == local:
                break
            if binding is not None and reported == local == "{}:{}".format(*binding.address):
                break
            await asyncio.sleep(0.05)  # a binding inside the STUN server is not announced
    await lab.dut.context().idle()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def results(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[Defect | None, dict[str, CaseResult]]:
    methods = (CrMethod.HTTP, CrMethod.UDP)
    return await run_table(
        tmp_path_factory, EXPECTED_FAILURES, methods, ["udp.*"], udp_ready, quick=True
    )


@pytest.mark.parametrize(
    "defect", list(EXPECTED_FAILURES), ids=lambda d: d.value if d else "correct"
)
async def test_a_udp_defect_fails_exactly_its_cases(
    results: dict[Defect | None, dict[str, CaseResult]], defect: Defect | None
) -> None:
    assert_fails_exactly(results[defect], EXPECTED_FAILURES[defect])


def details(result: CaseResult, kind: Kind) -> list[str]:
    return [e.summary + "\n" + e.detail for e in result.evidence if e.kind is kind]


async def test_the_evidence_holds_the_datagrams_and_the_stun_messages(
    results: dict[Defect | None, dict[str, CaseResult]],
) -> None:
    correct = results[None]
    [sent] = details(correct["udp.valid-cr"], Kind.SENT)
    request = (
        r"GET http://127\.0\.0\.1:\d+\?ts=\d+&id=\d+&un=[^&]+&cn=[0-9a-f]{16}&sig=[0-9a-f]{40}"
    )
    assert re.search(request + r" HTTP/1\.1\r\nHost: 127\.0\.0\.1:\d+\r\n\r\n$", sent), sent
    [inform] = details(correct["udp.valid-cr"], Kind.INFORM)
    assert "6 CONNECTION REQUEST" in inform
    moved = correct["udp.binding-change"].evidence
    flagged = [e.summary for e in moved if "BINDING-CHANGE" in e.summary]
    assert flagged and flagged[0].startswith("from 127.0.0.1:")
    # The case ends once the device has informed its true mapping again, not in the next case.
    restored = [e.summary for e in moved if e.kind is Kind.NOTE][-1]
    assert re.fullmatch(r"the device informed its true mapping 127\.0\.0\.1:\d+ again", restored)
    never = results[Defect.STUN_NO_INTEGRITY]["udp.binding-change"].reason
    assert never.startswith("the STUN server answered none of the device's Binding Requests")
    unsigned = results[Defect.STUN_NO_INTEGRITY]["udp.stun-integrity"]
    answers = [e.summary for e in unsigned.evidence if e.kind is Kind.SENT]
    assert "answered Binding Error Response, ERROR-CODE 401" in answers
    assert unsigned.reason == (
        "the Binding Request after the STUN server's 401 carries no MESSAGE-INTEGRITY"
    )


async def test_without_stun_authentication_the_integrity_case_is_skipped(tmp_path: Path) -> None:
    methods = (CrMethod.HTTP, CrMethod.UDP)
    settings = {"stun_require_auth": False}
    async with check_lab(tmp_path, methods=methods, acs_settings=settings) as lab:
        await udp_ready(lab)
        integrity = await lab.run("udp.stun-integrity")
        request = await lab.run("udp.binding-request")
    assert integrity.verdict is Verdict.SKIPPED
    assert (
        integrity.reason == "the STUN server asks for no authentication (stun_require_auth is off)"
    )
    assert request.verdict is Verdict.PASS, request.reason
    seen = [e.summary for e in request.evidence if e.kind in (Kind.RECEIVED, Kind.SENT)][-2:]
    assert re.fullmatch(
        r"from 127\.0\.0\.1:\d+ over IPv4: "
        r"Binding Request, USERNAME '[^']+', CONNECTION-REQUEST-BINDING",
        seen[0],
    ), seen  # unsigned, as nothing asked for MESSAGE-INTEGRITY
    assert re.fullmatch(r"answered Binding Response, MAPPED-ADDRESS 127\.0\.0\.1:\d+", seen[1]), (
        seen
    )


async def test_an_http_only_device_skips_every_udp_and_xmpp_case(tmp_path: Path) -> None:
    async with check_lab(tmp_path, methods=(CrMethod.HTTP,)) as lab:
        results = [await lab.run(case.id) for case in select(["udp.*", "xmpp.*"])]
    reasons = {r.reason for r in results if r.verdict is Verdict.SKIPPED}
    assert len(results) == sum(r.verdict is Verdict.SKIPPED for r in results) == 18
    # A TR-181 device says so in SupportedConnReqMethods (a TR-098 one without it:
    # test_http_only_device.py).
    assert reasons == {
        "the device offers no UDP (STUN) connection requests: its "
        "Device.ManagementServer.SupportedConnReqMethods is 'HTTP'",
        "the device offers no XMPP connection requests: its "
        "Device.ManagementServer.SupportedConnReqMethods is 'HTTP'",
    }
    assert not [e for r in results for e in r.evidence if e.kind is Kind.SENT]


async def test_a_run_sets_the_keepalive_periods_back_at_its_end(tmp_path: Path) -> None:
    names = [f"Device.ManagementServer.STUN{m}imumKeepAlivePeriod" for m in ("Min", "Max")]
    async with check_lab(tmp_path, methods=(CrMethod.HTTP, CrMethod.UDP)) as lab:
        await udp_ready(lab)
        provisioned = [lab.cpe.model.get(name) for name in names]
        # One case sets the short periods the STUN cases share; the run's end sets them back.
        results = await run_cases(lab.dut, select(["udp.binding-request"]))
        after = [lab.cpe.model.get(name) for name in names]
    assert [r.verdict for r in results] == [Verdict.PASS], results
    notes = [e.summary for e in results[0].evidence if e.kind is Kind.NOTE]
    assert "setting keep-alive periods of 2-4 s" in notes, notes
    assert provisioned == ["20", "60"] and after == provisioned
