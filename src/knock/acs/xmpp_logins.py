"""Each device's last login to the built-in XMPP server, as the server saw it: stored on the
device (its NBI document and the dashboard show it), and a device that refuses the server's
certificate logged, once per interval, with what to do.

The server knows a client by its address until SASL names the account, and a device that
refuses the certificate never gets that far; so the address the device's Informs come from
names it, when exactly one device informs from there (not behind a shared NAT address).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC, datetime
from typing import Any, Final

from knock.store import Store
from knock.xmpp.server import LoginEvent, LoginOutcome

log = logging.getLogger("knock.xmpp")

LOG_INTERVAL: Final = 60.0
_SHARED: Final = ""  # an address more than one device informs from


class XmppLogins:
    def __init__(
        self,
        store: Store,
        *,
        log_interval: float = LOG_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._by_address: dict[str, str] = {}
        self._last: dict[str, tuple[str, str]] = {}  # device -> (outcome, detail) stored
        # account -> its device (None: the ACS's or the checker's): a login costs no read.
        self._accounts: dict[str, str | None] = {}
        self._pending: set[asyncio.Task[None]] = set()
        self._log_interval = log_interval
        self._clock = clock
        self._logged_at: float | None = None
        self._unlogged = 0  # refusals since the last line
        self._watchers: list[asyncio.Queue[LoginEvent]] = []

    def seen_at(self, device_id: str, address: str) -> None:
        """A device informed from *address* (AcsService calls this for each Inform)."""
        known = self._by_address.get(address)
        if known is None:
            self._by_address[address] = device_id
        elif known != device_id:
            self._by_address[address] = _SHARED

    def device_at(self, address: str) -> str | None:
        return self._by_address.get(address) or None

    @contextlib.contextmanager
    def watch(self) -> Iterator[asyncio.Queue[LoginEvent]]:
        """Every login event from now on, while in the block (`knock check` waits on them)."""
        queue: asyncio.Queue[LoginEvent] = asyncio.Queue()
        self._watchers.append(queue)
        try:
            yield queue
        finally:
            self._watchers.remove(queue)

    def event(self, event: LoginEvent) -> None:
        """What the XMPP server tells of a login (its `on_login`)."""
        for queue in self._watchers:
            queue.put_nowait(event)
        if event.outcome is LoginOutcome.TLS_REFUSED:
            device = self.device_at(event.address)
            self._log_refusal(event, device)
            if device is not None:
                self._record(device, event)
        else:
            self._spawn(self._record_account(event))

    def _log_refusal(self, event: LoginEvent, device: str | None) -> None:
        now = self._clock()
        if self._logged_at is not None and now - self._logged_at < self._log_interval:
            self._unlogged += 1
            return
        more = (
            f" ({self._unlogged} more refusals in the last {now - self._logged_at:.0f} s)"
            if self._logged_at is not None and self._unlogged
            else ""
        )
        self._logged_at, self._unlogged = now, 0
        who = f"device {device} at {event.address}" if device else f"a client at {event.address}"
        log.warning(
            "%s refused the XMPP server's certificate (TLS alert %s)%s: give the device the "
            "CA that signed it (the lab CA: GET /ca.pem on the NBI) or set xmpp_tls_cert to "
            "one it trusts",
            who,
            event.detail,
            more,
        )

    async def _record_account(self, event: LoginEvent) -> None:
        if event.username in self._accounts:
            device = self._accounts[event.username]
        else:
            device = await self._store.device_of_xmpp_account(event.username)
            self._accounts[event.username] = device
        if device is not None:
            self._record(device, event)

    def _record(self, device: str, event: LoginEvent) -> None:
        outcome = (str(event.outcome), event.detail)
        if self._last.get(device) == outcome:
            return  # a device logging in again and again costs no write
        self._last[device] = outcome
        self._spawn(
            self._store.record_xmpp_login(
                device, datetime.now(UTC), str(event.outcome), event.detail, event.address
            )
        )

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._pending.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("could not store an XMPP login: %s", task.exception())

    async def written(self) -> None:
        """Wait until what was told so far is in the store (a login's write follows the read
        of its account's device: wait for that too)."""
        while self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    async def close(self) -> None:
        await self.written()
