"""Announcements between ACS processes on one PostgreSQL database, by LISTEN/NOTIFY.

Each process keeps one connection of its own (not the pool's: a listening connection must stay
open) that listens on one channel and sends its hub's announcements, several to a NOTIFY, tagged
with the process's origin so that it skips its own. PostgreSQL delivers a notification to every
listening connection once its transaction commits, in order. SQLite has no such channel: a store
on SQLite serves one process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections import deque
from typing import Any

import asyncpg

from knock.notify import Announcement, Hub, decode, encode
from knock.store.engine import driver_url

log = logging.getLogger("knock.store.relay")

CHANNEL = "knock_hub"
# PostgreSQL refuses a payload of 8,000 bytes or more; a batch is sent before it gets there.
_PAYLOAD_LIMIT = 7000
_RECONNECT_DELAY_S = 1.0
# Every process says it is alive this often, announcements or not; one silent for three times
# as long is taken for dead (killed: it could not say so), and its sessions for ended.
HEARTBEAT_S = 5.0
_SILENT_BEATS = 3


class Relay:
    """Start with `await Relay.start(url, hub)`; `await relay.close()` at the end."""

    def __init__(self, dsn: str, hub: Hub, heartbeat: float = HEARTBEAT_S) -> None:
        self._dsn = dsn
        self._hub = hub
        self._heartbeat = heartbeat
        self._last_heard: dict[str, float] = {}  # by origin, in loop time
        self._origin = secrets.token_hex(6)
        self._outbox: deque[Announcement] = deque()
        self._wake = asyncio.Event()
        self._lost = False
        self._conn: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0  # notifications from others that could not be read

    @classmethod
    async def start(cls, url: str, hub: Hub, heartbeat: float = HEARTBEAT_S) -> Relay:
        """Listen and relay; returns once listening, so nothing announced afterwards is missed."""
        dsn = driver_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        relay = cls(dsn, hub, heartbeat)
        await relay._connect()
        relay._task = asyncio.create_task(relay._run())
        hub.relay_to(relay._publish)
        return relay

    async def close(self) -> None:
        self._hub.relay_to(None)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._conn is not None:
            await self._conn.close()

    def _publish(self, item: Announcement) -> None:
        self._outbox.append(item)
        self._wake.set()

    async def _connect(self) -> None:
        conn = await asyncpg.connect(self._dsn)
        await conn.add_listener(CHANNEL, self._received)
        conn.add_termination_listener(self._terminated)
        self._conn = conn
        self._lost = False

    def _terminated(self, _conn: Any) -> None:
        self._lost = True
        self._wake.set()

    def _received(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            message = json.loads(payload)
            origin = str(message["origin"])
            if origin == self._origin:
                return
            items = decode(message["items"])
        except (ValueError, KeyError, TypeError) as exc:
            self.dropped += 1
            log.warning("dropped an announcement from another process that cannot be read: %s", exc)
            return
        self._last_heard[origin] = asyncio.get_running_loop().time()
        for item in items:
            self._hub.deliver(item, origin)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_beat = loop.time()
        while True:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancellation
            # that arrives as the event is set (close() with sessions ending, hence announcing),
            # and close() then waited for ever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(next_beat):
                    await self._wake.wait()
            self._wake.clear()
            try:
                if self._lost:
                    raise ConnectionError("the listening connection closed")
                if loop.time() >= next_beat:
                    next_beat = loop.time() + self._heartbeat
                    await self._notify([])
                    self._forget_the_silent(loop.time())
                await self._send_outbox()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                # What did not go out is lost to other processes' waiters, who time out as if
                # the device had not come; this process's own waiters heard it already.
                log.warning("cannot relay announcements to other processes, reconnecting: %s", exc)
                self._outbox.clear()
                await self._reconnect()

    async def _send_outbox(self) -> None:
        while self._outbox:
            batch: list[list[object]] = []
            size = 0
            while self._outbox and size < _PAYLOAD_LIMIT:
                [encoded] = encode([self._outbox.popleft()])
                batch.append(encoded)
                size += len(json.dumps(encoded))
            await self._notify(batch)

    async def _notify(self, batch: list[list[object]]) -> None:
        """Send a batch; an empty one says only that this process is alive."""
        payload = json.dumps({"origin": self._origin, "items": batch})
        assert self._conn is not None
        await self._conn.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)

    def _forget_the_silent(self, now: float) -> None:
        for origin, heard in list(self._last_heard.items()):
            if now - heard > _SILENT_BEATS * self._heartbeat:
                del self._last_heard[origin]
                log.warning("ACS process %s fell silent; its sessions count as ended", origin)
                self._hub.forget(origin)

    async def _reconnect(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None
        while self._conn is None:
            try:
                await self._connect()
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("the announcement relay cannot reach PostgreSQL yet: %s", exc)
                await asyncio.sleep(_RECONNECT_DELAY_S)
