"""The transfer, HoldRequests and FactoryReset cases against simulated CPEs offering HTTP, UDP
and XMPP over real loopback sockets, a real file server and a real upload listener: a correct
device passes every case by every method, and a device with each defect fails exactly the
matching cases. The labs run side by side in one event loop."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import pytest
import pytest_asyncio
from check_lab import QUICK, QUICK_POLICY, assert_fails_exactly, check_lab, run_table
from test_cases_rpc import ALL, by_every_method
from test_cases_udp import udp_ready

from knock.check import CaseResult, Kind, select
from knock.cpe.defects import Defect
from knock.cpe.quirks import Quirk
from knock.vocab import CrMethod

PATTERNS = ["rpc.*.download*", "rpc.*.upload", "rpc.*.hold-requests", "reset.*"]


def reset_by_every_method() -> set[str]:
    return {f"reset.{method}.factory-reset" for method in CrMethod}


# What a device with each defect fails; every other case of PATTERNS passes, by every method.
EXPECTED_FAILURES: dict[Defect | None, set[str]] = {
    None: set(),
    Defect.TRANSFER_FAULT_DROPPED: by_every_method("download-bad-url"),
    Defect.UPLOAD_NOT_SENT: by_every_method("upload"),
    Defect.HOLD_REQUESTS_IGNORED: by_every_method("hold-requests"),
    Defect.FACTORY_RESET_NO_BOOTSTRAP: reset_by_every_method(),
}
# A size other than FileSize said, taken as done: FileSize is no MUST to compare (a warning).
EXPECTED_WARNINGS: dict[Defect | None, set[str]] = {
    Defect.TRANSFER_FAULT_DROPPED: by_every_method("download-wrong-size"),
}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def results(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[Defect | None, dict[str, CaseResult]]:
    return await run_table(
        tmp_path_factory, EXPECTED_FAILURES, ALL, PATTERNS, udp_ready, quick=True
    )


@pytest.mark.parametrize(
    "defect", list(EXPECTED_FAILURES), ids=lambda d: d.value if d else "correct"
)
async def test_a_transfer_defect_fails_exactly_its_cases_by_every_method(
    results: dict[Defect | None, dict[str, CaseResult]], defect: Defect | None
) -> None:
    assert_fails_exactly(
        results[defect], EXPECTED_FAILURES[defect], warning=EXPECTED_WARNINGS.get(defect)
    )


def _received(result: CaseResult) -> list[str]:
    return [f"{e.summary} | {e.detail}" for e in result.evidence if e.kind is Kind.RECEIVED]


async def test_the_transfer_complete_and_its_fault_are_in_the_evidence(
    results: dict[Defect | None, dict[str, CaseResult]],
) -> None:
    for method in CrMethod:
        done = _received(results[None][f"rpc.{method}.download"])
        reports = [r for r in done if r.startswith("TransferComplete in session")]
        assert len(reports) == 1 and "CommandKey 'knock-" in reports[0], done
        assert "FaultCode 0 ''" in reports[0], reports
        missing = _received(results[None][f"rpc.{method}.download-bad-url"])
        assert any("FaultCode 9016 'HTTP 404 from the file server'" in r for r in missing), missing
        size = _received(results[None][f"rpc.{method}.download-wrong-size"])
        assert any("FaultCode 9018 " in r for r in size), size
        sent = _received(results[None][f"rpc.{method}.upload"])
        assert any(r.startswith("PUT /knock-check-") for r in sent), sent
    reason = results[Defect.TRANSFER_FAULT_DROPPED]["rpc.udp.download-bad-url"].reason
    assert reason.startswith("a Download of http://127.0.0.1:"), reason
    assert reason.endswith("was reported done: the TransferComplete says no fault, not 9016")


async def test_a_held_device_sends_its_transfer_complete_after_the_hold(
    results: dict[Defect | None, dict[str, CaseResult]],
) -> None:
    for method in CrMethod:
        held = results[None][f"rpc.{method}.hold-requests"]
        informs = [e.summary for e in held.evidence if e.kind is Kind.INFORM]
        # The download's session, the held one with 7 TRANSFER COMPLETE, and the one the
        # method's request opened after the hold, which carried the TransferComplete.
        assert "7 TRANSFER COMPLETE" in informs[1], informs
        reports = [r for r in _received(held) if r.startswith("TransferComplete")]
        assert len(reports) == 1 and "while the ACS held" not in reports[0], reports
        notes = [e.summary for e in held.evidence if e.kind is Kind.NOTE]
        assert any(n.endswith("ended by the device's empty POST") for n in notes), notes
    reason = results[Defect.HOLD_REQUESTS_IGNORED]["rpc.xmpp.hold-requests"].reason
    assert reason.endswith("after the ACS had said HoldRequests true"), reason


async def test_a_reset_that_keeps_the_settings_is_told(
    results: dict[Defect | None, dict[str, CaseResult]],
) -> None:
    for method in CrMethod:
        informs = [
            e.summary
            for e in results[None][f"reset.{method}.factory-reset"].evidence
            if e.kind is Kind.INFORM
        ]
        assert any("0 BOOTSTRAP, 1 BOOT" in s for s in informs), informs
    reason = results[Defect.FACTORY_RESET_NO_BOOTSTRAP]["reset.http.factory-reset"].reason
    assert reason == "after FactoryReset the device informed [1 BOOT], without 0 BOOTSTRAP", reason


async def test_a_device_without_upload_or_factory_reset_has_those_cases_skipped(
    tmp_path: Path,
) -> None:
    quirks = frozenset({Quirk.NO_UPLOAD_NO_RESET})
    async with check_lab(tmp_path, quirks=quirks, options=QUICK, policy=QUICK_POLICY) as lab:
        found = {c.id: await lab.run(c.id) for c in select(["rpc.http.upload", "reset.http.*"])}
    assert_fails_exactly(found, set(), skipping=set(found))
    for result in found.values():
        method = "Upload" if "upload" in result.case.id else "FactoryReset"
        assert result.reason == (
            f"GetRPCMethods does not list {method}, which TR-069 Annex A leaves optional"
        ), result.reason
    # Asked once per run, by the first case that needed to know.
    asked = [
        e.summary
        for r in found.values()
        for e in r.evidence
        if e.kind is Kind.SENT and "getRPCMethods" in e.summary
    ]
    assert len(asked) == 1, asked


async def test_the_operator_s_file_and_type_are_what_the_device_downloads(tmp_path: Path) -> None:
    image = tmp_path / "config.bin"
    image.write_bytes(bytes(range(256)) * 300)  # 76,800 bytes: more than one chunk of 64 KiB
    options = replace(QUICK, download_file=str(image), download_type="3 Vendor Configuration File")
    async with check_lab(tmp_path, options=options, policy=QUICK_POLICY) as lab:
        found = {c: await lab.run(c) for c in ("rpc.http.download", "rpc.http.download-wrong-size")}
        received = list(lab.cpe.received)
    assert_fails_exactly(found, set())
    # Kept once: the same bytes under a FileSize one more were refused (9018), not kept.
    assert [(r.size, r.sha256) for r in received] == [
        (76_800, hashlib.sha256(image.read_bytes()).hexdigest())
    ]
    sent = [e.detail for e in found["rpc.http.download"].evidence if e.kind is Kind.SENT]
    assert '"fileType": "3 Vendor Configuration File", "fileSize": 76800' in sent[0], sent
