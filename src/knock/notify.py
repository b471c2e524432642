"""In-process announcements: a device arrived, a task finished.

The session engine announces; the NBI and the connection-request dispatcher wait. Nothing polls
the store to learn that a device opened a session.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Arrival:
    """A device's Inform was accepted."""

    device_id: str
    events: tuple[str, ...]
    session_id: int
    parameters: tuple[tuple[str, str], ...] = ()  # the Inform's ParameterList, name and value


@dataclass(frozen=True, slots=True)
class TaskFinished:
    task_id: int
    device_id: str
    status: str  # knock.vocab.TaskStatus: done or faulted


@dataclass(frozen=True, slots=True)
class SessionEnded:
    device_id: str
    session_id: int


Announcement = Arrival | TaskFinished | SessionEnded


ANY_DEVICE = ""  # subscribe to it to hear every device: the checker waits for whichever comes


class Hub:
    """Fan-out of announcements keyed by device id, to any number of waiters."""

    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Queue[Announcement]]] = defaultdict(set)

    def announce(self, item: Announcement) -> None:
        for key in (item.device_id, ANY_DEVICE):
            for queue in self._waiters.get(key, ()):
                queue.put_nowait(item)

    def subscribe(self, device_id: str) -> Subscription:
        """Start listening before acting, so an answer that comes quickly is not missed."""
        return Subscription(self, device_id)

    def _add(self, device_id: str, queue: asyncio.Queue[Announcement]) -> None:
        self._waiters[device_id].add(queue)

    def _remove(self, device_id: str, queue: asyncio.Queue[Announcement]) -> None:
        waiters = self._waiters.get(device_id)
        if waiters is not None:
            waiters.discard(queue)
            if not waiters:
                del self._waiters[device_id]


class Subscription:
    """Use as a context manager; `next()` waits for the next announcement for one device."""

    def __init__(self, hub: Hub, device_id: str) -> None:
        self._hub = hub
        self._device_id = device_id
        self._queue: asyncio.Queue[Announcement] = asyncio.Queue()

    def __enter__(self) -> Subscription:
        self._hub._add(self._device_id, self._queue)
        return self

    def __exit__(self, *exc: object) -> None:
        self._hub._remove(self._device_id, self._queue)

    async def next(self) -> Announcement:
        return await self._queue.get()
