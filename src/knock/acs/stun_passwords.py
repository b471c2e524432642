"""The STUN server's password lookup: an in-process cache, backed by the store.

The cache is loaded at start and filled by this process's provisioning. A device another ACS
process provisioned is a miss here: the lookup then answers "unknown" at once (the STUN server
cannot wait for a database) and asks the store in the background, so the CPE's next request,
which follows a 401 at once, finds the password. Misses are remembered for a while, so unknown
usernames cost one store read each per `miss_ttl`, not one per datagram.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from knock.store import Store

log = logging.getLogger("knock.stun")

MISS_TTL_S = 30.0
_MAX_MISSES = 100_000


class StunPasswords:
    def __init__(
        self,
        store: Store,
        known: dict[str, str],
        *,
        miss_ttl: float = MISS_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._known = known  # shared with the ACS service, which adds what it provisions
        self._miss_ttl = miss_ttl
        self._clock = clock
        self._misses: dict[str, float] = {}
        self._asking: dict[str, asyncio.Task[None]] = {}

    def get(self, username: str) -> str | None:
        found = self._known.get(username)
        if found is not None or username in self._asking:
            return found
        missed = self._misses.get(username)
        if missed is not None and self._clock() - missed < self._miss_ttl:
            return None
        task = asyncio.get_running_loop().create_task(self._ask_store(username))
        self._asking[username] = task
        return None

    async def settled(self) -> None:
        """Wait for the store reads under way (for tests and an orderly close)."""
        await asyncio.gather(*self._asking.values(), return_exceptions=True)

    async def _ask_store(self, username: str) -> None:
        try:
            password = await self._store.stun_password(username)
        except Exception:  # the store is down: the CPE's next keep-alive asks again
            log.exception("cannot read the STUN password of %r from the store", username)
            return
        finally:
            del self._asking[username]
        if password is not None:
            self._known[username] = password
            self._misses.pop(username, None)
            return
        if len(self._misses) >= _MAX_MISSES:
            self._misses.clear()  # a flood of made-up names must not grow memory without end
        self._misses[username] = self._clock()
