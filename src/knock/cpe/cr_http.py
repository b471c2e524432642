"""What a simulated CPE answers to an HTTP connection request (TR-069 §3.2.2), sans-IO.

`CrGate.decide` takes the facts of one request, the facts of the device its path names (None
when no device has that path) and the time, and returns the status, headers and whether to open
a session. It remembers, per device, when it last let a request open a session and for which
session, and counts every answer. It owns no socket and reads no clock; `cr_listener` is the
aiohttp adapter around it.

The order of checks: a path no device has is 404, a method other than GET 405, then HTTP Digest
(401 with a fresh challenge, ``stale=true`` for an old nonce). An authenticated request joins a
session already asked for and not yet begun (200, no second session); otherwise a device in a
session refuses (503) or, with `Busy.QUEUE`, accepts a session right after the current one; the
rate limit refuses (503 with Retry-After) a request that would open a session too soon after
the last one did. What remains is accepted: 200, then a session.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from knock.auth import Algorithm, DigestServer, Verdict

REALM: Final = "Knock CPE"
# A connection request answers its challenge within a round trip; a minute is generous.
NONCE_LIFETIME: Final = 60.0
DEFAULT_RATE_LIMIT: Final = 2.0


class Busy(StrEnum):
    """What a device in a session answers to a connection request."""

    REFUSE = "503"
    QUEUE = "queue"  # 200, and one more session once the current one ends


class CrAnswer(StrEnum):
    """How a connection request was answered; the live view counts these."""

    ACCEPTED = "accepted"  # 200: a session opens
    MERGED = "merged"  # 200: joins a session asked for and not yet begun
    CHALLENGED = "challenged"  # 401: no credentials, the first leg of every Digest exchange
    MALFORMED = "malformed"  # 401: an Authorization header that cannot be used
    BAD_CREDENTIALS = "bad-credentials"  # 401
    STALE = "stale"  # 401 stale=true: right password, expired or replayed nonce
    BUSY = "busy"  # 503: in a session
    RATE_LIMITED = "rate-limited"  # 503 with Retry-After
    NOT_FOUND = "not-found"  # 404: no device at that path
    METHOD_NOT_ALLOWED = "method-not-allowed"  # 405

    @property
    def opens_session(self) -> bool:
        return self is CrAnswer.ACCEPTED

    @property
    def refused(self) -> bool:
        """A refusal the ACS did not bring on itself by the protocol's first leg."""
        return self not in (CrAnswer.ACCEPTED, CrAnswer.MERGED, CrAnswer.CHALLENGED)


_UNAUTHENTICATED: Final = {
    Verdict.MISSING: CrAnswer.CHALLENGED,
    Verdict.MALFORMED: CrAnswer.MALFORMED,
    Verdict.BAD_CREDENTIALS: CrAnswer.BAD_CREDENTIALS,
    Verdict.STALE: CrAnswer.STALE,
}


@dataclass(frozen=True, slots=True)
class CrPolicy:
    busy: Busy = Busy.REFUSE
    rate_limit: float = DEFAULT_RATE_LIMIT  # least seconds between sessions it opens; 0: none


@dataclass(frozen=True, slots=True)
class CrRequest:
    method: str
    target: str  # the request target as sent, path and query: what Digest signs
    authorization: str | None


@dataclass(frozen=True, slots=True)
class DeviceFacts:
    """The device a request's path names, as it is at that moment."""

    serial: str
    username: str  # ManagementServer.ConnectionRequestUsername
    password: str  # ManagementServer.ConnectionRequestPassword
    in_session: bool
    sessions_started: int  # sessions opened so far; tells whether an asked-for one has begun


@dataclass(frozen=True, slots=True)
class CrDecision:
    answer: CrAnswer
    status: int
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def keep_alive(self) -> bool:
        """Only a challenge keeps the connection: its answer comes on it at once. Closing the
        others keeps a fleet's descriptors for devices, not for idle ACS connections."""
        return self.status == 401


@dataclass(slots=True)
class _Memory:
    accepted_at: float | None = None
    asked_before: int | None = None  # sessions_started when the last accepted request came
    counts: Counter[CrAnswer] | None = None


def default_digest() -> DigestServer:
    """MD5 (mandatory), MD5-sess (TR-069 asks CPEs to support it) and SHA-256 (RFC 7616)."""
    return DigestServer(
        REALM,
        algorithms=(Algorithm.SHA256, Algorithm.MD5, Algorithm.MD5_SESS),
        nonce_lifetime=NONCE_LIFETIME,
    )


class CrGate:
    """Decides connection requests for every device behind one listener."""

    def __init__(self, policy: CrPolicy | None = None, digest: DigestServer | None = None) -> None:
        self.policy = policy or CrPolicy()
        self._digest = digest or default_digest()
        self._devices: dict[str, _Memory] = {}
        self.totals: Counter[CrAnswer] = Counter()

    def decide(self, request: CrRequest, device: DeviceFacts | None, now: float) -> CrDecision:
        decision = self._decide(request, device, now)
        self.totals[decision.answer] += 1
        if device is not None:
            memory = self._memory(device.serial)
            if memory.counts is None:
                memory.counts = Counter()
            memory.counts[decision.answer] += 1
        return decision

    def counts(self, serial: str) -> Counter[CrAnswer]:
        """How the connection requests to device *serial* were answered."""
        memory = self._devices.get(serial)
        return Counter() if memory is None or memory.counts is None else Counter(memory.counts)

    def _memory(self, serial: str) -> _Memory:
        memory = self._devices.get(serial)
        if memory is None:
            memory = self._devices[serial] = _Memory()
        return memory

    def _decide(self, request: CrRequest, device: DeviceFacts | None, now: float) -> CrDecision:
        if device is None:
            return CrDecision(CrAnswer.NOT_FOUND, 404)
        if request.method != "GET":
            return CrDecision(CrAnswer.METHOD_NOT_ALLOWED, 405, (("Allow", "GET"),))
        verdict = self._digest.verify(
            request.authorization,
            method=request.method,
            uri=request.target,
            lookup=lambda user: device.password if user == device.username else None,
            now=now,
        ).verdict
        if verdict is not Verdict.OK:
            challenge = self._digest.challenge(now, stale=verdict is Verdict.STALE)
            headers = tuple(("WWW-Authenticate", value) for value in challenge)
            return CrDecision(_UNAUTHENTICATED[verdict], 401, headers)
        memory = self._memory(device.serial)
        if memory.asked_before == device.sessions_started:
            return CrDecision(CrAnswer.MERGED, 200)
        if device.in_session and self.policy.busy is Busy.REFUSE:
            return CrDecision(CrAnswer.BUSY, 503)
        if memory.accepted_at is not None and self.policy.rate_limit > 0:
            wait = memory.accepted_at + self.policy.rate_limit - now
            if wait > 0:
                retry_after = str(max(1, math.ceil(wait)))
                return CrDecision(CrAnswer.RATE_LIMITED, 503, (("Retry-After", retry_after),))
        memory.accepted_at = now
        memory.asked_before = device.sessions_started
        return CrDecision(CrAnswer.ACCEPTED, 200)
