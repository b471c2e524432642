"""The XMPP cases against simulated CPEs on the built-in XMPP server over loopback: every case
passes against a correct device, and against each XMPP defect exactly the matching cases fail."""

from __future__ import annotations

import asyncio
from pathlib import Path

from check_lab import CheckLab, check_lab

from knock.check import Verdict, select
from knock.cpe.defects import Defect
from knock.vocab import CrMethod
from serve_support import fast_retry_model

XMPP_CASES = [c.id for c in select(["xmpp.*"])]
WAIT = 10.0

# What a device with each defect fails; every other XMPP case passes. A session without
# 6 CONNECTION REQUEST is no answer to a valid request, before or after the server's restart.
EXPECTED_FAILURES = {
    None: set(),
    Defect.PREFIX_JID_MATCH: {"xmpp.prefix-jid"},
    Defect.NOT_AUTORIZED_TYPO: {"xmpp.wrong-credentials"},
    Defect.XMPP_NO_RESULT: {"xmpp.valid-cr", "xmpp.reconnect"},
    Defect.NO_CR_EVENT: {"xmpp.valid-cr", "xmpp.reconnect"},
}


async def xmpp_ready(lab: CheckLab) -> None:
    """Wait until the ACS stores the device's ConnReqJabberID and the session that reported it
    ended."""
    async with asyncio.timeout(WAIT):
        while True:
            target = await lab.acs.store.get_cr_target(lab.dut.device_id)
            assert target is not None
            if target.management.get("ConnReqJabberID"):
                break
            await asyncio.sleep(0.05)  # stored values are not announced
    await lab.dut.context().idle()


async def run_xmpp_cases(folder: Path, defect: Defect | None) -> dict[str, Verdict]:
    defects = frozenset() if defect is None else frozenset({defect})
    async with check_lab(
        folder,
        methods=(CrMethod.HTTP, CrMethod.XMPP),
        model=fast_retry_model(folder),  # reconnects after 1 s, not TR-181's 60
        defects=defects,
    ) as lab:
        await xmpp_ready(lab)
        results = {}
        for case_id in XMPP_CASES:
            results[case_id] = (await lab.run(case_id)).verdict
        return results


async def test_xmpp_cases_pass_on_a_correct_device_and_fail_exactly_for_each_defect(
    tmp_path: Path,
) -> None:
    """One lab per row of the table, all at once: each waits mostly on timers."""
    rows = list(EXPECTED_FAILURES)
    for row in rows:
        (tmp_path / str(row)).mkdir()
    runs = await asyncio.gather(*(run_xmpp_cases(tmp_path / str(row), row) for row in rows))
    failed = {
        row: {case_id for case_id, verdict in verdicts.items() if verdict is Verdict.FAIL}
        for row, verdicts in zip(rows, runs, strict=True)
    }
    assert failed == EXPECTED_FAILURES
    others = [v for verdicts in runs for v in verdicts.values() if v is not Verdict.FAIL]
    assert set(others) == {Verdict.PASS}
