"""Each HTTP and data-model defect of the simulator fails exactly the cases of the requirement it
breaks; the correct device fails none. The labs run side by side in one event loop, so the
table costs about one run of the suite."""

from __future__ import annotations

import asyncio

import pytest
import pytest_asyncio
from check_lab import check_lab

from knock.check import CaseResult, Verdict, select
from knock.cpe.defects import Defect
from knock.vocab import CrMethod

HTTP_ONLY = (CrMethod.HTTP,)
ALL = (CrMethod.HTTP, CrMethod.UDP, CrMethod.XMPP)
HTTP_CASES = ["http.*", "datamodel.cr-url-http"]

# defect (None: the correct device) -> (methods the device offers, cases run, cases that fail)
EXPECTED: dict[Defect | None, tuple[tuple[CrMethod, ...], list[str], set[str]]] = {
    None: (HTTP_ONLY, HTTP_CASES, set()),
    Defect.ACCEPT_ANY_CR_AUTH: (
        HTTP_ONLY,
        HTTP_CASES,
        {"http.no-credentials", "http.wrong-password", "http.basic-refused", "http.nonce-reuse"},
    ),
    Defect.BASIC_ACCEPTED: (HTTP_ONLY, HTTP_CASES, {"http.basic-refused"}),
    Defect.NO_CR_EVENT: (HTTP_ONLY, HTTP_CASES, {"http.digest-valid"}),
    Defect.NO_503_WHEN_BUSY: (HTTP_ONLY, HTTP_CASES, {"http.busy"}),
    Defect.NO_RATE_LIMIT: (HTTP_ONLY, HTTP_CASES, {"http.rate-limit"}),
    Defect.CR_URL_ANY_PATH: (HTTP_ONLY, HTTP_CASES, {"http.wrong-path"}),
    Defect.HTTPS_CR_URL: (HTTP_ONLY, HTTP_CASES, {"datamodel.cr-url-http"}),
    Defect.NO_ACTIVE_NOTIFY_JID: (ALL, ["datamodel.*"], {"datamodel.jid-notify"}),
    Defect.NO_ACTIVE_NOTIFY_UDP_ADDRESS: (ALL, ["datamodel.*"], {"datamodel.udp-address-notify"}),
}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def results(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[Defect | None, list[CaseResult]]:
    async def one(defect: Defect | None) -> list[CaseResult]:
        methods, patterns, _failing = EXPECTED[defect]
        folder = tmp_path_factory.mktemp(defect.value if defect else "correct")
        defects = frozenset({defect} if defect else ())
        async with check_lab(folder, methods=methods, defects=defects) as lab:
            return [await lab.run(case.id) for case in select(patterns)]

    found = await asyncio.gather(*(one(defect) for defect in EXPECTED))
    return dict(zip(EXPECTED, found, strict=True))


@pytest.mark.parametrize("defect", list(EXPECTED), ids=lambda d: d.value if d else "correct")
async def test_a_defect_fails_exactly_its_cases(
    results: dict[Defect | None, list[CaseResult]], defect: Defect | None
) -> None:
    failed = {r.case.id: r.reason for r in results[defect] if r.verdict is Verdict.FAIL}
    assert set(failed) == EXPECTED[defect][2], failed
    for result in results[defect]:
        if result.verdict is Verdict.FAIL:
            assert result.evidence[-1].summary == f"fail: {result.reason}"
    skipped = {r.case.id for r in results[defect] if r.verdict is Verdict.SKIPPED}
    if defect is Defect.HTTPS_CR_URL:
        assert skipped == {c.id for c in select(["http.*"])}  # nothing to talk HTTP to
    else:
        assert skipped == set()
