"""Run cases one after another against one device, each within the per-case timeout."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

from knock.check.cases import Case
from knock.check.context import DeviceUnderTest
from knock.check.verdict import CaseFailed, CaseResult, CaseSkipped, Verdict

log = logging.getLogger("knock.check")


async def run_case(dut: DeviceUnderTest, case: Case) -> CaseResult:
    """Run *case* once the device is idle; a case that raises anything else than a verdict
    fails with the error, so one broken case does not stop the run."""
    ctx = dut.context()
    started = time.monotonic()
    verdict, reason = Verdict.PASS, ""
    try:
        await ctx.ready()  # bounded by its own waits; not the case's time
        async with asyncio.timeout(dut.options.case_timeout):
            await case.run(ctx)
    except CaseFailed as exc:
        verdict, reason = Verdict.FAIL, str(exc)
    except CaseSkipped as exc:
        verdict, reason = Verdict.SKIPPED, str(exc)
    except TimeoutError:
        verdict = Verdict.FAIL
        reason = f"the case did not end within {dut.options.case_timeout:g} s"
    except Exception as exc:  # a broken case is reported, not fatal
        log.exception("case %s raised", case.id)
        verdict, reason = Verdict.FAIL, f"the case raised {exc!r}"
    if verdict is not Verdict.PASS:
        ctx.note(f"{verdict.value}: {reason}")
    return CaseResult(
        case, verdict, reason, round(time.monotonic() - started, 3), tuple(ctx.evidence.entries)
    )


async def run_cases(
    dut: DeviceUnderTest,
    cases: Iterable[Case],
    on_result: Callable[[CaseResult], None] | None = None,
) -> list[CaseResult]:
    results = []
    for case in cases:
        result = await run_case(dut, case)
        if on_result is not None:
            on_result(result)
        results.append(result)
    return results


def exit_code(results: Iterable[CaseResult]) -> int:
    """1 when any case failed, else 0 (skipped cases do not fail a run)."""
    return 1 if any(r.verdict is Verdict.FAIL for r in results) else 0
