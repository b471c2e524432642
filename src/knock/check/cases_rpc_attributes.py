"""Parameter attributes (TR-069 Annex A.3.2.4-5), each in a session a connection request by each
method the device offers opened: what SetParameterAttributes sets reads back, a passively
notified change comes with the next Inform, and a refusal of active notification is 9009."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Final

from knock.check.cases_rpc import INVALID_PARAMETER_NAME, NO_SUCH_LEAF, fault_of, faulted, ok, rpc
from knock.check.context import CheckContext
from knock.store.rows import TaskRow
from knock.vocab import Event, TaskStatus

NOTIFICATION_REJECTED: Final = "9009"
UPTIME_TICKS: Final = 2.0  # seconds between sessions, so that UpTime has changed


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
