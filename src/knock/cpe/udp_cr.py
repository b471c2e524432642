"""What a simulated CPE does with a UDP connection request (TR-069 Annex G), sans-IO.

`UdpCrGate.decide` checks a datagram with `verify_udp_cr` against the device's credentials and
the ts and id of the last request it accepted, then asks the shared `CrAdmission` whether a
session may open. Nothing is ever answered. The caller records the new ts and id whenever the
signature held, even when the admission refused the session: the ACS repeats every datagram, and
its copies must be dropped as replays, not counted as refusals.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from enum import StrEnum

from knock.connreq.udp import Reason, UdpCr, UdpCrRejected, verify_udp_cr
from knock.cpe.cr_rate import CrAdmission, Verdict
from knock.cpe.defects import NONE, Defect, Defects


class UdpAnswer(StrEnum):
    """How a datagram was taken; the live view counts these."""

    ACCEPTED = "accepted"  # a session opens
    MERGED = "merged"  # joins a session asked for and not yet begun
    BUSY = "busy"
    RATE_LIMITED = "rate-limited"
    MALFORMED = "malformed"
    BAD_SIGNATURE = "bad-signature"
    WRONG_USERNAME = "wrong-username"
    OLD_TIMESTAMP = "old-timestamp"  # a replay, or the ACS's repeated copies
    REPEATED_ID = "repeated-id"

    @property
    def opens_session(self) -> bool:
        return self is UdpAnswer.ACCEPTED


@dataclass(frozen=True, slots=True)
class UdpDeviceFacts:
    serial: str
    username: str  # ManagementServer.ConnectionRequestUsername
    password: str
    last: tuple[int, int] | None  # ts and id of the last accepted request
    in_session: bool
    sessions_started: int
    defects: Defects = NONE


@dataclass(frozen=True, slots=True)
class UdpDecision:
    answer: UdpAnswer
    request: UdpCr | None = None  # set when the signature held: record its ts and id


class UdpCrGate:
    """Decides the UDP connection requests of every device of a worker."""

    def __init__(self, admission: CrAdmission) -> None:
        self.admission = admission
        self.totals: Counter[UdpAnswer] = Counter()

    def decide(self, datagram: bytes, device: UdpDeviceFacts, now: float) -> UdpDecision:
        decision = self._decide(datagram, device, now)
        self.totals[decision.answer] += 1
        return decision

    def _decide(self, datagram: bytes, device: UdpDeviceFacts, now: float) -> UdpDecision:
        last_ts, last_id = device.last or (None, None)
        try:
            request = verify_udp_cr(
                datagram,
                device.username,
                device.password,
                last_ts,
                last_id,
                skip=frozenset(_SKIPPED[d] for d in device.defects if d in _SKIPPED),
            )
        except UdpCrRejected as exc:
            return UdpDecision(UdpAnswer(exc.reason.value))
        admitted = self.admission.admit(device, now)
        return UdpDecision(_ANSWERS[admitted.verdict], request)


# The Annex G rule each defect leaves out.
_SKIPPED = {
    Defect.UDP_REPLAY: Reason.REPEATED_ID,
    Defect.UDP_BAD_SIG: Reason.BAD_SIGNATURE,
    Defect.UDP_OLD_TS: Reason.OLD_TIMESTAMP,
    Defect.UDP_WRONG_USERNAME: Reason.WRONG_USERNAME,
}
_ANSWERS = {
    Verdict.ACCEPTED: UdpAnswer.ACCEPTED,
    Verdict.MERGED: UdpAnswer.MERGED,
    Verdict.BUSY: UdpAnswer.BUSY,
    Verdict.RATE_LIMITED: UdpAnswer.RATE_LIMITED,
}
