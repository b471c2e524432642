"""The RPC cases (TR-069 Annex A) in sessions opened by each connection-request method, and the
Inform cases, against
simulated CPEs offering HTTP, UDP and XMPP over real loopback sockets: every case passes against
a correct device, and against each RPC defect exactly the matching cases fail, by every method.
The labs run side by side in one event loop."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_asyncio
from check_lab import QUICK, QUICK_POLICY, assert_fails_exactly, check_lab, run_lab, run_table
from test_cases_udp import udp_ready

from knock.check import CaseResult, Kind, Verdict, select
from knock.cpe.defects import Defect
from knock.cpe.quirks import Quirk
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
    Defect.NO_ACTIVE_NOTIFY: by_every_method("active-notify"),
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


async def test_active_notification_comes_in_a_session_of_the_devices_own(
    results: dict[Defect | None, dict[str, CaseResult]],
) -> None:
    for method in CrMethod:
        evidence = results[None][f"rpc.{method}.active-notify"].evidence
        informs = [e.summary for e in evidence if e.kind is Kind.INFORM]
        # The request's session that set it, then the device's own with the change; the task
        # turning it off runs there, so no third session.
        assert len(informs) == 2 and informs[1].startswith("Inform [4 VALUE CHANGE] "), informs
        came = [e.summary for e in evidence if " came " in e.summary]
        assert len(came) == 1 and came[0].startswith("Device.DeviceInfo.UpTime = "), came
    reason = results[Defect.NO_ACTIVE_NOTIFY]["rpc.xmpp.active-notify"].reason
    assert reason.startswith(
        "the device opened no session reporting a change of Device.DeviceInfo.UpTime within "
        f"{QUICK.inform_within:g} s"
    ), reason


async def test_a_device_that_denies_active_notification_has_the_case_skipped(
    tmp_path: Path,
) -> None:
    quirks = frozenset({Quirk.DENY_ACTIVE_NOTIFY})
    async with check_lab(tmp_path, quirks=quirks, options=QUICK, policy=QUICK_POLICY) as lab:
        skipped = await lab.run("rpc.http.active-notify")
        refused = await lab.run("rpc.http.active-refused-9009")
        assert lab.cpe.model.notification("Device.DeviceInfo.UpTime") == 0
    assert skipped.verdict is Verdict.SKIPPED, skipped.reason
    assert skipped.reason.startswith(
        "the device refuses active notification on Device.DeviceInfo.UpTime with 9009"
    ), skipped.reason
    assert refused.verdict is Verdict.PASS, refused.reason


async def test_the_case_minds_the_devices_throttle(tmp_path: Path) -> None:
    # TR-181: the device waits DefaultActiveNotificationThrottle seconds after a session before
    # one for an active notification alone; the case reads it and waits that much longer.
    throttle = {"Device.ManagementServer.DefaultActiveNotificationThrottle": "2"}
    async with check_lab(tmp_path, values=throttle, options=QUICK, policy=QUICK_POLICY) as lab:
        result = await lab.run("rpc.http.active-notify")
    assert result.verdict is Verdict.PASS, result.reason
    notes = [e.summary for e in result.evidence if e.kind is Kind.NOTE]
    assert any(n.startswith(f"watching {2 + QUICK.inform_within:g} s (") for n in notes), notes
    (came,) = [n for n in notes if " came " in n]
    assert float(came.split(" came ")[1].split()[0]) >= 2.0, came
