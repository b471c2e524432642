"""What the UDP and XMPP cases of one run did to its device, for the cases after them: the last
UDP ts sent, and the settings made once per run. A run is known by its ACS's store, so labs side
by side in one process keep apart."""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from knock.check.context import CheckContext
from knock.store import Store


@dataclass
class RunMemo:
    last_ts: dict[str, int] = field(default_factory=dict)  # by device id
    done: set[tuple[str, str]] = field(default_factory=set)  # (device id, set-up)


_memos: weakref.WeakKeyDictionary[Store, RunMemo] = weakref.WeakKeyDictionary()


def memo(ctx: CheckContext) -> RunMemo:
    return _memos.setdefault(ctx.acs.store, RunMemo())


async def once(ctx: CheckContext, setup: str, action: Callable[[], Awaitable[None]]) -> None:
    """Run *action* unless this run did *setup* on the device already."""
    key = (ctx.device_id, setup)
    done = memo(ctx).done
    if key not in done:
        await action()
        done.add(key)
