"""One fan-out reaches a whole fleet: 200 simulated devices (knock's own `knock sim` fleet, in this
process) boot against `knock serve`, get their connection-request credentials, and every one of
them is then reached by HTTP connection request, proven by its Inform."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from knock.cpe.fleet import Fleet
from knock.cpe.fleet_config import FleetConfig
from knock.cwmp import DeviceIdStruct, device_key
from knock.server import Running
from knock.vocab import CrMethod, CrOutcome

DEVICES = 200


async def test_200_devices_all_reached_by_one_fan_out(start_acs: Any, tmp_path: Path) -> None:
    acs: Running = await start_acs(cr_provision="random", cr_session_wait=20.0)
    fleet = Fleet(
        FleetConfig(
            acs.acs_url,
            DEVICES,
            state_dir=str(tmp_path / "state"),
            start_rate=1000,
            report_interval=0.05,
            periodic_interval=3600,
        )
    )
    stop = asyncio.Event()
    running = asyncio.create_task(fleet.run(stop))
    try:
        # Each device's first session includes the ACS setting its credentials.
        async with asyncio.timeout(60):
            await fleet.wait_until(lambda s: s.online == DEVICES and s.in_session == 0)
        ids = [
            device_key(DeviceIdStruct("Knock Labs", "00D09E", "KnockBox", f"SIM{n:06d}"))
            for n in range(1, DEVICES + 1)
        ]
        results = await acs.dispatcher.reach_many(ids, concurrency=100, within=20.0)
    finally:
        stop.set()
        await asyncio.wait_for(running, 30)
    outcomes = [r.outcome for r in results]
    assert outcomes.count(CrOutcome.DELIVERED) == DEVICES, {
        r.device_id: r.detail for r in results if not r.delivered
    }
    assert {r.method for r in results} == {CrMethod.HTTP}
    latencies = sorted(r.latency for r in results if r.latency is not None)
    assert len(latencies) == DEVICES and latencies[0] > 0
    attempts = await acs.store.list_cr_attempts(ids[0])
    assert [(a.method, a.outcome) for a in attempts] == [("http", "delivered")]
