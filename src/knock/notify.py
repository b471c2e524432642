"""Announcements: a device arrived, a task finished, a session ended.

The session engine announces; the NBI and the connection-request dispatcher wait. Nothing polls
the store to learn that a device opened a session. With several ACS processes on one database,
a relay (knock.store.relay) carries each process's announcements to the others, since the device
whose arrival an NBI waits for may open its session in any process.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from knock.cwmp.breaches import Breach


@dataclass(frozen=True, slots=True)
class Arrival:
    """A device's Inform was accepted."""

    device_id: str
    events: tuple[str, ...]
    session_id: int
    # The Inform's ParameterList, name and value. Kept in this process (the relay leaves it
    # out, a NOTIFY holds 8,000 bytes): its one reader, knock check, runs its own ACS.
    parameters: tuple[tuple[str, str], ...] = ()
    # What else the Inform said, kept in this process as the parameters are: each event with
    # its CommandKey ("M Reboot", "key"), each parameter's type, RetryCount, CurrentTime and
    # MaxEnvelopes.
    command_keys: tuple[tuple[str, str], ...] = ()
    types: tuple[tuple[str, str], ...] = ()
    retry_count: int = 0
    current_time: str = ""
    max_envelopes: int = 1
    peer: str = ""  # the address the Inform came from (knock check names its family)


@dataclass(frozen=True, slots=True)
class TaskFinished:
    task_id: int
    device_id: str
    status: str  # knock.vocab.TaskStatus: done, faulted or unknown


@dataclass(frozen=True, slots=True)
class SessionEnded:
    device_id: str
    session_id: int
    # How it ended ("ok", "closed", "timeout", ...), and the session rules the device broke
    # that the ACS coped with (knock.cwmp.session); kept in this process, as Arrival's
    # parameters are: the relay leaves them out.
    outcome: str = ""
    breaches: tuple[Breach, ...] = ()


Announcement = Arrival | TaskFinished | SessionEnded


ANY_DEVICE = ""  # subscribe to it to hear every device: the checker waits for whichever comes

Publish = Callable[[Announcement], None]


class Hub:
    """Fan-out of announcements keyed by device id, to any number of waiters."""

    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Queue[Announcement]]] = defaultdict(set)
        self._publish: Publish | None = None
        # Sessions other processes announced and have not announced the end of, by device:
        # the session id and the announcing process (the relay's origin).
        self._remote_sessions: dict[str, tuple[int, str]] = {}

    def relay_to(self, publish: Publish | None) -> None:
        """Hand every announcement made here to `publish` too (other processes' hubs)."""
        self._publish = publish

    def announce(self, item: Announcement) -> None:
        if isinstance(item, Arrival):
            self._remote_sessions.pop(item.device_id, None)  # the device is here now
        self._fan_out(item)
        if self._publish is not None:
            self._publish(item)

    def deliver(self, item: Announcement, origin: str = "") -> None:
        """What another process (`origin`) announced, to this process's waiters."""
        if isinstance(item, Arrival):
            self._remote_sessions[item.device_id] = (item.session_id, origin)
        elif (
            isinstance(item, SessionEnded)
            and self.remote_session(item.device_id) == item.session_id
        ):
            del self._remote_sessions[item.device_id]
        self._fan_out(item)

    def forget(self, origin: str) -> None:
        """The process `origin` is gone (killed): its sessions end here, for whoever waits."""
        gone = [(d, s) for d, (s, o) in self._remote_sessions.items() if o == origin]
        for device_id, session_id in gone:
            del self._remote_sessions[device_id]
            self._fan_out(SessionEnded(device_id, session_id))

    def in_remote_session(self, device_id: str) -> bool:
        """Whether another process announced a session of the device that has not ended. A
        process killed mid-session never announces the end: the relay `forget`s its sessions
        once it falls silent, or the device's next session replaces the entry."""
        return device_id in self._remote_sessions

    def remote_session(self, device_id: str) -> int | None:
        """The id of that session (ids grow: a higher one is a later session)."""
        found = self._remote_sessions.get(device_id)
        return None if found is None else found[0]

    def _fan_out(self, item: Announcement) -> None:
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


def encode(items: Iterable[Announcement]) -> list[list[object]]:
    """Announcements as JSON-ready lists, for other processes."""
    out: list[list[object]] = []
    for item in items:
        if isinstance(item, Arrival):
            out.append(["arrival", item.device_id, list(item.events), item.session_id])
        elif isinstance(item, TaskFinished):
            out.append(["task", item.device_id, item.task_id, item.status])
        else:
            out.append(["ended", item.device_id, item.session_id])
    return out


def decode(rows: object) -> list[Announcement]:
    """What `encode` wrote, read back from JSON; ValueError when it is something else."""
    items: list[Announcement] = []
    if not isinstance(rows, list):
        raise ValueError("not a list of announcements")
    try:
        for kind, device_id, *rest in rows:
            if kind == "arrival":
                events, session_id = rest
                items.append(Arrival(str(device_id), tuple(map(str, events)), int(session_id)))
            elif kind == "task":
                task_id, status = rest
                items.append(TaskFinished(int(task_id), str(device_id), str(status)))
            elif kind == "ended":
                (session_id,) = rest
                items.append(SessionEnded(str(device_id), int(session_id)))
            else:
                raise ValueError(f"unknown announcement kind {kind!r}")
    except TypeError as exc:
        raise ValueError(f"not a list of announcements: {exc}") from exc
    return items
