"""Simulated devices taking readings of the spec deployed stacks take (`knock sim --quirk`)
against a real in-process `knock serve`: the ACS must work with each."""

from __future__ import annotations

from pathlib import Path

from live_lab import MS, lab, settled, until

from knock.cpe.quirks import Quirk
from knock.cpe.udp_cr import UdpAnswer
from knock.vocab import CrMethod, CrOutcome, StunOutcome
from serve_support import stun_outcome_is


async def test_a_device_padding_its_stun_username_with_spaces_binds_and_takes_udp_requests(
    tmp_path: Path,
) -> None:
    async with lab(tmp_path, quirks=frozenset({Quirk.STUN_USERNAME_SPACE_PAD})) as running:
        [cpe] = running.devices
        stun = running.acs.stun
        assert stun is not None
        await running.provisioned(cpe)
        username = cpe.model.get(f"{MS}STUNUsername")
        await until(lambda: username in stun.bindings)
        assert stun.counters.integrity_failures == 0
        if cpe.in_session:
            await settled(cpe)
        result = await running.acs.dispatcher.reach(
            running.device_id(cpe), within=5, via=CrMethod.UDP
        )
        assert result.outcome is CrOutcome.DELIVERED, result
        udp = running.services.udp
        assert udp is not None and udp.gate.totals[UdpAnswer.ACCEPTED] == 1
        await stun_outcome_is(running.acs.store, running.device_id(cpe), StunOutcome.OK)
