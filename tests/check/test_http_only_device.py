"""`knock check` against a device it was not written for (issue 13): TR-098 without STUN or
XMPP, no challenge on connection requests, no rate limit, and a connection dropped on a request
for a parameter it lacks. Its verdicts must be true of it: the authentication cases fail showing
that no challenge was made, the rate limit warns, UDP and XMPP are skipped in the terms of its
data model, and no case fails because of an earlier one. Then what the runner does when a case
leaves a task the device cannot take, and when the device stops responding."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from check_lab import CheckLab, check_lab

from knock.check import Case, CaseResult, CheckContext, Family, Kind, Verdict, run_case, select
from knock.check.cases import CaseFn
from knock.check.runner import exit_code
from knock.cpe.defects import Defect
from knock.cpe.quirks import Quirk
from knock.vocab import CrMethod, TaskStatus

IGD_MS = "InternetGatewayDevice.ManagementServer."
HTTP_ONLY = {
    "model": "tr098-http",
    "defects": frozenset({Defect.ACCEPT_ANY_CR_AUTH, Defect.NO_RATE_LIMIT}),
    "quirks": frozenset({Quirk.DROP_ON_UNKNOWN_PARAMETER}),
}
NO_CHALLENGE = "the device made no challenge: a CR without credentials was answered 200, not 401"
FAILING = {
    "http.digest-valid": NO_CHALLENGE,
    "http.no-credentials": NO_CHALLENGE,
    "http.wrong-password": NO_CHALLENGE,
    "http.nonce-reuse": NO_CHALLENGE,
    "datamodel.cr-credentials-256": NO_CHALLENGE,
    "http.basic-refused": "Basic credentials were answered 200",
}
PASSING = {"http.wrong-path", "http.burst-one-session", "http.busy", "datamodel.cr-url-http"}
NO_STUN = (
    "the device offers no UDP (STUN) connection requests: it reports none of "
    f"{IGD_MS}UDPConnectionRequestAddress, STUNEnable, "
)
NO_XMPP = (
    "the device offers no XMPP connection requests: its data model (InternetGatewayDevice., "
    "TR-098) has no XMPP. object and no ConnReqJabberID"
)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def everything(tmp_path_factory: pytest.TempPathFactory) -> dict[str, CaseResult]:
    folder = tmp_path_factory.mktemp("http-only")
    async with check_lab(folder, methods=(CrMethod.HTTP,), **HTTP_ONLY) as lab:
        # The connection-request families; the RPC and Inform cases have their own tests.
        chosen = select(["http.*", "udp.*", "xmpp.*", "datamodel.*"])
        results = {case.id: await lab.run(case.id) for case in chosen}
        # Nothing a case queued is left for the device's next session.
        left = [t for t in await lab.acs.store.find_tasks(None) if t.status == TaskStatus.QUEUED]
        assert not left, left
    return results


def test_each_case_of_the_http_only_device_ends_in_its_verdict(
    everything: dict[str, CaseResult],
) -> None:
    verdicts = {case_id: result.verdict for case_id, result in everything.items()}
    expected = {
        **{case_id: Verdict.FAIL for case_id in FAILING},
        **{case_id: Verdict.PASS for case_id in PASSING},
        "http.rate-limit": Verdict.WARN,
    }
    skipped = {c: Verdict.SKIPPED for c in verdicts if c not in expected}
    assert verdicts == {**expected, **skipped}, {c: everything[c].reason for c in verdicts}
    assert {c for c in skipped if c.startswith(("udp.", "xmpp."))} == {
        c.id for c in select(["udp.*", "xmpp.*"])
    }
    assert exit_code(everything.values()) == 1


def test_the_failures_are_the_devices_own_with_the_exchange_as_evidence(
    everything: dict[str, CaseResult],
) -> None:
    for case_id, reason in FAILING.items():
        result = everything[case_id]
        assert result.reason.startswith(reason), (case_id, result.reason)
        exchanged = [e.summary for e in result.evidence if e.kind in (Kind.SENT, Kind.RECEIVED)]
        got = [s for s in exchanged if s.startswith("GET")]
        assert got and "Digest Authorization" not in " ".join(exchanged), (case_id, exchanged)
        # It failed on what the device answered: no need to ask whether it still responds.
        notes = [e.summary for e in result.evidence if e.kind is Kind.NOTE]
        assert "checking that the device still responds" not in notes, (case_id, notes)


def test_skip_reasons_fit_a_tr098_device_without_stun(everything: dict[str, CaseResult]) -> None:
    for case_id, result in everything.items():
        if result.verdict is not Verdict.SKIPPED:
            continue
        assert "SupportedConnReqMethods" not in result.reason, (case_id, result.reason)
        if case_id.startswith("udp.") or case_id.startswith("datamodel.udp"):
            assert result.reason.startswith(NO_STUN), (case_id, result.reason)
        else:
            assert result.reason.startswith(NO_XMPP), (case_id, result.reason)
        # Skipped before anything was sent: no task, no request.
        assert not [e for e in result.evidence if e.kind is Kind.SENT], case_id


def made(run: CaseFn) -> Case:  # not registered: the registry stays the product's
    return Case("udp.trust-test", "none", "a test of the runner", Family.UDP, run)


async def sets_what_the_device_lacks(ctx: CheckContext) -> None:
    """What udp.binding-request did before it asked whether the device has STUN."""
    await ctx.set_values({ctx.ms("STUNMinimumKeepAlivePeriod"): "2"})


@pytest.fixture
async def http_only(tmp_path: Path) -> AsyncIterator[CheckLab]:
    # A session the device dropped ends when the ACS's session timeout passes: short here.
    quick = {"cwmp_session_timeout": 5.0}
    async with check_lab(
        tmp_path, methods=(CrMethod.HTTP,), acs_settings=quick, **HTTP_ONLY
    ) as lab:
        yield lab


async def test_a_task_the_device_drops_is_cancelled_and_the_next_case_judges_it_afresh(
    http_only: CheckLab,
) -> None:
    dropped = await run_case(http_only.dut, made(sets_what_the_device_lacks))
    after = await http_only.run("http.busy")
    assert dropped.verdict is Verdict.FAIL
    assert dropped.reason.startswith(
        "the device did not answer setParameterValues within 5 s: the device never answered it "
        "in sessions "
    ), dropped.reason
    notes = [e.summary for e in dropped.evidence if e.kind is Kind.NOTE]
    assert "task 1 cancelled: removed from the ACS's queue" in notes
    assert notes[-2:] == ["the device still responds", f"fail: {dropped.reason}"]
    tasks = await http_only.acs.store.find_tasks(None)
    assert [t.name for t in tasks] == ["getParameterValues"]  # the check that it responds
    assert http_only.cpe.counts.failed >= 1  # the device did drop the session
    assert after.verdict is Verdict.PASS, after.reason


async def test_cases_after_the_device_stopped_responding_are_not_run(http_only: CheckLab) -> None:
    async def crashes(ctx: CheckContext) -> None:
        http_only.running.cancel()  # the device is gone for good, its CR listener left behind
        await ctx.read(ctx.ms("ConnectionRequestURL"))

    crashed = await run_case(http_only.dut, made(crashes))
    later = [await http_only.run(c) for c in ("http.digest-valid", "datamodel.cr-url-http")]
    assert crashed.verdict is Verdict.FAIL
    assert crashed.reason.startswith("the device did not answer getParameterValues within 5 s")
    notes = [e.summary for e in crashed.evidence if e.kind is Kind.NOTE]
    assert "checking that the device still responds" in notes
    assert "the device still responds" not in notes and notes[-1] == f"fail: {crashed.reason}"
    for result in later:
        assert result.verdict is Verdict.NOT_RUN
        assert result.reason.startswith(
            "the device is unresponsive since case udp.trust-test: the device did not answer "
            "getParameterValues within 5 s"
        ), result.reason
        assert not [e for e in result.evidence if e.kind is Kind.SENT]
    assert exit_code(later) == 1
