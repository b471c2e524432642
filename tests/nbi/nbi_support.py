"""What the NBI tests share besides fixtures: sample Informs and handles on a served NBI."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import aiohttp

from knock.notify import Arrival, Hub, TaskFinished
from knock.store import Store
from knock.store.rows import InformRecord, ParamValue
from knock.vocab import TaskStatus

T = TypeVar("T")
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def inform(
    device_id: str,
    params: Sequence[ParamValue] = (),
    *,
    now: datetime = T0,
    events: Sequence[str] = ("1 BOOT",),
) -> InformRecord:
    oui, product_class, serial = device_id.split("-", 2)
    return InformRecord(
        device_id=device_id,
        manufacturer="Acme",
        oui=oui,
        product_class=product_class,
        serial_number=serial,
        events=list(events),
        parameters=list(params),
        cwmp_version="urn:dslforum-org:cwmp-1-0",
        now=now,
    )


@dataclass
class Nbi:
    url: str
    http: aiohttp.ClientSession
    store: Store
    hub: Hub


@dataclass
class ThreadedNbi:
    """The NBI on its own event loop in a thread, for code that runs asyncio.run (the CLI)."""

    url: str
    loop: asyncio.AbstractEventLoop
    store: Store
    hub: Hub
    unreachable: bool = False  # what its connection requests meet
    sessions: list[asyncio.Task[None]] = field(default_factory=list)

    def call(self, work: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout=30)


AddDevice = Callable[..., Awaitable[str]]
StartNbi = Callable[..., Awaitable[Nbi]]


async def play_session(store: Store, hub: Hub, device_id: str, *, fault: bool = False) -> None:
    """Plays the ACS session engine for one session: Inform, then run every queued task."""
    events = ("6 CONNECTION REQUEST",)
    now = datetime.now(UTC)
    session_id = await store.record_inform(inform(device_id, now=now, events=events))
    hub.announce(Arrival(device_id, events, session_id))
    status = TaskStatus.FAULTED if fault else TaskStatus.DONE
    while (task := await store.claim_next_task(device_id, session_id, now)) is not None:
        if task.name == "setParameterValues" and not fault:
            written = [
                ParamValue(path, str(value), (rest or ["xsd:string"])[0])
                for path, value, *rest in task.spec["parameterValues"]
            ]
            await store.put_parameters(device_id, written, datetime.now(UTC))
        await store.finish_task(
            task.id,
            status,
            session_id,
            datetime.now(UTC),
            fault_code="cwmp.9005" if fault else None,
            fault_string="Invalid parameter name" if fault else None,
        )
        hub.announce(TaskFinished(task.id, device_id, status))
    await store.end_session(session_id, "ok", datetime.now(UTC))
