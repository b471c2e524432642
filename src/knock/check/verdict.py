"""A case's verdict and the exceptions by which a case ends in one."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from knock.check.cases import Case
from knock.check.evidence import Entry


class Verdict(StrEnum):
    PASS = "pass"
    WARN = "warn"  # a SHOULD the device does not do; it passes, with a note
    FAIL = "fail"
    SKIPPED = "skipped"
    NOT_RUN = "not run"  # the device stopped responding in an earlier case

    @property
    def slug(self) -> str:
        """The verdict as one word, for CSS classes and ids."""
        return self.value.replace(" ", "-")


class CaseFailed(Exception):
    """The device broke the requirement; the message says how, in the device's terms."""


class DeviceSilent(CaseFailed):
    """The device did not answer within a wait: besides failing the case, it may have stopped
    responding, which the runner then checks."""


class CaseWarned(Exception):
    """The device does not do what the standard says it SHOULD: the message says what it did."""


class CaseSkipped(Exception):
    """The case cannot judge this device (a method it lacks, an optional behaviour)."""


@dataclass(frozen=True, slots=True)
class CaseResult:
    case: Case
    verdict: Verdict
    reason: str  # why it failed or was skipped; for a pass, what was shown
    duration: float
    evidence: tuple[Entry, ...]


_COUNTED = {
    Verdict.PASS: "passed",
    Verdict.WARN: "warned",
    Verdict.FAIL: "failed",
    Verdict.SKIPPED: "skipped",
    Verdict.NOT_RUN: "not run",
}
_ALWAYS_COUNTED = (Verdict.PASS, Verdict.FAIL, Verdict.SKIPPED)


def tally(results: Iterable[CaseResult]) -> list[tuple[Verdict, str]]:
    """How many cases ended in each verdict, in words ("30 passed"), for a run's summary:
    warned and not run only when there are any."""
    counts = Counter(r.verdict for r in results)
    return [(v, f"{counts[v]} {_COUNTED[v]}") for v in Verdict if counts[v] or v in _ALWAYS_COUNTED]
