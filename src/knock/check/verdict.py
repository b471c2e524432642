"""A case's verdict and the exceptions by which a case ends in one."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from knock.check.cases import Case
from knock.check.evidence import Entry


class Verdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    SKIPPED = "skipped"


class CaseFailed(Exception):
    """The device broke the requirement; the message says how, in the device's terms."""


class CaseSkipped(Exception):
    """The case cannot judge this device (a method it lacks, an optional behaviour)."""


@dataclass(frozen=True, slots=True)
class CaseResult:
    case: Case
    verdict: Verdict
    reason: str  # why it failed or was skipped; for a pass, what was shown
    duration: float
    evidence: tuple[Entry, ...]
