"""The rpc cases of one method that share a session (`Case.shares_session`): against a simulated
CPE that rate-limits connection requests for exactly `--rate-gap`, the cases of a profile run
their tasks in the sessions the first of each run of them opened, kept open by the ACS between
them, so the device is asked for fewer sessions than there are cases and never meets its rate
limit; a case that fails ends the session, so the case after it opens its own."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

from check_lab import FAST, RATE_LIMIT, assert_fails_exactly, check_lab

from knock.check import CaseResult, Kind, Verdict, run_case, select
from knock.check.context import DeviceUnderTest
from knock.cpe.cr_http import CrAnswer
from knock.cpe.defects import Defect

KEPT = "kept open for the next cases"


def session_of(result: CaseResult) -> str:
    """The session (its Inform's summary) the case's tasks ran in."""
    informs = [e.summary for e in result.evidence if e.kind is Kind.INFORM]
    assert informs, result.reason
    return informs[0]


def kept(result: CaseResult) -> bool:
    return any(KEPT in e.summary for e in result.evidence if e.kind is Kind.NOTE)


async def profile(dut: DeviceUnderTest, pattern: str) -> dict[str, CaseResult]:
    return {case.id: await run_case(dut, case) for case in select([pattern])}


async def test_a_profile_shares_sessions_and_never_meets_the_rate_limit(tmp_path: Path) -> None:
    assert FAST.rate_gap == RATE_LIMIT  # the check waits no longer than the device demands
    async with check_lab(tmp_path) as lab:
        before = lab.services.http.gate.counts(lab.cpe.serial)
        results = await profile(lab.dut, "rpc.http.*")
        answers = lab.services.http.gate.counts(lab.cpe.serial) - before
    assert_fails_exactly(results, set())
    assert answers[CrAnswer.RATE_LIMITED] == 0 and answers[CrAnswer.BUSY] == 0, answers
    cases = select(["rpc.http.*"])
    # Each case that shares a session and follows another such case ran in that one's session.
    for previous, case in pairwise(cases):
        if case.shares_session and previous.shares_session:
            assert kept(results[case.id]), results[case.id].evidence
            assert session_of(results[case.id]) == session_of(results[previous.id])
        else:
            assert not kept(results[case.id]), case.id
    followers = sum(kept(r) for r in results.values())
    assert followers >= 10
    # A session asked for by the first of each run of sharing cases, at most two by any other
    # case (passive-notify, add-delete-object, reboot): far fewer than a session each.
    sharing = sum(case.shares_session for case in cases)
    most = sharing - followers + 2 * (len(cases) - sharing)
    assert answers[CrAnswer.ACCEPTED] <= most < len(cases), answers


async def test_a_failing_case_ends_the_shared_session(tmp_path: Path) -> None:
    async with check_lab(tmp_path, defects=frozenset({Defect.INVALID_NAME_9002})) as lab:
        results = await profile(lab.dut, "rpc.http.gp*")
        assert lab.acs.acs.in_session(lab.dut.device_id)  # kept open after gpa-invalid
        lab.dut.let_go()
        await lab.dut.context().idle()  # fails the test unless the session ends
    failing = {"rpc.http.gpn-invalid", "rpc.http.gpv-invalid"}
    assert {c for c, r in results.items() if r.verdict is Verdict.FAIL} == failing
    # gpv-leaf follows the failed gpn-invalid: it asked for a session of its own.
    assert not kept(results["rpc.http.gpv-leaf"])
    assert session_of(results["rpc.http.gpv-leaf"]) != session_of(results["rpc.http.gpn-leaf"])
    assert kept(results["rpc.http.gpv-partial"])
    # gpa-invalid is no longer next to gpv-invalid: it opened its own session too.
    assert not kept(results["rpc.http.gpa-invalid"])
