"""Whether an authenticated connection request may open a session, whatever carried it, sans-IO.

A device answers HTTP, UDP and XMPP connection requests with one memory: a request by one method
right after a session another method opened is rate limited the same as a second HTTP one, and a
request while a session was asked for and has not begun joins it. One `CrAdmission` serves
every device of a worker and every method's adapter; it reads no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Protocol

from knock.cpe.defects import Defect, Defects

DEFAULT_RATE_LIMIT: Final = 2.0


class Busy(StrEnum):
    """What a device in a session answers to a connection request."""

    REFUSE = "503"
    QUEUE = "queue"  # accepted, and one more session once the current one ends


@dataclass(frozen=True, slots=True)
class CrPolicy:
    busy: Busy = Busy.REFUSE
    rate_limit: float = DEFAULT_RATE_LIMIT  # least seconds between sessions it opens; 0: none


class Verdict(StrEnum):
    ACCEPTED = "accepted"  # a session opens
    MERGED = "merged"  # joins a session asked for and not yet begun
    BUSY = "busy"
    RATE_LIMITED = "rate-limited"


@dataclass(frozen=True, slots=True)
class Admission:
    verdict: Verdict
    wait: float = 0.0  # seconds until a request would pass the rate limit (RATE_LIMITED only)


class Asked(Protocol):
    """What each method's facts about the device tell the admission they share."""

    @property
    def serial(self) -> str: ...
    @property
    def in_session(self) -> bool: ...
    @property
    def sessions_started(self) -> int: ...
    @property
    def defects(self) -> Defects: ...


@dataclass(slots=True)
class _Memory:
    accepted_at: float
    asked_before: int  # sessions_started when the last accepted request came


class CrAdmission:
    def __init__(self, policy: CrPolicy | None = None) -> None:
        self.policy = policy or CrPolicy()
        self._devices: dict[str, _Memory] = {}

    def admit(self, device: Asked, now: float) -> Admission:
        """Decide, and remember an accepted request. The device's *sessions_started* counts the
        sessions it opened so far: an asked-for session has begun once it moves on. A device
        with the NO_RATE_LIMIT defect skips the rate limit."""
        serial, sessions_started = device.serial, device.sessions_started
        limited = Defect.NO_RATE_LIMIT not in device.defects
        memory = self._devices.get(serial)
        if memory is not None and memory.asked_before == sessions_started:
            return Admission(Verdict.MERGED)
        if device.in_session and self.policy.busy is Busy.REFUSE:
            return Admission(Verdict.BUSY)
        if memory is not None and limited and self.policy.rate_limit > 0:
            wait = memory.accepted_at + self.policy.rate_limit - now
            if wait > 0:
                return Admission(Verdict.RATE_LIMITED, wait)
        self._devices[serial] = _Memory(now, sessions_started)
        return Admission(Verdict.ACCEPTED)
