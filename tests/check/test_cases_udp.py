"""The UDP and STUN cases against simulated CPEs over real loopback sockets: every case passes
against a correct device, and against each UDP or STUN defect exactly the matching cases fail."""

from __future__ import annotations

import asyncio
from pathlib import Path

from check_lab import CheckLab, check_lab

from knock.check import Verdict, select
from knock.cpe.defects import Defect
from knock.vocab import CrMethod

UDP_CASES = [c.id for c in select(["udp.*"])]
WAIT = 10.0


async def udp_ready(lab: CheckLab) -> None:
    """Wait until the STUN server holds the device's binding and the device reported it (only
    the address when it cannot authenticate to STUN), and the session that reported it ended."""
    stun = lab.acs.stun
    assert stun is not None
    name = "Device.ManagementServer.UDPConnectionRequestAddress"
    async with asyncio.timeout(WAIT):
        while True:
            target = await lab.acs.store.get_cr_target(lab.dut.device_id)
            assert target is not None
            binding = stun.bindings.get(target.stun_username or "")
            reported = target.management.get("UDPConnectionRequestAddress", "")
            local = lab.cpe.model.get(name)
            if Defect.STUN_NO_INTEGRITY in lab.cpe.defects and reported == local:
                break
            if binding is not None and reported == local == "{}:{}".format(*binding.address):
                break
            await asyncio.sleep(0.05)  # a binding inside the STUN server is not announced
    await lab.dut.context().idle()


async def run_udp_cases(folder: Path, defect: Defect | None) -> dict[str, Verdict]:
    defects = frozenset() if defect is None else frozenset({defect})
    async with check_lab(
        folder,
        methods=(CrMethod.HTTP, CrMethod.UDP),
        defects=defects,
    ) as lab:
        await udp_ready(lab)
        results = {}
        for case_id in UDP_CASES:
            results[case_id] = (await lab.run(case_id)).verdict
        return results


# What a device with each defect fails; every other UDP case passes. Beside the case named for
# the defect: a device that never answers the 401 holds no STUN binding, so no mapping to report
# and none to move; a session without 6 CONNECTION REQUEST is no answer to a valid request.
EXPECTED_FAILURES = {
    None: set(),
    Defect.UDP_BAD_SIG: {"udp.bad-sig"},
    Defect.UDP_OLD_TS: {"udp.old-ts"},
    Defect.UDP_REPLAY: {"udp.repeated-id"},
    Defect.UDP_WRONG_USERNAME: {"udp.wrong-username"},
    Defect.NO_BINDING_CHANGE: {"udp.binding-change"},
    Defect.STUN_NO_INTEGRITY: {"udp.stun-integrity", "udp.address-mapped", "udp.binding-change"},
    Defect.NO_CR_EVENT: {"udp.valid-cr"},
}


async def test_udp_cases_pass_on_a_correct_device_and_fail_exactly_for_each_defect(
    tmp_path: Path,
) -> None:
    """One lab per row of the table, all at once: each waits mostly on timers."""
    rows = list(EXPECTED_FAILURES)
    for row in rows:
        (tmp_path / str(row)).mkdir()
    runs = await asyncio.gather(*(run_udp_cases(tmp_path / str(row), row) for row in rows))
    failed = {
        row: {case_id for case_id, verdict in verdicts.items() if verdict is Verdict.FAIL}
        for row, verdicts in zip(rows, runs, strict=True)
    }
    assert failed == EXPECTED_FAILURES
    others = [v for verdicts in runs for v in verdicts.values() if v is not Verdict.FAIL]
    assert set(others) == {Verdict.PASS}
