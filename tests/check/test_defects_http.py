"""Each HTTP and data-model defect of the simulator fails exactly the cases of the requirement it
breaks; the correct device fails none. The labs run side by side in one event loop, so the
table costs about one run of the suite."""

from __future__ import annotations

import asyncio

import pytest
import pytest_asyncio
from check_lab import assert_fails_exactly, run_lab

from knock.check import CaseResult, Kind, select
from knock.cpe.defects import Defect
from knock.vocab import CrMethod, Event

HTTP_ONLY = (CrMethod.HTTP,)
ALL = (CrMethod.HTTP, CrMethod.UDP, CrMethod.XMPP)
HTTP_CASES = ["http.*", "datamodel.cr-url-http"]

# defect (None: the correct device) -> (methods the device offers, cases run, cases that fail)
EXPECTED: dict[Defect | None, tuple[tuple[CrMethod, ...], list[str], set[str]]] = {
    None: (HTTP_ONLY, HTTP_CASES, set()),
    Defect.ACCEPT_ANY_CR_AUTH: (
        HTTP_ONLY,
        HTTP_CASES,
        {
            "http.digest-valid",
            "http.no-credentials",
            "http.wrong-password",
            "http.basic-refused",
            "http.nonce-reuse",
        },
    ),
    Defect.BASIC_ACCEPTED: (HTTP_ONLY, HTTP_CASES, {"http.basic-refused"}),
    Defect.NO_CR_EVENT: (HTTP_ONLY, HTTP_CASES, {"http.digest-valid"}),
    Defect.NO_503_WHEN_BUSY: (HTTP_ONLY, HTTP_CASES, {"http.busy"}),
    Defect.NO_RATE_LIMIT: (HTTP_ONLY, HTTP_CASES, set()),  # http.rate-limit warns: a SHOULD
    Defect.CR_URL_ANY_PATH: (HTTP_ONLY, HTTP_CASES, {"http.wrong-path"}),
    Defect.HTTPS_CR_URL: (HTTP_ONLY, HTTP_CASES, {"datamodel.cr-url-http"}),
    Defect.NO_ACTIVE_NOTIFY_JID: (ALL, ["datamodel.*"], {"datamodel.jid-notify"}),
    Defect.NO_ACTIVE_NOTIFY_UDP_ADDRESS: (ALL, ["datamodel.*"], {"datamodel.udp-address-notify"}),
}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def results(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[Defect | None, dict[str, CaseResult]]:
    labs = [
        run_lab(tmp_path_factory, defect, methods, patterns)
        for defect, (methods, patterns, _failing) in EXPECTED.items()
    ]
    return dict(zip(EXPECTED, await asyncio.gather(*labs), strict=True))


@pytest.mark.parametrize("defect", list(EXPECTED), ids=lambda d: d.value if d else "correct")
async def test_a_defect_fails_exactly_its_cases(
    results: dict[Defect | None, dict[str, CaseResult]], defect: Defect | None
) -> None:
    # With an https:// ConnectionRequestURL there is nothing to talk HTTP to.
    skipping = {c.id for c in select(["http.*"])} if defect is Defect.HTTPS_CR_URL else set()
    warning = {"http.rate-limit"} if defect is Defect.NO_RATE_LIMIT else set()
    assert_fails_exactly(results[defect], EXPECTED[defect][2], skipping, warning)


async def test_a_device_that_never_challenges_fails_the_digest_cases_with_that_evidence(
    results: dict[Defect | None, dict[str, CaseResult]],
) -> None:
    found = results[Defect.ACCEPT_ANY_CR_AUTH]
    for case_id in ("http.digest-valid", "http.wrong-password", "http.nonce-reuse"):
        result = found[case_id]
        assert result.reason.startswith(
            "the device made no challenge: a CR without credentials was answered 200, not 401"
        ), result.reason
        exchanged = [e.summary for e in result.evidence if e.kind in (Kind.SENT, Kind.RECEIVED)]
        assert exchanged[0].endswith("(no Authorization) over IPv4"), exchanged  # loopback
        assert exchanged[1] == "200 0 bytes of body", exchanged
        assert not any("Digest Authorization" in summary for summary in exchanged)


async def test_a_device_that_does_not_rate_limit_warns_and_its_session_is_waited_for(
    results: dict[Defect | None, dict[str, CaseResult]],
) -> None:
    result = results[Defect.NO_RATE_LIMIT]["http.rate-limit"]
    assert result.reason.startswith("a CR right after the session the previous one opened was")
    assert "which TR-069 §3.2.2 says it SHOULD" in result.reason
    informs = [e for e in result.evidence if e.kind is Kind.INFORM]
    assert len(informs) == 2 and all(Event.CONNECTION_REQUEST in e.summary for e in informs)
    assert result.evidence[-1].summary == f"warn: {result.reason}"


async def test_a_session_without_the_event_is_told_in_words(
    results: dict[Defect | None, dict[str, CaseResult]],
) -> None:
    reason = results[Defect.NO_CR_EVENT]["http.digest-valid"].reason
    assert reason.startswith("no Inform with 6 CONNECTION REQUEST within 5 s (the device "), reason


def test_every_defect_of_the_simulator_is_in_a_table() -> None:
    from test_cases_rpc import EXPECTED_FAILURES as RPC
    from test_cases_session import EXPECTED_FAILURES as SESSION
    from test_cases_transfer import EXPECTED_FAILURES as TRANSFER
    from test_cases_udp import EXPECTED_FAILURES as UDP
    from test_cases_xmpp import EXPECTED_FAILURES as XMPP

    tables = set(EXPECTED) | set(UDP) | set(XMPP) | set(RPC) | set(SESSION) | set(TRANSFER)
    assert tables == {None, *Defect}
