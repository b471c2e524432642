"""The XMPP cases against simulated CPEs on the built-in XMPP server over loopback: every case
passes against a correct device, and against each XMPP defect exactly the matching cases fail.
The labs run side by side in one event loop."""

from __future__ import annotations

import re

import pytest
import pytest_asyncio
from check_lab import assert_fails_exactly, run_table

from knock.check import CaseResult, Kind
from knock.cpe.defects import Defect
from knock.vocab import CrMethod

# What a device with each defect fails; every other XMPP case passes. A session without
# 6 CONNECTION REQUEST, or none at all, is no answer to a valid request, before or after the
# server's restart.
EXPECTED_FAILURES: dict[Defect | None, set[str]] = {
    None: set(),
    Defect.PREFIX_JID_MATCH: {"xmpp.prefix-jid"},
    Defect.NOT_AUTORIZED_TYPO: {"xmpp.wrong-credentials"},
    Defect.XMPP_NO_RESULT: {"xmpp.valid-cr", "xmpp.reconnect"},
    Defect.NO_CR_EVENT: {"xmpp.valid-cr", "xmpp.reconnect"},
    Defect.NO_CERT_CHECK: {"xmpp.validates-certificate"},
}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def results(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[Defect | None, dict[str, CaseResult]]:
    methods = (CrMethod.HTTP, CrMethod.XMPP)
    return await run_table(tmp_path_factory, EXPECTED_FAILURES, methods, ["xmpp.*"], quick=True)


@pytest.mark.parametrize(
    "defect", list(EXPECTED_FAILURES), ids=lambda d: d.value if d else "correct"
)
async def test_an_xmpp_defect_fails_exactly_its_cases(
    results: dict[Defect | None, dict[str, CaseResult]], defect: Defect | None
) -> None:
    assert_fails_exactly(results[defect], EXPECTED_FAILURES[defect])


async def test_the_evidence_holds_the_iqs_and_the_exact_conditions(
    results: dict[Defect | None, dict[str, CaseResult]],
) -> None:
    valid = results[None]["xmpp.valid-cr"].evidence
    sent = next(e for e in valid if e.kind is Kind.SENT)
    assert sent.summary.startswith("valid CR: IQ get from acs@")
    # The lab's device is on IPv4 loopback: the IQ's last leg and its session went over IPv4.
    assert sent.summary.endswith(" over IPv4"), sent.summary
    inform = next(e for e in valid if e.kind is Kind.INFORM)
    assert inform.summary.endswith(" over IPv4"), inform.summary
    assert sent.detail.startswith(
        '<connectionRequest xmlns="urn:broadband-forum-org:cwmp:xmppConnReq-1-0"><username>'
    )
    assert [e.kind for e in valid if e.kind is not Kind.NOTE] == [
        Kind.SENT,
        Kind.RECEIVED,
        Kind.INFORM,
    ]
    typo = results[Defect.NOT_AUTORIZED_TYPO]["xmpp.wrong-credentials"]
    assert typo.reason == "the device answered 'not-autorized', not 'not-authorized'"
    unlisted = results[None]["xmpp.unlisted-jid"].evidence
    answer = next(e.summary for e in unlisted if e.kind is Kind.RECEIVED)
    assert re.fullmatch(
        r"error cancel/service-unavailable from knock-[0-9a-f]+@knock\.lab/cwmp", answer
    )
    prefix = results[Defect.PREFIX_JID_MATCH]["xmpp.prefix-jid"].evidence
    assert any(
        e.summary.startswith("CR from a prefixed JID: IQ get from knock-check@") for e in prefix
    )
