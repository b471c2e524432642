"""The session cases against simulated CPEs: a correct device passes them, and a device with
each session defect fails exactly the matching cases. The labs run side by side."""

from __future__ import annotations

import pytest
import pytest_asyncio
from check_lab import QUICK, assert_fails_exactly, run_table

from knock.check import CaseResult, Kind
from knock.cpe.defects import Defect
from knock.vocab import CrMethod

EXPECTED_FAILURES: dict[Defect | None, set[str]] = {
    None: set(),
    Defect.PERIODIC_INTERVAL_IGNORED: {"session.periodic-inform"},
    Defect.MAX_ENVELOPES_0: {"session.max-envelopes"},
}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def results(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[Defect | None, dict[str, CaseResult]]:
    methods = (CrMethod.HTTP,)
    return await run_table(tmp_path_factory, EXPECTED_FAILURES, methods, ["session.*"], quick=True)


@pytest.mark.parametrize(
    "defect", list(EXPECTED_FAILURES), ids=lambda d: d.value if d else "correct"
)
async def test_a_session_defect_fails_exactly_its_cases(
    results: dict[Defect | None, dict[str, CaseResult]], defect: Defect | None
) -> None:
    assert_fails_exactly(results[defect], EXPECTED_FAILURES[defect])


async def test_the_periodic_informs_are_timed_in_the_evidence(
    results: dict[Defect | None, dict[str, CaseResult]],
) -> None:
    notes = [
        e.summary
        for e in results[None]["session.periodic-inform"].evidence
        if e.kind is Kind.NOTE and e.summary.startswith("2 PERIODIC in session ")
    ]
    assert len(notes) == 2, notes
    after = [float(note.split(", ")[1].split()[0]) for note in notes]
    interval = QUICK.periodic_interval
    assert all(round(a) % interval == 0 and abs(a - round(a)) < 1.0 for a in after), after
    reason = results[Defect.PERIODIC_INTERVAL_IGNORED]["session.periodic-inform"].reason
    assert reason.startswith("no Inform with 2 PERIODIC within "), reason
    reason = results[Defect.MAX_ENVELOPES_0]["session.max-envelopes"].reason
    assert reason.startswith("the Inform of session ") and reason.endswith(" MaxEnvelopes 0, not 1")
