"""`knock check` against simulated CPEs: an in-process `knock serve` and one simulated device
with real loopback sockets, the device found the way `knock check` finds a real one."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from knock.check import CaseResult, CheckOptions, Verdict, run_case, select
from knock.check.context import DeviceUnderTest
from knock.check.device import wait_for_device
from knock.cpe.cr_rate import CrPolicy
from knock.cpe.cr_services import CrServices
from knock.cpe.defects import Defect
from knock.cpe.device import SimulatedCpe
from knock.cpe.trust import device_tls
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
# For labs whose cases judge no rate limit (http.rate-limit alone does): the device limits its
# sessions for a tenth of a second and the check waits 0.2 s from one, as `--rate-gap 0.2` does
# against a real device that allows it. Every case waits that gap once per session it needs;
# a ScheduleInform case waits its delay, the periodic Inform case two intervals, the retry case
# two retries (1-2 s, then 2-4 s). A session that should not come is watched for as long as
# one that should is waited for: in a defect table, a defect's session that a loaded machine
# delays past a shorter watch would pass its case and fail the row. The device's set-up, quiet
# as long once provisioned, gets room for that.
QUICK = replace(
    FAST,
    rate_gap=0.2,
    schedule_delay=2,
    periodic_interval=3,
    retry_wait=1,
    quiet_for=FAST.inform_within,
    device_within=FAST.device_within + FAST.inform_within,
)
QUICK_POLICY = CrPolicy(rate_limit=0.1)


@dataclass
class CheckLab:
    acs: Running
    services: CrServices
    cpe: SimulatedCpe
    dut: DeviceUnderTest
    running: asyncio.Task[None]  # the device's life: cancel it and the device is gone

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
    trusted: bool = True,
    cr_host: str = "127.0.0.1",
    **cpe_options: Any,
) -> AsyncIterator[CheckLab]:
    """Start the ACS (random CR credentials, as `knock check` runs it), the device's CR services
    for *methods* and one device (*cpe_options* go to `SimulatedCpe`, e.g. ``defects=``), and
    yield once the device is provisioned and idle. Not *trusted*, the device does not hold the
    lab CA: it cannot log in to XMPP (and is not waited for there)."""
    settings = loopback_settings(
        folder, cr_provision="random", cr_session_wait=options.inform_within, **(acs_settings or {})
    )
    acs = await start(settings)
    # The device trusts the lab CA (unless a test hands it another), as a lab sets one up.
    defects = cpe_options.get("defects", frozenset())
    ca = str(acs.ca.cert_path) if acs.ca is not None and trusted else ""
    services = CrServices(methods, policy, host=cr_host, tls=device_tls(ca, defects))
    await services.start()
    cpe = SimulatedCpe("CHECK0001", model, folder / "state", acs.acs_url, **cpe_options)
    services.attach(cpe)
    found = asyncio.create_task(wait_for_device(acs, options))
    running = asyncio.create_task(cpe.run())
    dut = None
    try:
        dut = await found
        await _reported(dut, methods if trusted else (CrMethod.HTTP,))
        yield CheckLab(acs, services, cpe, dut, running)
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


async def run_lab(
    factory: pytest.TempPathFactory,
    defect: Defect | None,
    methods: tuple[CrMethod, ...],
    patterns: list[str],
    ready: Callable[[CheckLab], Awaitable[None]] | None = None,
    *,
    quick: bool = False,
) -> dict[str, CaseResult]:
    """The cases *patterns* against one device with *defect* (None: a correct one) offering
    *methods*, once *ready*; *quick*, with the `QUICK` waits (no case judges a rate limit).
    Tests gather one per defect in one event loop, so a table of defects costs about one run
    of the cases."""
    folder = factory.mktemp(defect.value if defect else "correct")
    defects = frozenset({defect} if defect else ())
    timing: dict[str, Any] = {"options": QUICK, "policy": QUICK_POLICY} if quick else {}
    async with check_lab(folder, methods=methods, defects=defects, **timing) as lab:
        if ready is not None:
            await ready(lab)
        return {case.id: await lab.run(case.id) for case in select(patterns)}


async def run_table(
    factory: pytest.TempPathFactory,
    defects: Iterable[Defect | None],
    methods: tuple[CrMethod, ...],
    patterns: list[str],
    ready: Callable[[CheckLab], Awaitable[None]] | None = None,
    *,
    quick: bool = False,
) -> dict[Defect | None, dict[str, CaseResult]]:
    """`run_lab` for each of *defects* side by side: a defect table's results."""
    chosen = list(defects)
    labs = [run_lab(factory, d, methods, patterns, ready, quick=quick) for d in chosen]
    return dict(zip(chosen, await asyncio.gather(*labs), strict=True))


def assert_fails_exactly(
    results: dict[str, CaseResult],
    failing: set[str],
    skipping: set[str] | None = None,
    warning: set[str] | None = None,
) -> None:
    """The cases *failing* failed, each with its reason as its evidence's last entry, those of
    *skipping* were skipped, those of *warning* warned, and every other case passed."""
    by_verdict: dict[Verdict, set[str]] = {verdict: set() for verdict in Verdict}
    for case_id, result in results.items():
        by_verdict[result.verdict].add(case_id)
    failed = by_verdict[Verdict.FAIL]
    assert failed == failing, {c: results[c].reason for c in failed ^ failing}
    for case_id in failed:
        assert results[case_id].evidence[-1].summary == f"fail: {results[case_id].reason}"
    skipped = by_verdict[Verdict.SKIPPED]
    assert skipped == (skipping or set()), {c: results[c].reason for c in skipped}
    warned = by_verdict[Verdict.WARN]
    assert warned == (warning or set()), {c: results[c].reason for c in warned}
    assert not by_verdict[Verdict.NOT_RUN], {
        c: results[c].reason for c in by_verdict[Verdict.NOT_RUN]
    }
