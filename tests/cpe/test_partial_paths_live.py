"""A simulated device that drops the connection on a GetParameterValues of a partial path, as
deployed stacks do, against a real in-process `knock serve`: it is provisioned by leaf names
(connection-request credentials, STUN, XMPP) within four sessions, and Knock remembers, across a
restart, not to ask it again."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from live_lab import MS, WAIT, lab, settled

from knock.cpe.quirks import Quirk
from knock.notify import SessionEnded, TaskFinished
from knock.vocab import CrMethod, CrOutcome, Event, Lack

PASSWORD = f"{MS}ConnectionRequestPassword"
DROPPING = {
    "quirks": frozenset({Quirk.PARTIAL_PATH_DROP}),
    # The device comes back 1 s after each session it dropped, not 5-10 s and growing.
    "values": {
        f"{MS}CWMPRetryMinimumWaitInterval": "1",
        f"{MS}CWMPRetryIntervalMultiplier": "1000",
    },
}


async def test_a_device_dropping_partial_path_reads_is_provisioned_within_four_sessions(
    tmp_path: Path,
) -> None:
    async with lab(tmp_path, device_options=DROPPING) as running:
        [cpe] = running.devices
        device_id = running.device_id(cpe)
        await running.provisioned(cpe)  # its STUN-mapped address and its JID are stored
        store = running.acs.store
        target = await store.get_cr_target(device_id)
        assert target is not None and target.password == cpe.model.get(PASSWORD)
        assert target.stun_username == cpe.model.get(f"{MS}STUNUsername")
        assert cpe.model.get(f"{MS}STUNEnable") == "1"
        assert cpe.model.get("Device.XMPP.Connection.1.Status") == "Enabled"
        sessions = await store.list_sessions(device_id)
        assert len(sessions) <= 4
        assert [s.outcome for s in sessions][-1] == "closed"  # the first: it dropped the read
        assert (cpe.counts.started, cpe.counts.failed) == (len(sessions), 1)
        assert await store.device_lacks(device_id) == {Lack.PARTIAL_PATH_VALUES}
        for method in (CrMethod.XMPP, CrMethod.UDP, CrMethod.HTTP):
            if cpe.in_session:
                await settled(cpe)
            result = await running.acs.dispatcher.reach(device_id, within=5, via=method)
            assert result.outcome is CrOutcome.DELIVERED, result

        # After a restart of the ACS, a factory-reset device is read by leaf names at once.
        if cpe.in_session:
            await settled(cpe)
        await running.restart_acs()
        before = target.password
        with running.acs.hub.subscribe(device_id) as announcements:
            cpe.state.bootstrapped = False
            cpe.request_session(Event.BOOTSTRAP)
            async with asyncio.timeout(WAIT):
                while not isinstance(await announcements.next(), SessionEnded):
                    pass
        again = await running.acs.store.get_cr_target(device_id)
        assert again is not None and again.password not in (None, before)
        assert again.password == cpe.model.get(PASSWORD)
        assert cpe.counts.failed == 1  # no partial path asked again


async def test_a_device_faulting_on_partial_path_reads_is_provisioned_in_its_first_session(
    tmp_path: Path,
) -> None:
    options = {"quirks": frozenset({Quirk.PARTIAL_PATH_FAULT})}
    async with lab(tmp_path, device_options=options) as running:
        [cpe] = running.devices
        device_id = running.device_id(cpe)
        await running.provisioned(cpe)
        assert cpe.counts.failed == 0
        [*_, first] = await running.acs.store.list_sessions(device_id)
        assert first.outcome == "ok"
        target = await running.acs.store.get_cr_target(device_id)
        assert target is not None and target.password == cpe.model.get(PASSWORD)
        assert await running.acs.store.device_lacks(device_id) == {Lack.PARTIAL_PATH_VALUES}


async def test_a_task_that_crashes_the_device_is_retried_then_faulted_and_the_next_one_runs(
    tmp_path: Path,
) -> None:
    """Its RPC (a partial-path read) makes the device drop the connection in each of the three
    sessions a task may run in (no back-off here, to keep the test short); then it ends
    faulted with the reason, and the task queued behind it runs."""
    async with lab(tmp_path, device_options=DROPPING, cwmp_task_retry_delay=0.0) as running:
        [cpe] = running.devices
        device_id = running.device_id(cpe)
        await running.provisioned(cpe)
        if cpe.in_session:
            await settled(cpe)
        store = running.acs.store
        now = datetime.now(UTC)
        poisoned = await store.add_task(
            device_id,
            "getParameterValues",
            {"name": "getParameterValues", "parameterNames": ["Device.DeviceInfo."]},
            now,
        )
        uptime = "Device.DeviceInfo.UpTime"
        behind = await store.add_task(
            device_id,
            "getParameterValues",
            {"name": "getParameterValues", "parameterNames": [uptime]},
            now,
        )
        failed = cpe.counts.failed
        finished: dict[int, str] = {}
        with running.acs.hub.subscribe(device_id) as announcements:
            cpe.request_session()
            async with asyncio.timeout(WAIT):
                while behind.id not in finished:
                    item = await announcements.next()
                    if isinstance(item, TaskFinished):
                        finished[item.task_id] = item.status
        assert finished == {poisoned.id: "faulted", behind.id: "done"}
        assert list(finished) == [poisoned.id, behind.id]
        faulted = await store.get_task(poisoned.id)
        assert faulted is not None
        assert (faulted.status, faulted.attempts, faulted.fault_code) == ("faulted", 3, "closed")
        assert faulted.fault_string is not None and "3 session(s) of 3 allowed" in (
            faulted.fault_string
        )
        assert cpe.counts.failed == failed + 3
        done = await store.get_task(behind.id)
        assert done is not None and done.result[0][0] == uptime
