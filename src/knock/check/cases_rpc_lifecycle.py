"""Reboot, FactoryReset and ScheduleInform (TR-069 Annex A.3.2.9, A.4.1.6, A.4.1.2), each asked
for in a session a connection request by each method the device offers opened, and what the
device must inform afterwards: `M Reboot` with the CommandKey and `1 BOOT`, `0 BOOTSTRAP`,
`3 SCHEDULED` and `M ScheduleInform` after the delay."""

from __future__ import annotations

import asyncio
import time
from typing import Final

from knock.check.cases_rpc import ok, rpc
from knock.check.cases_rpc_write import key
from knock.check.context import CheckContext, Watch
from knock.notify import Arrival

BOOT, SCHEDULED = "1 BOOT", "3 SCHEDULED"
M_REBOOT, M_SCHEDULE_INFORM = "M Reboot", "M ScheduleInform"
SCHEDULE_EARLY: Final = 1.0  # how much earlier than the delay the session may come
SCHEDULE_LATE: Final = 5.0  # and how much later
RETRY_PACE: Final = 1.0  # least seconds between requests while a restarted device is away


def keyed(ctx: CheckContext, arrival: Arrival, event: str, command_key: str) -> None:
    """Fail unless *arrival* carries *event* with *command_key*."""
    keys = dict(arrival.command_keys)
    ctx.expect(
        event in keys,
        f"the Inform of session {arrival.session_id} lacks {event} (events "
        f"{', '.join(arrival.events)})",
    )
    ctx.expect(
        keys[event] == command_key,
        f"{event} carries CommandKey {keys[event]!r}, not the {command_key!r} asked for",
    )


async def came_back(ctx: CheckContext, sessions: Watch, event: str) -> Arrival:
    """The device's Inform with *event* after it restarted (within --device-within), once its
    session ended; then a connection request by the case's method reaches it again."""
    arrival = await sessions.first(lambda a: event in a.events, ctx.options.device_within)
    if arrival is None:
        ctx.silent(f"no Inform with {event} within {ctx.options.device_within:g} s")
    await sessions.session_end(arrival.session_id)
    await reachable(ctx)
    return arrival


async def reachable(ctx: CheckContext) -> None:
    """Wait until a connection request by the case's method opens a session again (an XMPP
    connection or a STUN binding is made anew after a restart), within --inform-within."""
    deadline = time.monotonic() + ctx.options.inform_within
    while True:
        await ctx.ready()
        tried = time.monotonic()
        result = await ctx.acs.dispatcher.reach(ctx.device_id, ctx.options.inform_within, ctx.via)
        if result.delivered:
            ctx.note(f"the device takes {ctx.via} connection requests again")
            await ctx.idle()
            return
        if time.monotonic() >= deadline:
            ctx.silent(f"no {ctx.via} connection request reached the device after it restarted")
        ctx.note(f"not yet reachable by {ctx.via}: {result.detail}")
        # A request that failed at once (no ConnectionRequestURL or binding reported yet) is
        # tried again a second later, not in a loop that fills the evidence.
        await asyncio.sleep(max(0.0, tried + RETRY_PACE - time.monotonic()))


@rpc(
    "reboot",
    "TR-069 Annex A.3.2.9, §3.7.1.5 (Table 7)",
    "After Reboot the device informs with 1 BOOT and M Reboot carrying the CommandKey, and "
    "takes connection requests by the method again",
)
async def reboot(ctx: CheckContext) -> None:
    command_key = key(ctx)
    with ctx.watch() as sessions:
        (task,) = await ctx.run_tasks([{"name": "reboot", "commandKey": command_key}])
        ok(ctx, task)
        arrival = await came_back(ctx, sessions, BOOT)
    keyed(ctx, arrival, M_REBOOT, command_key)


@rpc(
    "schedule-inform",
    "TR-069 Annex A.4.1.2, §3.7.1.5 (Table 7)",
    "After ScheduleInform with DelaySeconds --schedule-delay (5), the device informs with "
    f"3 SCHEDULED and M ScheduleInform carrying the CommandKey, {SCHEDULE_EARLY:g} s early to "
    f"{SCHEDULE_LATE:g} s late",
)
async def schedule_inform(ctx: CheckContext) -> None:
    command_key, delay = key(ctx), ctx.options.schedule_delay
    spec = {"name": "scheduleInform", "delaySeconds": delay, "commandKey": command_key}
    with ctx.watch() as sessions:
        (task,) = await ctx.run_tasks([spec])
        asked = time.monotonic()
        ok(ctx, task)
        within = delay + SCHEDULE_LATE + ctx.options.inform_within
        arrival = await sessions.first(lambda a: SCHEDULED in a.events, within)
        came = time.monotonic() - asked
        if arrival is None:
            ctx.fail(f"no Inform with {SCHEDULED} within {within:g} s")
        await sessions.session_end(arrival.session_id)
    ctx.note(f"{SCHEDULED} came {came:.1f} s after the ScheduleInform's session")
    keyed(ctx, arrival, M_SCHEDULE_INFORM, command_key)
    ctx.expect(
        delay - SCHEDULE_EARLY <= came <= delay + SCHEDULE_LATE,
        f"the scheduled Inform came {came:.1f} s after a DelaySeconds of {delay}",
    )
