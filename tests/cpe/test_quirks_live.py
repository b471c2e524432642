"""Simulated devices taking readings of the spec deployed stacks take (`knock sim --quirk`)
against a real in-process `knock serve`: the ACS must work with each."""

from __future__ import annotations

import asyncio
from pathlib import Path

from live_lab import MS, WAIT, Lab, lab, settled, until

from knock.cpe.device import SimulatedCpe
from knock.cpe.quirks import Quirk
from knock.cpe.udp_cr import UdpAnswer
from knock.notify import Arrival, SessionEnded
from knock.vocab import CrMethod, CrOutcome, Event, StunOutcome
from serve_support import stun_outcome_is


async def test_a_device_padding_its_stun_username_with_spaces_binds_and_takes_udp_requests(
    tmp_path: Path,
) -> None:
    async with lab(
        tmp_path, device_options={"quirks": frozenset({Quirk.STUN_USERNAME_SPACE_PAD})}
    ) as running:
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


async def xmpp_delivered(running: Lab, cpe: SimulatedCpe) -> None:
    if cpe.in_session:
        await settled(cpe)
    device_id = running.device_id(cpe)
    result = await running.acs.dispatcher.reach(device_id, within=WAIT, via=CrMethod.XMPP)
    assert result.outcome is CrOutcome.DELIVERED, result


async def bootstrapped_again(running: Lab, cpe: SimulatedCpe) -> None:
    """A BOOTSTRAP session run to its end and settled on the device. Not merely the next
    session's end: a session of the device's own (its new JID, reported after its last
    provisioning) may be running when the BOOTSTRAP is asked for, which then comes after it."""
    with running.acs.hub.subscribe(running.device_id(cpe)) as announcements:
        cpe.request_session(Event.BOOTSTRAP)
        bootstrap = None
        async with asyncio.timeout(WAIT):
            while True:
                item = await announcements.next()
                if isinstance(item, Arrival) and Event.BOOTSTRAP in item.events:
                    bootstrap = item.session_id
                elif isinstance(item, SessionEnded) and item.session_id == bootstrap:
                    break
    if cpe.in_session:  # the BOOTSTRAP's end, not yet read on the device, or a later one
        await settled(cpe)


async def test_a_device_with_fixed_xmpp_rows_gets_them_filled(tmp_path: Path) -> None:
    async with lab(
        tmp_path, device_options={"quirks": frozenset({Quirk.XMPP_FIXED_ROWS})}
    ) as running:
        [cpe] = running.devices
        await running.provisioned(cpe)
        assert cpe.model.get("Device.XMPP.ConnectionNumberOfEntries") == "1"
        assert cpe.model.get(f"{MS}ConnReqXMPPConnection") == "Device.XMPP.Connection.1"
        await xmpp_delivered(running, cpe)
        device = await running.acs.store.get_device(running.device_id(cpe))
        assert device is not None
        assert (device.xmpp_setup, device.xmpp_setup_detail) == ("ok", "Device.XMPP.Connection.1.")
        # What was set shows at once, without a re-read.
        allowed = f"{MS}ConnReqAllowedJabberIDs"
        stored = await running.acs.store.get_parameters([running.device_id(cpe)], [allowed])
        assert [p.value for p in stored[running.device_id(cpe)]] == ["acs@knock.lab"]


async def test_a_device_making_its_own_server_row_is_provisioned_once_for_good(
    tmp_path: Path,
) -> None:
    """Its AddObject of a Connection makes Server.1, and AddObject on Server. faults 9005."""
    async with lab(
        tmp_path, device_options={"quirks": frozenset({Quirk.XMPP_SERVER_AUTO})}
    ) as running:
        [cpe] = running.devices
        await running.provisioned(cpe)  # in one bootstrap
        await xmpp_delivered(running, cpe)
        for _ in range(20):  # credentials lost, as after a bootstrap: provisioned again
            await bootstrapped_again(running, cpe)
        assert cpe.model.get("Device.XMPP.ConnectionNumberOfEntries") == "1"
        assert cpe.model.get("Device.XMPP.Connection.1.ServerNumberOfEntries") == "1"
        # The device logs in with the account of its last provisioning, and says so.
        user = cpe.model.get("Device.XMPP.Connection.1.Username")
        await running.stored(cpe, f"{MS}ConnReqJabberID", lambda jid: jid.startswith(user + "@"))
        await xmpp_delivered(running, cpe)
