"""`knock check` against simulated CPEs: an in-process `knock serve` and one simulated device
with real loopback sockets, the device found the way `knock check` finds a real one."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from knock.check import CaseResult, CheckOptions, run_case, select
from knock.check.context import DeviceUnderTest
from knock.check.device import wait_for_device
from knock.cpe.cr_rate import CrPolicy
from knock.cpe.cr_services import CrServices
from knock.cpe.device import SimulatedCpe
from knock.server import Running, start
from knock.vocab import CrMethod
from serve_support import loopback_settings

# Short waits: a simulated device answers within milliseconds; these only bound a failure.
FAST = CheckOptions(
    inform_within=5.0,
    quiet_for=1.0,
    case_timeout=30.0,
    device_within=15.0,
    rate_gap=1.0,
    cr_interval=0.2,
)
RATE_LIMIT = 1.0  # the simulated device's least seconds between sessions
LIMITED = CrPolicy(rate_limit=RATE_LIMIT)


@dataclass
class CheckLab:
    acs: Running
    services: CrServices
    cpe: SimulatedCpe
    dut: DeviceUnderTest

    async def run(self, case_id: str) -> CaseResult:
        (case,) = select([case_id])
        return await run_case(self.dut, case)


@contextlib.asynccontextmanager
async def check_lab(
    folder: Path,
    *,
    methods: tuple[CrMethod, ...] = (CrMethod.HTTP,),
    policy: CrPolicy = LIMITED,
    options: CheckOptions = FAST,
    model: str = "tr181",
    acs_settings: dict[str, Any] | None = None,
    **cpe_options: Any,
) -> AsyncIterator[CheckLab]:
    """Start the ACS (random CR credentials, as `knock check` runs it), the device's CR services
    for *methods* and one device (*cpe_options* go to `SimulatedCpe`, e.g. ``defects=``), and
    yield once the device is provisioned and idle."""
    settings = loopback_settings(
        folder, cr_provision="random", cr_session_wait=options.inform_within, **(acs_settings or {})
    )
    acs = await start(settings)
    services = CrServices(methods, policy)
    await services.start()
    cpe = SimulatedCpe("CHECK0001", model, folder / "state", acs.acs_url, **cpe_options)
    services.attach(cpe)
    found = asyncio.create_task(wait_for_device(acs, options))
    running = asyncio.create_task(cpe.run())
    dut = None
    try:
        dut = await found
        await _reported(dut, methods)
        yield CheckLab(acs, services, cpe, dut)
    finally:
        found.cancel()
        running.cancel()
        await asyncio.gather(found, running, return_exceptions=True)
        if dut is not None:
            await dut.close()
        await services.close()
        await acs.close()


# What a device reports once it can take each method's requests.
REPORTS = {CrMethod.UDP: "UDPConnectionRequestAddress", CrMethod.XMPP: "ConnReqJabberID"}


async def _reported(dut: DeviceUnderTest, methods: tuple[CrMethod, ...]) -> None:
    """Wait until the ACS stores the UDP address and JID of the methods enabled and the
    device's session that reported them ended; `knock check` itself only waits for quiet."""
    ctx = dut.context()
    names = [ctx.ms(REPORTS[m]) for m in methods if m in REPORTS]
    with dut.acs.hub.subscribe(dut.device_id) as announcements:
        async with asyncio.timeout(dut.options.device_within):
            while len(await ctx.parameters(*names)) < len(names):
                await announcements.next()
    await ctx.idle()
