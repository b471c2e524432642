"""What a simulated CPE answers to an HTTP connection request (TR-069 §3.2.2), sans-IO.

`CrGate.decide` takes the facts of one request, the facts of the device its path names (None
when no device has that path) and the time, and returns the status, headers and whether to open
a session. It counts every answer per device; whether an authenticated request opens a session
is `CrAdmission`'s, which the device's UDP and XMPP connection requests share. It owns no socket
and reads no clock; `cr_listener` is the aiohttp adapter around it.

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

from knock.auth import (
    Algorithm,
    AuthError,
    DigestServer,
    Verdict,
    parse_basic,
    parse_credentials,
)
from knock.cpe.cr_rate import Busy, CrAdmission, CrPolicy
from knock.cpe.cr_rate import Verdict as Admitted
from knock.cpe.defects import NONE, Defect, Defects

__all__ = ["Busy", "CrAdmission", "CrPolicy"]  # the policy is given where the gate is made

REALM: Final = "Knock CPE"
# A connection request answers its challenge within a round trip; a minute is generous.
NONCE_LIFETIME: Final = 60.0


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
    IGNORED = "ignored"  # 200 and no session ever: only a device with NO_503_WHEN_BUSY

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
    defects: Defects = NONE


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


def default_digest() -> DigestServer:
    """MD5 (mandatory), MD5-sess (TR-069 asks CPEs to support it) and SHA-256 (RFC 7616)."""
    return DigestServer(
        REALM,
        algorithms=(Algorithm.SHA256, Algorithm.MD5, Algorithm.MD5_SESS),
        nonce_lifetime=NONCE_LIFETIME,
    )


class CrGate:
    """Decides connection requests for every device behind one listener."""

    def __init__(
        self,
        policy: CrPolicy | None = None,
        digest: DigestServer | None = None,
        admission: CrAdmission | None = None,
    ) -> None:
        """*admission*: shared with the device's other connection-request methods; a new one
        with *policy* when not given."""
        self.admission = admission or CrAdmission(policy)
        self._digest = digest or default_digest()
        self._counts: dict[str, Counter[CrAnswer]] = {}
        self.totals: Counter[CrAnswer] = Counter()

    @property
    def policy(self) -> CrPolicy:
        return self.admission.policy

    def decide(self, request: CrRequest, device: DeviceFacts | None, now: float) -> CrDecision:
        decision = self._decide(request, device, now)
        self.totals[decision.answer] += 1
        if device is not None:
            self._counts.setdefault(device.serial, Counter())[decision.answer] += 1
        return decision

    def counts(self, serial: str) -> Counter[CrAnswer]:
        """How the connection requests to device *serial* were answered."""
        return Counter(self._counts.get(serial, ()))

    def _decide(self, request: CrRequest, device: DeviceFacts | None, now: float) -> CrDecision:
        if device is None:
            return CrDecision(CrAnswer.NOT_FOUND, 404)
        if request.method != "GET":
            return CrDecision(CrAnswer.METHOD_NOT_ALLOWED, 405, (("Allow", "GET"),))
        verdict = self._authenticate(request, device, now)
        if verdict is not Verdict.OK:
            challenge = self._digest.challenge(now, stale=verdict is Verdict.STALE)
            headers = tuple(("WWW-Authenticate", value) for value in challenge)
            return CrDecision(_UNAUTHENTICATED[verdict], 401, headers)
        if device.in_session and Defect.NO_503_WHEN_BUSY in device.defects:
            return CrDecision(CrAnswer.IGNORED, 200)
        admitted = self.admission.admit(device, now)
        if admitted.verdict is Admitted.MERGED:
            return CrDecision(CrAnswer.MERGED, 200)
        if admitted.verdict is Admitted.BUSY:
            return CrDecision(CrAnswer.BUSY, 503)
        if admitted.verdict is Admitted.RATE_LIMITED:
            retry_after = str(max(1, math.ceil(admitted.wait)))
            return CrDecision(CrAnswer.RATE_LIMITED, 503, (("Retry-After", retry_after),))
        return CrDecision(CrAnswer.ACCEPTED, 200)

    def _authenticate(self, request: CrRequest, device: DeviceFacts, now: float) -> Verdict:
        if Defect.ACCEPT_ANY_CR_AUTH in device.defects:
            return Verdict.OK
        if Defect.BASIC_ACCEPTED in device.defects and _basic_matches(request, device):
            return Verdict.OK
        return self._digest.verify(
            request.authorization,
            method=request.method,
            uri=request.target,
            lookup=lambda user: device.password if user == device.username else None,
            now=now,
        ).verdict


def _basic_matches(request: CrRequest, device: DeviceFacts) -> bool:
    try:
        parsed = parse_credentials(request.authorization or "")
        if parsed.scheme != "basic":
            return False
        credentials = parse_basic(parsed.token68)
    except AuthError:
        return False
    return (credentials.username, credentials.password) == (device.username, device.password)
