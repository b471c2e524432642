"""`knock check`: connection-request conformance cases run against a device under test.

A case is an async function registered with `@case` in a `cases_*` module of this package. It gets
a `CheckContext` (the running ACS, the device, tools to drive and observe it), records what it
sends and sees as evidence, and ends in a verdict: it returns (pass), or calls `ctx.fail(...)`,
`ctx.warn(...)` (a SHOULD not done) or `ctx.skip(...)`. The runner picks cases by id or glob,
gives `not run` to the cases after the device stopped responding, and the reports render the
results.
"""

from knock.check.cases import Case, Family, all_cases, case, select
from knock.check.context import CheckContext, HttpExchange, Watch
from knock.check.evidence import Entry, Evidence, Kind
from knock.check.options import CheckOptions
from knock.check.runner import run_case, run_cases
from knock.check.verdict import CaseFailed, CaseResult, CaseSkipped, CaseWarned, Verdict

__all__ = [
    "Case",
    "CaseFailed",
    "CaseResult",
    "CaseSkipped",
    "CaseWarned",
    "CheckContext",
    "CheckOptions",
    "Entry",
    "Evidence",
    "Family",
    "HttpExchange",
    "Kind",
    "Verdict",
    "Watch",
    "all_cases",
    "case",
    "run_case",
    "run_cases",
    "select",
]
