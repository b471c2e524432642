"""What the STUN server's answers tell about each device, made visible: its last STUN outcome on
its document (written when it changes, not per keep-alive), and each refusal logged with the
device, the source address and the reason, once per interval per device and reason.

A device whose signed Binding Requests are refused keeps a NAT binding Knock cannot trust, so no
UDP connection request reaches it; without this it would fail silently for ever.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from knock.hosts import authority
from knock.logs import fields
from knock.ratelog import Repeats
from knock.store import Store
from knock.stun.attributes import Address
from knock.stun.service import AuthFailed, BindingLearned
from knock.vocab import StunOutcome

log = logging.getLogger("knock.stun")

LOG_INTERVAL_S = 60.0
LogLine = Callable[[str | None], None]  # logs a refusal, given the device id if known
_MAX_TRACKED = 1_000_000  # usernames, as many as the STUN server keeps bindings for
_MAX_LOGGED = 10_000  # (reason, username) pairs counted for the log

_ADVICE = {
    StunOutcome.UNKNOWN_USERNAME: (
        "no device holds this STUN username (set by another ACS, or by hand?): factory-reset "
        "the device so that Knock provisions it again"
    ),
    StunOutcome.BAD_INTEGRITY: (
        "MESSAGE-INTEGRITY does not match the STUNPassword Knock set: the device holds another "
        "password; factory-reset it so that Knock provisions it again"
    ),
}


class StunOutcomes:
    def __init__(self, store: Store, repeats: Repeats | None = None) -> None:
        self._store = store
        self._repeats = repeats or Repeats(LOG_INTERVAL_S, max_keys=_MAX_LOGGED)
        self._last: dict[str, StunOutcome] = {}  # username -> the outcome the store holds
        self._devices: dict[str, str] = {}  # username -> device id, learned from the store
        self._pending: set[asyncio.Task[None]] = set()

    def binding(self, event: BindingLearned) -> None:
        """A Binding Request with CONNECTION-REQUEST-BINDING was answered."""
        if event.authenticated:
            self._note(event.username, StunOutcome.OK, event.address, event.at, None)

    def refused(self, event: AuthFailed) -> None:
        """A signed Binding Request was answered 401."""
        # Decided now, in the order the datagrams came, even when the line waits for the store.
        count = self._repeats.due((event.reason, event.username))
        if event.reason is StunOutcome.UNKNOWN_USERNAME:
            # No device holds it (the password lookup missed): nothing to note on a document,
            # and nothing to remember for spoofed names.
            if count:
                self._log(event, None, count=count)
            return
        if not count:
            self._note(event.username, event.reason, event.source, event.at, None)
            return
        line = functools.partial(self._log, event, count=count)
        self._note(event.username, event.reason, event.source, event.at, line)

    async def settled(self) -> None:
        """Wait for the store writes under way (for tests and an orderly close)."""
        await asyncio.gather(*self._pending, return_exceptions=True)

    def _note(
        self,
        username: str,
        outcome: StunOutcome,
        source: Address,
        at: float,
        line: LogLine | None,
    ) -> None:
        """Write *outcome* when it is not the one the store holds; log *line* naming the
        device, once the store said which device it is."""
        if self._last.get(username) is outcome:
            if line is not None:
                line(self._devices.get(username))
            return
        if len(self._last) >= _MAX_TRACKED:
            self._last.clear()
            self._devices.clear()
        self._last[username] = outcome
        task = asyncio.get_running_loop().create_task(
            self._write(username, outcome, authority(*source), at, line)
        )
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _write(
        self,
        username: str,
        outcome: StunOutcome,
        source: str,
        at: float,
        line: LogLine | None,
    ) -> None:
        try:
            since = datetime.fromtimestamp(at, UTC)
            device_id = await self._store.record_stun_outcome(username, outcome, source, since)
        except Exception:  # the store is down: the next change of outcome writes again
            self._last.pop(username, None)
            log.exception("cannot note the STUN outcome of %r in the store", username)
            device_id = None
        if device_id is not None:
            self._devices[username] = device_id
        if line is not None:
            line(device_id)

    def _log(self, event: AuthFailed, device_id: str | None, *, count: int) -> None:
        source = authority(*event.source)
        log.warning(
            "device %s: STUN Binding Request from %s with username %r refused (401, %s): %s%s",
            device_id or "?",
            source,
            event.username,
            event.reason,
            _ADVICE[event.reason],
            self._repeats.suffix(count),
            extra=fields(
                event="stun-refused",
                device_id=device_id,
                source=source,
                reason=str(event.reason),
                held_back=count - 1,
            ),
        )
