"""Run cases one after another against one device, each within the per-case timeout.

A case that fails because the device did not answer (or by a timeout or an error of its own) is
followed by a check that the device still responds; once it does not, the cases after it are
`not run` rather than failed, each saying since which case.

Cases of one method that share a session (`Case.shares_session`) run their tasks one after the
other in the session the first of them opened by a connection request, which the ACS keeps open
between them: one request, and one rate-limit wait, for all of them. Any other case, and any
verdict but pass, ends that session, so a case that went wrong shares it with no other."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

from knock.check.cases import Case
from knock.check.context import DeviceUnderTest
from knock.check.evidence import Entry
from knock.check.memo import restore
from knock.check.verdict import (
    CaseFailed,
    CaseResult,
    CaseSkipped,
    CaseWarned,
    DeviceSilent,
    Verdict,
)

log = logging.getLogger("knock.check")


async def run_case(dut: DeviceUnderTest, case: Case) -> CaseResult:
    """Run *case* once the device is idle; a case that raises anything else than a verdict
    fails with the error, so one broken case does not stop the run."""
    ctx = dut.context(case.via, case.id if case.shares_session else "")
    started = time.monotonic()
    if not (case.shares_session and dut.continues(case.via)):
        dut.let_go()  # the case needs a session of its own, or none
    if not dut.unresponsive and dut.kept is None:
        try:
            await ctx.settled(defer_gap=True)  # bounded by its own waits
        except CaseFailed as exc:
            dut.unresponsive = f"before case {case.id}: {exc}"
    if dut.unresponsive:
        reason = f"the device is unresponsive since {dut.unresponsive}"
        ctx.note(f"{Verdict.NOT_RUN.value}: {reason}")
        return _result(case, Verdict.NOT_RUN, reason, started, ctx.evidence.entries)
    verdict, reason = Verdict.PASS, ""
    answered = False  # the case failed on what the device answered: it responds
    try:
        async with asyncio.timeout(dut.options.case_timeout):
            await case.run(ctx)
    except DeviceSilent as exc:
        verdict, reason = Verdict.FAIL, str(exc)
    except CaseFailed as exc:
        verdict, reason, answered = Verdict.FAIL, str(exc), True
    except CaseWarned as exc:
        verdict, reason = Verdict.WARN, str(exc)
    except CaseSkipped as exc:
        verdict, reason = Verdict.SKIPPED, str(exc)
    except TimeoutError:
        verdict = Verdict.FAIL
        reason = f"the case did not end within {dut.options.case_timeout:g} s"
    except Exception as exc:  # a broken case is reported, not fatal
        log.exception("case %s raised", case.id)
        verdict, reason = Verdict.FAIL, f"the case raised {exc!r}"
    if verdict is not Verdict.PASS:
        dut.let_go()  # the cases after it do not share a session with what went wrong
    if verdict is Verdict.FAIL and not answered:
        why = await ctx.responds()
        if why:
            dut.unresponsive = f"case {case.id}: {why}"
    if verdict is not Verdict.PASS:
        ctx.note(f"{verdict.value}: {reason}")
    return _result(case, verdict, reason, started, ctx.evidence.entries)


def _result(
    case: Case, verdict: Verdict, reason: str, started: float, evidence: Iterable[Entry]
) -> CaseResult:
    duration = round(time.monotonic() - started, 3)
    return CaseResult(case, verdict, reason, duration, tuple(evidence))


async def run_cases(
    dut: DeviceUnderTest,
    cases: Iterable[Case],
    on_result: Callable[[CaseResult], None] | None = None,
) -> list[CaseResult]:
    """Run *cases* in order, then set back what set-ups shared by several cases changed."""
    results = []
    for case in cases:
        result = await run_case(dut, case)
        if on_result is not None:
            on_result(result)
        results.append(result)
    dut.let_go()
    await restore(dut)
    return results


def exit_code(results: Iterable[CaseResult]) -> int:
    """1 when any case failed or was not run (the device stopped responding), else 0: a
    warning or a skipped case does not fail a run."""
    bad = (Verdict.FAIL, Verdict.NOT_RUN)
    return 1 if any(r.verdict in bad for r in results) else 0
