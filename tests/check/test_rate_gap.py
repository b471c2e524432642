"""The wait for the device's rate limit before a case (`--rate-gap`) is taken right before the
case's first request, not before the case: a case that sends nothing does not wait, and a case
that sends still never meets the device's rate limit."""

from __future__ import annotations

from pathlib import Path

from check_lab import FAST, RATE_LIMIT, check_lab

from knock.check import CaseResult, Kind, Verdict, run_case, select
from knock.check.cases import Case, Family
from knock.check.context import CheckContext
from knock.cpe.cr_http import CrAnswer


def waited(result: CaseResult) -> list[str]:
    return [
        e.summary
        for e in result.evidence
        if e.kind is Kind.NOTE and e.summary.endswith("for the device's rate limit")
    ]


async def test_only_a_case_that_sends_waits_for_the_rate_limit(tmp_path: Path) -> None:
    assert FAST.rate_gap == RATE_LIMIT  # the device refuses any request sooner

    async def judges_what_was_seen(ctx: CheckContext) -> None:
        ctx.expect(bool(ctx.dut.informs), "no Inform seen")

    quiet = Case("http.sends-nothing", "none", "a case that sends nothing", Family.HTTP,
                 judges_what_was_seen)  # fmt: skip
    (valid,) = select(["http.digest-valid"])
    async with check_lab(tmp_path) as lab:
        before = lab.services.http.gate.counts(lab.cpe.serial)
        first = await run_case(lab.dut, valid)
        nothing = await run_case(lab.dut, quiet)
        second = await run_case(lab.dut, valid)
        answers = lab.services.http.gate.counts(lab.cpe.serial) - before
    assert [r.verdict for r in (first, nothing, second)] == [Verdict.PASS] * 3
    assert not waited(nothing), nothing.evidence
    # Right after the first case's session: the second case's request waited for the gap...
    assert len(waited(second)) == 1, second.evidence
    # ...and came no sooner than the device allows.
    assert answers[CrAnswer.RATE_LIMITED] == 0 and answers[CrAnswer.ACCEPTED] == 2, answers
