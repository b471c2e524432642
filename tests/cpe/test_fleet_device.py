"""What running fleets against a loaded ACS taught the simulated device."""

from __future__ import annotations

from cpe_support import T0, FakeAcs, FakeClock, MakeCpe, RunCpe, Script

from knock.cwmp import CWMP_1_2, GetRPCMethods, Rpc, acs_fault, build_envelope


async def test_a_fault_from_the_acs_ends_the_session_instead_of_being_answered(
    make_cpe: MakeCpe, run_cpe: RunCpe, acs: FakeAcs, clock: FakeClock
) -> None:
    # An ACS that lost track of a session (its timeout passed while it was overloaded) answers
    # the next POST with fault 8001; a device answering that with a fault looped for ever.
    lost = build_envelope(
        acs_fault(8001, "a session starts with Inform"), cwmp_ns=CWMP_1_2, id="acs-1"
    )
    script: Script = [lost, GetRPCMethods()]
    acs.scripts.append(script)
    sent: list[Rpc | bytes] = []
    acs.on_request = sent.append
    cpe = make_cpe("SIM1")
    run_cpe(cpe)
    # Idle until the periodic inform: the Inform's events were delivered, nothing to retry.
    assert await clock.next_timer() == T0 + 300
    assert sent == [lost]  # the device answered nothing, so the ACS sent nothing more
    assert (cpe.counts.started, cpe.counts.informed, cpe.counts.failed) == (1, 1, 1)
