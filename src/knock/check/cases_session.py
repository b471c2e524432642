"""How the device opens its sessions: the Inform's envelope limit (TR-069 Annex A.3.3.1), and
periodic Informs of its own at PeriodicInformTime plus whole PeriodicInformIntervals
(§3.7.1.5, the ManagementServer object)."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import Final

from knock.check.cases import case
from knock.check.cases_inform import every, fresh
from knock.check.context import CheckContext
from knock.cwmp.values import format_datetime
from knock.vocab import Event

EARLY: Final = 0.5  # seconds a periodic Inform may come before its moment: clocks differ
LATE: Final = 2.0  # and after it: the connection, TLS, a loaded device
PERIODIC_COUNT: Final = 2  # periodic Informs timed


@case(
    "session.periodic-inform",
    "TR-069 §3.7.1.5 (2 PERIODIC), ManagementServer.PeriodicInformInterval, PeriodicInformTime",
    "Given PeriodicInformInterval --periodic-interval (10) and a PeriodicInformTime, the device "
    f"informs with 2 PERIODIC at that time plus whole intervals, {EARLY:g} s early to "
    f"{LATE:g} s late, twice in a row",
)
async def periodic_inform(ctx: CheckContext) -> None:
    interval = ctx.options.periodic_interval
    # A reference a little ahead, on a whole second: the first Inform comes at it.
    reference = math.ceil(time.time()) + 2
    values = {
        ctx.ms("PeriodicInformEnable"): "true",
        ctx.ms("PeriodicInformInterval"): str(interval),
        ctx.ms("PeriodicInformTime"): format_datetime(datetime.fromtimestamp(reference, UTC)),
    }
    undo = await ctx.change(values)
    try:
        with ctx.watch() as sessions:
            moments = []
            for nth in range(1, PERIODIC_COUNT + 1):
                arrival = await sessions.inform(Event.PERIODIC, interval + LATE + 1, nth)
                moments.append(time.time())
                ctx.note(
                    f"{Event.PERIODIC} in session {arrival.session_id}, "
                    f"{moments[-1] - reference:.2f} s after PeriodicInformTime"
                )
    finally:
        await undo(ctx)
    for moment in moments:
        # How far past the nearest moment the schedule names (negative: before it).
        off = (moment - reference + EARLY) % interval - EARLY
        ctx.expect(
            -EARLY <= off <= LATE,
            f"a periodic Inform came {off:.2f} s off PeriodicInformTime plus a whole "
            f"{interval} s interval",
        )
    gap = moments[1] - moments[0]
    ctx.expect(
        interval - EARLY - LATE <= gap <= interval + EARLY + LATE,
        f"two periodic Informs came {gap:.2f} s apart, not PeriodicInformInterval {interval} s",
    )


@case(
    "session.max-envelopes",
    "TR-069 Annex A.3.3.1 (Inform MaxEnvelopes)",
    "Every Inform sets MaxEnvelopes to 1, as the protocol carries one envelope per message",
)
async def max_envelopes(ctx: CheckContext) -> None:
    for arrival in every(ctx, await fresh(ctx)):
        ctx.expect(
            arrival.max_envelopes == 1,
            f"the Inform of session {arrival.session_id} sets MaxEnvelopes "
            f"{arrival.max_envelopes}, not 1",
        )
