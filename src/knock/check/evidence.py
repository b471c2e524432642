"""What a case exchanged with the device and saw, each entry timed from the case's start."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum


class Kind(StrEnum):
    SENT = "sent"  # a request to the device (HTTP CR, UDP datagram, XMPP IQ, a task's RPC)
    RECEIVED = "received"  # the device's answer to it
    INFORM = "inform"  # a session the device opened, with its events
    NOTE = "note"  # what the case concluded or waited for


@dataclass(frozen=True, slots=True)
class Entry:
    at: float  # seconds since the case started
    kind: Kind
    summary: str  # one line
    detail: str = ""  # the message itself: headers, XML, parameters


@dataclass
class Evidence:
    clock: Callable[[], float] = time.monotonic
    start: float = 0.0
    entries: list[Entry] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.start = self.start or self.clock()

    def add(self, kind: Kind, summary: str, detail: str = "") -> Entry:
        entry = Entry(round(self.clock() - self.start, 4), kind, summary, detail)
        self.entries.append(entry)
        return entry
