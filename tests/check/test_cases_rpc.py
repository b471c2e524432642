"""The RPC cases (TR-069 Annex A) in sessions opened by each connection-request method, and the
Inform cases, against
simulated CPEs offering HTTP, UDP and XMPP over real loopback sockets: every case passes against
a correct device, and against each RPC defect exactly the matching cases fail, by every method.
The labs run side by side in one event loop."""

from __future__ import annotations

import pytest
import pytest_asyncio
from check_lab import QUICK, assert_fails_exactly, run_lab, run_table
from test_cases_udp import udp_ready

from knock.check import CaseResult, Kind, Verdict, select
from knock.cpe.defects import Defect
from knock.vocab import CrMethod

ALL = (CrMethod.HTTP, CrMethod.UDP, CrMethod.XMPP)


def by_every_method(*names: str) -> set[str]:
    return {f"rpc.{method}.{name}" for method in CrMethod for name in names}


# What a device with each defect fails; every other RPC case passes, by every method, and every
# other Inform case (the Informs of reboots and scheduled sessions among those judged).
EXPECTED_FAILURES: dict[Defect | None, set[str]] = {
    None: set(),
    Defect.INVALID_NAME_9002: by_every_method("gpn-invalid", "gpv-invalid"),
    Defect.SPV_NOT_ATOMIC: by_every_method("spv-all-or-nothing"),
    Defect.WRONG_TYPE_9007: by_every_method("spv-wrong-type"),
    Defect.NO_PASSIVE_NOTIFY: by_every_method("passive-notify"),
    Defect.COMMAND_KEY_DROPPED: by_every_method("reboot", "schedule-inform"),
    Defect.RETRY_COUNT_STUCK: {"inform.retry-count"},
}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def results(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[Defect | None, dict[str, CaseResult]]:
    patterns = ["rpc.*", "inform.*"]
    return await run_table(
        tmp_path_factory, EXPECTED_FAILURES, ALL, patterns, udp_ready, quick=True
    )


@pytest.mark.parametrize(
    "defect", list(EXPECTED_FAILURES), ids=lambda d: d.value if d else "correct"
)
async def test_an_rpc_defect_fails_exactly_its_cases_by_every_method(
    results: dict[Defect | None, dict[str, CaseResult]], defect: Defect | None
) -> None:
    assert_fails_exactly(results[defect], EXPECTED_FAILURES[defect])


async def test_each_case_ran_in_a_session_its_method_opened(
    results: dict[Defect | None, dict[str, CaseResult]],
) -> None:
    for case in select(["rpc.*"]):
        result = results[None][case.id]
        notes = [e.summary for e in result.evidence if e.kind is Kind.NOTE]
        assert f"{case.via} connection request: delivered" in " ".join(notes), notes
        informs = [e.summary for e in result.evidence if e.kind is Kind.INFORM]
        assert informs and "6 CONNECTION REQUEST" in informs[0], informs


async def test_a_wrong_fault_code_is_named(
    results: dict[Defect | None, dict[str, CaseResult]],
) -> None:
    reason = results[Defect.INVALID_NAME_9002]["rpc.xmpp.gpv-invalid"].reason
    assert reason.startswith("getParameterValues of Device.ManagementServer.KnockCheckNoSuch")
    assert "was answered with fault 9002" in reason and reason.endswith("not 9005"), reason
    reason = results[Defect.WRONG_TYPE_9007]["rpc.http.spv-wrong-type"].reason
    assert reason.startswith("SetParameterValues of Device.ManagementServer.PeriodicInformInterval")
    assert "without a SetParameterValuesFault 9006 for " in reason, reason
    named = "('Device.ManagementServer.PeriodicInformInterval', '9007')"
    assert reason.endswith(f"(it named [{named}])"), reason


async def test_the_reboot_and_the_scheduled_inform_are_in_the_evidence(
    results: dict[Defect | None, dict[str, CaseResult]],
) -> None:
    for method in CrMethod:
        reboot = results[None][f"rpc.{method}.reboot"].evidence
        informs = [e.summary for e in reboot if e.kind is Kind.INFORM]
        assert any("1 BOOT" in s and "M Reboot" in s for s in informs), informs
        scheduled = results[None][f"rpc.{method}.schedule-inform"].evidence
        came = [e.summary for e in scheduled if e.summary.startswith("3 SCHEDULED came")]
        delay = QUICK.schedule_delay
        assert len(came) == 1 and delay - 1 <= float(came[0].split()[3]) <= delay + 5, came
    reason = results[Defect.COMMAND_KEY_DROPPED]["rpc.udp.reboot"].reason
    assert reason.startswith("M Reboot carries CommandKey '', not the 'knock-udp-"), reason


async def test_a_session_the_request_did_not_open_fails_the_case(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # The device answers the RPC, but its session lacks 6 CONNECTION REQUEST: the request by
    # the case's method is not shown to have opened it.
    found = await run_lab(
        tmp_path_factory, Defect.NO_CR_EVENT, ALL, ["rpc.*.gpv-leaf"], udp_ready, quick=True
    )
    for method in CrMethod:
        result = found[f"rpc.{method}.gpv-leaf"]
        assert result.verdict is Verdict.FAIL, result.reason
        assert result.reason.startswith(
            f"the {method} connection request that should open the session was not delivered "
            "(no-session: "
        ), result.reason
