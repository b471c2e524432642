"""What the cases of one run did to its device, for the cases after them: the last UDP ts sent,
the methods GetRPCMethods listed, and the settings made once per run with how to undo each,
which `restore` does at the run's end. A run is known by its ACS's store, so labs side by side
in one process keep apart."""

from __future__ import annotations

import logging
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from knock.check.context import CheckContext, DeviceUnderTest
from knock.check.verdict import CaseFailed
from knock.notify import SessionEnded
from knock.store import Store

Undo = Callable[[CheckContext], Awaitable[None]]


@dataclass
class RunMemo:
    last_ts: dict[str, int] = field(default_factory=dict)  # by device id
    done: set[tuple[str, str]] = field(default_factory=set)  # (device id, set-up)
    undo: list[tuple[str, Undo]] = field(default_factory=list)  # (set-up, its undoing), in order
    # How the session a connection request by each method opened for the session-rule cases
    # ended, by (device id, method): the other cases of that profile judge the same record.
    sessions: dict[tuple[str, str], SessionEnded] = field(default_factory=dict)
    rpc_methods: dict[str, frozenset[str]] = field(default_factory=dict)  # by device id
    fresh: dict[str, int] = field(default_factory=dict)  # by device id: see cases_inform.fresh


log = logging.getLogger("knock.check")
_memos: weakref.WeakKeyDictionary[Store, RunMemo] = weakref.WeakKeyDictionary()


def memo(ctx: CheckContext) -> RunMemo:
    return _memos.setdefault(ctx.acs.store, RunMemo())


async def once(ctx: CheckContext, setup: str, action: Callable[[], Awaitable[Undo]]) -> None:
    """Run *action* unless this run did *setup* on the device already; what it returns undoes
    it at the run's end."""
    key = (ctx.device_id, setup)
    run = memo(ctx)
    if key not in run.done:
        undo = await action()
        run.done.add(key)
        run.undo.append((setup, undo))


async def restore(dut: DeviceUnderTest) -> None:
    """Undo the run's set-ups on the device, the last first, while it responds; what cannot be
    undone is logged with the device id."""
    ctx = dut.context()
    pending = memo(ctx).undo
    while pending:
        setup, undo = pending.pop()
        if dut.unresponsive:
            log.warning("device %s: %s left as set: it is unresponsive", dut.device_id, setup)
            continue
        try:
            await ctx.settled()
            await undo(ctx)
        except CaseFailed as exc:
            log.warning("device %s: %s could not be undone: %s", dut.device_id, setup, exc)
