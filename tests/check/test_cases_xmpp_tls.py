"""knock check tells a device that refused the server's certificate from one that never logged
in, and its certificate case passes a device that checks and fails one that does not (the
defect table in test_cases_xmpp)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from check_lab import check_lab

from knock.check import Kind, Verdict
from knock.check.context import DeviceUnderTest
from knock.check.xmpp_probe import not_online
from knock.store.rows import InformRecord
from knock.vocab import CrMethod

XMPP = (CrMethod.HTTP, CrMethod.XMPP)


async def test_a_device_without_the_ca_fails_with_its_refusal_as_the_evidence(
    tmp_path: Path,
) -> None:
    async with check_lab(tmp_path, methods=XMPP, trusted=False) as lab:
        logins = lab.acs.xmpp_logins
        with logins.watch() as events:
            # The device's first refusal may have come before the watch (it logs in as soon
            # as the provisioning session ends): waiting for the next would wait for its retry.
            while True:
                await logins.written()
                device = await lab.acs.store.get_device(lab.dut.device_id)
                if device is not None and device.xmpp_login_detail == "unknown-ca":
                    break
                await events.get()
        result = await lab.run("xmpp.valid-cr")
    assert result.verdict is Verdict.FAIL
    assert result.reason.startswith(
        "the device reports an empty ConnReqJabberID: the device refused the server's "
        "certificate (TLS alert unknown-ca, from 127.0.0.1, since "
    )
    assert result.evidence[-1].kind is Kind.NOTE
    assert result.evidence[-1].summary == f"fail: {result.reason}"


async def test_a_device_that_never_logged_in_is_told_apart(tmp_path: Path) -> None:
    async with check_lab(tmp_path, methods=XMPP) as lab:
        other = "000000-Other-NEVER1"
        await lab.acs.store.record_inform(
            InformRecord(other, "Knock", "000000", "Other", "NEVER1", ["0 BOOTSTRAP"], [], "",
                         datetime.now(UTC))
        )  # fmt: skip
        ctx = DeviceUnderTest(lab.acs, other, lab.dut.options).context()
        assert await not_online(ctx, "no JID") == (
            "no JID: the device never logged in to the XMPP server"
        )
        online = lab.dut.context()
        assert (await not_online(online, "no JID")).startswith(
            "no JID: the device's last login was ok (from 127.0.0.1, since "
        )
