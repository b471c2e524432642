"""A whole `knock check` run: start the ACS, wait for the device, run the cases, stop."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from knock.check.cases import Case
from knock.check.device import wait_for_device
from knock.check.options import CheckOptions
from knock.check.runner import run_cases
from knock.check.verdict import CaseResult
from knock.config import Settings
from knock.server import Running, start


@dataclass(frozen=True, slots=True)
class CheckRun:
    device_id: str
    acs_url: str
    started: datetime
    results: list[CaseResult]
    wall: float = 0.0  # seconds from the ACS's start to the run's end
    device_after: float = 0.0  # of which until the device was provisioned and quiet


def check_settings(settings: Settings, options: CheckOptions) -> Settings:
    """The ACS settings a run needs beside the lab's own: random CR credentials (the cases
    need credentials Knock set), STUN authentication and XMPP TLS as the lab chose, and UDP CRs
    repeated as often as the lab allows attempts."""
    checked = replace(
        settings,
        cr_provision="random",
        stun_require_auth=options.stun_auth,
        xmpp_lab_plaintext=not options.xmpp_tls,
        udp_cr_repeat=options.cr_attempts,
        udp_cr_interval=options.cr_interval,
        cr_session_wait=options.inform_within,
    )
    checked.validate()
    return checked


async def run_check(
    settings: Settings,
    options: CheckOptions,
    cases: Sequence[Case],
    *,
    device_id: str | None = None,
    on_started: Callable[[Running], None] | None = None,
    on_device: Callable[[str], None] | None = None,
    on_result: Callable[[CaseResult], None] | None = None,
) -> CheckRun:
    """Raises `NoDevice` when no device comes, `OSError` when a port is taken."""
    began = time.monotonic()
    acs = await start(check_settings(settings, options))
    try:
        if on_started is not None:
            on_started(acs)
        dut = await wait_for_device(acs, options, device_id)
        device_after = time.monotonic() - began
        try:
            if on_device is not None:
                on_device(dut.device_id)
            started = datetime.now(UTC)
            results = await run_cases(dut, cases, on_result)
        finally:
            await dut.close()
    finally:
        await acs.close()
    wall = time.monotonic() - began
    return CheckRun(dut.device_id, acs.acs_url, started, results, wall, device_after)
