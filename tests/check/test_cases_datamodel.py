"""The data-model and Inform cases against a correct simulated CPE offering every method."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from check_lab import QUICK, QUICK_POLICY, CheckLab, check_lab

from knock.check import Kind, Verdict, select
from knock.vocab import CrMethod

ALL = (CrMethod.HTTP, CrMethod.UDP, CrMethod.XMPP)


@pytest.fixture
async def good(tmp_path: Path) -> AsyncIterator[CheckLab]:
    async with check_lab(tmp_path, methods=ALL, options=QUICK, policy=QUICK_POLICY) as lab:
        yield lab


async def test_every_datamodel_case_passes_against_a_correct_device(good: CheckLab) -> None:
    cases = select(["datamodel.*"])
    assert [c.id for c in cases] == [
        "datamodel.xmpp-basic-profile",
        "datamodel.xmpp-connreq-profile",
        "datamodel.udp-connreq-profile",
        "datamodel.cr-url-http",
        "datamodel.cr-credentials-256",
        "datamodel.jid-notify",
        "datamodel.udp-address-notify",
    ]
    for case in cases:
        result = await good.run(case.id)
        assert result.verdict is Verdict.PASS, (case.id, result.reason, result.evidence)
    ms = "Device.ManagementServer."
    assert len(good.cpe.model.get(f"{ms}ConnectionRequestPassword")) == 256
    target = await good.acs.store.get_cr_target(good.dut.device_id)
    assert target is not None and target.password == good.cpe.model.get(
        f"{ms}ConnectionRequestPassword"
    )
    assert good.cpe.model.get(f"{ms}ConnReqJabberID").split("/")[1].startswith("knock-check-")


async def test_profiles_skip_on_an_http_only_device(tmp_path: Path) -> None:
    async with check_lab(tmp_path) as lab:
        for case_id in ("datamodel.xmpp-basic-profile", "datamodel.udp-connreq-profile"):
            result = await lab.run(case_id)
            assert result.verdict is Verdict.SKIPPED, result
            assert "SupportedConnReqMethods is 'HTTP'" in result.reason, result.reason
            assert result.evidence[-1].kind is Kind.NOTE
