"""The asyncpg connections of the ACS's per-session calls (`AsyncDatabase.on_asyncpg`).

asyncpg's own Pool was measured at 28 us of CPU for an acquire and release alone, and 90-100 us
for one `SELECT 1` through it against 50 us on a connection held (its release runs as a task of
its own, shielded, a turn of the event loop later): on a periodic session's two statements, a
tenth of the ACS's CPU. What these calls need is less: a connection lent to one call at a time,
kept while idle, and closed instead of returned whenever the call did not end cleanly (it was
cancelled mid-statement, the connection broke, or a transaction is still open), so that
nothing ever has to be reset or waited for on return.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable

import asyncpg


class HotPool:
    def __init__(self, connect: Callable[[], Awaitable[asyncpg.Connection]], size: int) -> None:
        self._connect = connect
        self._size = size
        self._idle: list[asyncpg.Connection] = []
        self._open = 0  # idle, lent, and being opened
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._closed = False

    async def acquire(self) -> asyncpg.Connection:
        """An idle connection (the last returned), or a new one while fewer than `size` are
        open, or the next one returned."""
        while True:
            if self._closed:
                raise asyncpg.InterfaceError("the store is closed")
            if self._idle:
                return self._idle.pop()
            if self._open < self._size:
                self._open += 1
                try:
                    return await self._connect()
                except BaseException:
                    self._open -= 1
                    self._wake()
                    raise
            turn = asyncio.get_running_loop().create_future()
            self._waiting.append(turn)
            try:
                await turn
            except asyncio.CancelledError:
                if turn.done() and not turn.cancelled():
                    self._wake()  # the turn it was given goes to the next in line
                raise

    def release(self, conn: asyncpg.Connection, reusable: bool) -> None:
        """Give back a connection `acquire` lent; not `reusable`: closed, making room for
        another."""
        if reusable and not self._closed and not conn.is_closed() and not conn.is_in_transaction():
            self._idle.append(conn)
        else:
            self._open -= 1
            conn.terminate()
        self._wake()

    def expire(self) -> None:
        """Close the idle connections (the server dropped them, likely): the next calls open
        new ones."""
        while self._idle:
            self.release(self._idle.pop(), reusable=False)

    async def close(self) -> None:
        """Close the idle connections and those returned from now on; waiters get an error."""
        self._closed = True
        for turn in self._waiting:
            if not turn.done():
                turn.set_result(None)
        self._waiting.clear()
        idle, self._idle = self._idle, []
        self._open -= len(idle)
        await asyncio.gather(*(conn.close() for conn in idle), return_exceptions=True)

    def _wake(self) -> None:
        while self._waiting:
            turn = self._waiting.popleft()
            if not turn.done():
                turn.set_result(None)
                return
