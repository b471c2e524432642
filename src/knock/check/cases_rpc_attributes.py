"""Parameter attributes (TR-069 Annex A.3.2.4-5), each in a session a connection request by each
method the device offers opened: what SetParameterAttributes sets reads back, a passively
notified change comes with the next Inform, an actively notified one opens a session of the
device's own, and a refusal of active notification is 9009."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any, Final

from knock.check.cases_rpc import (
    INVALID_PARAMETER_NAME,
    NO_SUCH_LEAF,
    fault_of,
    faulted,
    ok,
    rpc,
)
from knock.check.context import CheckContext, gpv
from knock.check.verdict import CaseFailed
from knock.notify import Arrival
from knock.store.rows import TaskRow
from knock.vocab import Event, TaskStatus

NOTIFICATION_REJECTED: Final = "9009"
UPTIME_TICKS: Final = 2.0  # seconds between sessions, so that UpTime has changed
# How far a reported UpTime may lie from the one read plus the seconds since: it counts whole
# seconds, and the read and the Inform each take part of one.
UPTIME_TOLERANCE: Final = 2.0
THROTTLE: Final = "DefaultActiveNotificationThrottle"  # TR-181 ManagementServer, seconds


def spa(name: str, notification: int) -> dict[str, Any]:
    return {"name": "setParameterAttributes", "parameterAttributes": [[name, notification]]}


def gpa(name: str) -> dict[str, Any]:
    return {"name": "getParameterAttributes", "parameterNames": [name]}


def notification_of(ctx: CheckContext, done: TaskRow, name: str) -> int | None:
    return {str(n): int(level) for n, level, _acl in ok(ctx, done).result}.get(name)


@rpc(
    "attributes-read-back",
    "TR-069 Annex A.3.2.4, A.3.2.5",
    "The Notification SetParameterAttributes sets (passive, then off) is what "
    "GetParameterAttributes reads",
    shares_session=True,
)
async def attributes_read_back(ctx: CheckContext) -> None:
    name = ctx.ms("PeriodicInformInterval")
    on, read_on, off, read_off = await ctx.run_tasks(
        [spa(name, 1), gpa(name), spa(name, 0), gpa(name)]
    )
    ok(ctx, on)
    level = notification_of(ctx, read_on, name)
    ctx.expect(level == 1, f"{name} reads Notification {level} after it was set to 1")
    ok(ctx, off)
    level = notification_of(ctx, read_off, name)
    ctx.expect(level == 0, f"{name} reads Notification {level} after it was set to 0")


@rpc(
    "active-refused-9009",
    "TR-069 Annex A.3.2.4, A.5.1 (fault 9009); TR-181 canDeny",
    "Active notification on DeviceInfo.UpTime (which a CPE may deny) is refused with 9009, or "
    "accepted and then turned off; no other fault",
    shares_session=True,
)
async def active_refused(ctx: CheckContext) -> None:
    name = f"{ctx.dut.root}DeviceInfo.UpTime"
    done, off = await ctx.run_tasks([spa(name, 2), spa(name, 0)])
    if done.status != TaskStatus.FAULTED:
        ctx.note("the device took active notification on UpTime, which it may; turned off again")
        ok(ctx, off)
        return
    fault_of(ctx, done, NOTIFICATION_REJECTED, f"of Notification 2 on {name}")


@rpc(
    "gpa-invalid",
    "TR-069 Annex A.3.2.5, A.5.1 (fault 9005)",
    "GetParameterAttributes of a parameter the device lacks is answered with fault 9005",
    shares_session=True,
)
async def gpa_invalid(ctx: CheckContext) -> None:
    name = ctx.ms(NO_SUCH_LEAF)
    await faulted(ctx, gpa(name), INVALID_PARAMETER_NAME, f"of {name}")


@rpc(
    "passive-notify",
    "TR-069 Annex A.3.2.4, §3.7.1.5",
    "With passive notification on DeviceInfo.UpTime, the next Inform carries it with "
    "4 VALUE CHANGE (the notification is then turned off again)",
)
async def passive_notify(ctx: CheckContext) -> None:
    name = f"{ctx.dut.root}DeviceInfo.UpTime"
    on, read = await ctx.run_tasks([spa(name, 1), gpa(name)])
    ok(ctx, on)
    level = notification_of(ctx, read, name)
    ctx.expect(level == 1, f"{name} reads Notification {level} after it was set to 1")
    # UpTime counts whole seconds: the next Inform must come after it moved on.
    await asyncio.sleep(max(0.0, UPTIME_TICKS - (time.monotonic() - ctx.dut.last_session)))
    with ctx.watch() as sessions:
        (off,) = await ctx.run_tasks([spa(name, 0)])
        inform = await sessions.inform()  # heard already: run_tasks waited for it
    ctx.expect(
        name in dict(inform.parameters),
        f"the next Inform (session {inform.session_id}) does not carry {name}, passively "
        "notified and changed since",
    )
    ctx.expect(
        Event.VALUE_CHANGE in inform.events,
        f"the next Inform carries {name} but not {Event.VALUE_CHANGE} "
        f"(events {', '.join(inform.events)})",
    )
    ok(ctx, off)


def notify_parameter(ctx: CheckContext) -> str:
    """The full name of `--notify-parameter` in the device's data model."""
    name = ctx.options.notify_parameter
    return name if name.startswith(ctx.dut.root) else ctx.dut.root + name


@rpc(
    "active-notify",
    "TR-069 Annex A.3.2.4, §3.7.1.5 (4 VALUE CHANGE); TR-181 DefaultActiveNotificationThrottle",
    "With active notification on a parameter that changes on its own (--notify-parameter, "
    "DeviceInfo.UpTime), the device opens a session of its own whose Inform carries "
    "4 VALUE CHANGE and the new value (the notification is then turned off again)",
)
async def active_notify(ctx: CheckContext) -> None:
    name = notify_parameter(ctx)
    throttle_name = ctx.ms(THROTTLE)
    # Read where the device has it: provisioning stored every ManagementServer parameter.
    names = [name, *(await ctx.parameters(throttle_name))]
    read, on = await ctx.run_tasks([gpv(*names), spa(name, 2)])
    read_at = time.monotonic()
    if on.status == TaskStatus.FAULTED:
        if on.fault_code == NOTIFICATION_REJECTED:
            ctx.skip(
                f"the device refuses active notification on {name} with 9009, which TR-069 "
                "allows (TR-181 canDeny); --notify-parameter names another parameter to try"
            )
        if on.fault_code == INVALID_PARAMETER_NAME:
            ctx.skip(f"the device has no {name} (9005); --notify-parameter names another")
        ok(ctx, on)
    turned_off = False
    try:
        values = {str(n): str(v) for n, v, _t in ok(ctx, read).result}
        before, throttle = values[name], int(values.get(throttle_name) or 0)
        within = throttle + ctx.options.inform_within
        change = await held_change(ctx, name, before, within)
        if change is None:
            ctx.fail(
                f"the device opened no session reporting a change of {name} within {within:g} "
                f"s of the session that set its active notification ending ({THROTTLE} "
                f"{throttle} s + --inform-within)"
            )
        changed, seen_at, off = change
        (done,) = await ctx.finished(off)
        ok(ctx, done)
        turned_off = True
    finally:
        if not turned_off:
            # The case failed already: this only spares the cases after it a flood of sessions.
            with contextlib.suppress(CaseFailed):
                ctx.note(f"turning active notification on {name} off again")
                (done,) = await ctx.run_tasks([spa(name, 0)])
                ok(ctx, done)
    events = ", ".join(changed.events)
    ctx.expect(
        Event.VALUE_CHANGE in changed.events,
        f"the session reporting {name} changed (Inform [{events}]) lacks {Event.VALUE_CHANGE}",
    )
    if name.endswith(".DeviceInfo.UpTime"):
        now = dict(changed.parameters)[name]
        expected = int(before) + seen_at - read_at
        ctx.expect(
            abs(int(now) - expected) <= UPTIME_TOLERANCE,
            f"the Inform reports {name} = {now}, not {expected:.0f} (within "
            f"{UPTIME_TOLERANCE:g} s), which {before} when set and the seconds since make",
        )


async def held_change(
    ctx: CheckContext, name: str, before: str, within: float
) -> tuple[Arrival, float, list[TaskRow]] | None:
    """The first session the device opens, after the one it is in ends, whose Inform reports
    *name* other than *before*, within *within* seconds of that end; its time.monotonic(); and
    the task turning the notification off, queued before the ACS answers that Inform (it holds
    the device's sessions meanwhile), so that it runs there. None when no such session came."""
    acs = ctx.acs.acs
    seen: set[int] = set()
    with ctx.watch() as sessions:
        acs.hold(ctx.device_id)
        try:
            await ctx.idle()
            ended = time.monotonic()
            ctx.note(
                f"watching {within:g} s ({THROTTLE} + --inform-within) for a session of the "
                f"device's own reporting {name}, {before} when set"
            )
            while (left := ended + within - time.monotonic()) > 0:
                arrival = await sessions.first(lambda a: a.session_id not in seen, left)
                if arrival is None:
                    return None
                seen_at = time.monotonic()
                seen.add(arrival.session_id)
                value = dict(arrival.parameters).get(name, before)
                if value != before:
                    ctx.note(f"{name} = {value} came {seen_at - ended:.2f} s after that end")
                    return arrival, seen_at, await ctx.queue([spa(name, 0)])
                ctx.note(
                    f"a session of the device's own without a change of {name} (Inform "
                    f"[{', '.join(arrival.events)}]), not counted"
                )
                acs.release(ctx.device_id)  # let that one go on; hold the next
                acs.hold(ctx.device_id)
            return None
        finally:
            acs.release(ctx.device_id)
