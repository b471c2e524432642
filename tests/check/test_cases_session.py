"""The session cases against simulated CPEs offering HTTP, UDP and XMPP: a correct device passes
them, by every method, and a device with each session defect fails exactly the matching cases.
The labs run side by side."""

from __future__ import annotations

import pytest
import pytest_asyncio
from check_lab import QUICK, assert_fails_exactly, run_table
from test_cases_udp import udp_ready

from knock.check import CaseResult, Kind
from knock.cpe.defects import Defect
from knock.vocab import CrMethod

ALL = (CrMethod.HTTP, CrMethod.UDP, CrMethod.XMPP)


def by_every_method(name: str) -> set[str]:
    return {f"session.{method}.{name}" for method in CrMethod}


EXPECTED_FAILURES: dict[Defect | None, set[str]] = {
    None: set(),
    Defect.PERIODIC_INTERVAL_IGNORED: {"session.periodic-inform"},
    Defect.MAX_ENVELOPES_0: {"session.max-envelopes"},
    Defect.EMPTY_POST_ENVELOPE: by_every_method("empty-post"),
    Defect.CWMP_ID_NOT_ECHOED: by_every_method("cwmp-id"),
    Defect.COOKIE_DROPPED: by_every_method("cookies"),
    Defect.RETRY_AT_ONCE: {"session.retry-backoff"},
    # Also in the RPC table (inform.retry-count): the retries' Informs count one too many.
    Defect.RETRY_COUNT_STUCK: {"session.retry-backoff"},
}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def results(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[Defect | None, dict[str, CaseResult]]:
    return await run_table(
        tmp_path_factory, EXPECTED_FAILURES, ALL, ["session.*"], udp_ready, quick=True
    )


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


def notes(result: CaseResult) -> list[str]:
    return [e.summary for e in result.evidence if e.kind is Kind.NOTE]


async def test_each_rule_case_judges_a_session_its_method_opened_as_the_acs_recorded_it(
    results: dict[Defect | None, dict[str, CaseResult]],
) -> None:
    for method in CrMethod:
        # The profile's first case opens the session; the others judge its record.
        opened: list[str] = []
        for name in ("empty-post", "cwmp-id", "cookies"):
            said = notes(results[None][f"session.{method}.{name}"])
            if name == "empty-post":
                assert any(n.startswith(f"{method} connection request: delivered") for n in said)
                opened = [n for n in said if " ended ok; rules broken: none" in n]
            else:
                judged = [n for n in said if n.startswith("judged on session ")]
                assert judged == [
                    f"judged on session {opened[0].split()[1]}, which a {method} connection "
                    f"request of an earlier session.{method}.* case opened"
                ], said
                assert said[-1] == opened[0], said
            assert len(opened) == 1, said
    reason = results[Defect.EMPTY_POST_ENVELOPE]["session.udp.empty-post"].reason
    assert reason.startswith("session ") and reason.endswith("bytes), not an empty HTTP POST"), (
        reason
    )
    assert ": an envelope with an empty SOAP Body (" in reason, reason
    reason = results[Defect.CWMP_ID_NOT_ECHOED]["session.xmpp.cwmp-id"].reason
    assert ": GetParameterValuesResponse to GetParameterValues 'knock-1' carried cwmp:ID " in (
        reason
    ), reason
    assert "'CHECK0001-" in reason, reason
    reason = results[Defect.COOKIE_DROPPED]["session.http.cookies"].reason
    assert reason.endswith(
        ": a POST without the session cookie, taken by the connection it came over"
    ), reason


async def test_the_retries_are_timed_against_table_3(
    results: dict[Defect | None, dict[str, CaseResult]],
) -> None:
    timed = [n for n in notes(results[None]["session.retry-backoff"]) if n.startswith("retry ")]
    assert len(timed) == 2, timed
    for nth, (note, (low, high)) in enumerate(zip(timed, [(1, 2), (2, 4)], strict=True), 1):
        assert f", RetryCount {nth}) " in note and note.endswith(f"gives {low}-{high} s"), note
        gap = float(note.split(") ")[1].split()[0])
        assert low - 0.5 <= gap <= high + 2, note
    reason = results[Defect.RETRY_AT_ONCE]["session.retry-backoff"].reason
    assert reason.startswith("retry 1 came 0.") and reason.endswith(
        "outside 1-2 s (TR-069 §3.2.1.1, Table 3)"
    ), reason
    reason = results[Defect.RETRY_COUNT_STUCK]["session.retry-backoff"].reason
    assert reason == "the Inform of retry 1 carries RetryCount 2, not 1", reason
