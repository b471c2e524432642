"""Which presets apply to a device's session: read from the store, at most once a second (a
session costs no extra query while presets stay the same; a change made through any process's
NBI applies within a second), then matched by events and precondition."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sqlalchemy import and_

from knock.acs.presets import events_match, precondition
from knock.nbi.query import QueryError, device_filter
from knock.store import Store
from knock.store.presets import PresetRow
from knock.store.schema import devices

log = logging.getLogger(__name__)

REFRESH_S = 1.0


class PresetSource:
    def __init__(self, store: Store, clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._clock = clock
        self._rows: list[PresetRow] = []
        self._read_at: float | None = None

    async def configurations(
        self, device_id: str, events: Iterable[str]
    ) -> list[Mapping[str, Any]]:
        """The configurations of every preset that applies, lightest preset first."""
        now = self._clock()
        if self._read_at is None or now - self._read_at >= REFRESH_S:
            self._rows = await self._store.list_presets()
            self._read_at = now
        codes = list(events)
        found: list[Mapping[str, Any]] = []
        for row in self._rows:
            if events_match(row.doc, codes) and await self._matches(row, device_id):
                found.extend(row.doc.get("configurations") or ())
        return found

    async def _matches(self, row: PresetRow, device_id: str) -> bool:
        try:
            where = device_filter(precondition(row.doc))
            if where is None:
                return True
            where = and_(where, devices.c.id == device_id)
        except (ValueError, QueryError) as exc:  # checked when stored; the NBI may have changed
            log.warning("preset %r is skipped: its precondition no longer reads: %s", row.name, exc)
            return False
        return bool(await self._store.find_devices(where, limit=1))
