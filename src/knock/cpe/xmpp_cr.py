"""What a simulated CPE answers to an XMPP connection request (TR-069 Annex K), sans-IO.

`XmppCrGate.decide` takes the IQ as received and the device's facts, and returns how it was
taken, which says the stanza error to answer. The order: a sender ConnReqAllowedJabberIDs does
not allow gets service-unavailable whatever it sent (it learns nothing); then a payload that is
not a connection request gets service-unavailable and a malformed one bad-request; wrong
credentials get not-authorized; then the `CrAdmission` the device's other methods share may
refuse (service-unavailable). What remains is accepted: a result, then a session.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from lxml import etree

from knock.cpe.cr_rate import CrAdmission, Verdict
from knock.cpe.defects import NONE, Defect, Defects
from knock.xmpp.client import StanzaError
from knock.xmpp.jid import allowed_sender

CONN_REQ_NS: Final = "urn:broadband-forum-org:cwmp:xmppConnReq-1-0"
_REQUEST: Final = f"{{{CONN_REQ_NS}}}connectionRequest"
_FIELDS: Final = (f"{{{CONN_REQ_NS}}}username", f"{{{CONN_REQ_NS}}}password")


class XmppAnswer(StrEnum):
    """How an IQ was taken; the live view counts these."""

    ACCEPTED = "accepted"  # result, then a session
    MERGED = "merged"  # result; joins a session asked for and not yet begun
    BUSY = "busy"
    RATE_LIMITED = "rate-limited"
    FORBIDDEN_SENDER = "forbidden-sender"  # not in ConnReqAllowedJabberIDs
    UNSUPPORTED = "unsupported"  # an IQ that is no connection request
    MALFORMED = "malformed"
    BAD_CREDENTIALS = "bad-credentials"

    @property
    def opens_session(self) -> bool:
        return self is XmppAnswer.ACCEPTED

    @property
    def error(self) -> StanzaError | None:
        return _ERRORS.get(self)


_UNAVAILABLE: Final = StanzaError("cancel", "service-unavailable")
_ERRORS: Final = {
    XmppAnswer.BUSY: _UNAVAILABLE,
    XmppAnswer.RATE_LIMITED: _UNAVAILABLE,
    XmppAnswer.FORBIDDEN_SENDER: _UNAVAILABLE,
    XmppAnswer.UNSUPPORTED: _UNAVAILABLE,
    XmppAnswer.MALFORMED: StanzaError("modify", "bad-request"),
    XmppAnswer.BAD_CREDENTIALS: StanzaError("auth", "not-authorized"),
}
_ADMITTED: Final = {
    Verdict.ACCEPTED: XmppAnswer.ACCEPTED,
    Verdict.MERGED: XmppAnswer.MERGED,
    Verdict.BUSY: XmppAnswer.BUSY,
    Verdict.RATE_LIMITED: XmppAnswer.RATE_LIMITED,
}


@dataclass(frozen=True, slots=True)
class XmppDeviceFacts:
    serial: str
    username: str  # ManagementServer.ConnectionRequestUsername
    password: str
    allowed: str  # ManagementServer.ConnReqAllowedJabberIDs, comma-separated
    in_session: bool
    sessions_started: int
    defects: Defects = NONE


# What a device with the NOT_AUTORIZED_TYPO defect answers to wrong credentials, as some
# deployed CPEs do.
TYPO: Final = StanzaError("auth", "not-autorized")


@dataclass(frozen=True, slots=True)
class Reply:
    error: StanzaError | None  # None: a result


def reply(answer: XmppAnswer, defects: Defects = NONE) -> Reply | None:
    """What a device with *defects* answers for *answer*; None: nothing at all."""
    if answer is XmppAnswer.BAD_CREDENTIALS and Defect.NOT_AUTORIZED_TYPO in defects:
        return Reply(TYPO)
    if answer.error is None and Defect.XMPP_NO_RESULT in defects:
        return None
    return Reply(answer.error)


def sender_allowed(sender: str, allowed: str, *, by_prefix: bool = False) -> bool:
    """Annex K's rule (`knock.xmpp.jid.allowed_sender`), or prefix matching where *by_prefix*
    (the PREFIX_JID_MATCH defect) says to, as some deployed CPEs do."""
    if by_prefix:
        entries = [entry.strip() for entry in allowed.split(",") if entry.strip()]
        return not entries or any(sender.startswith(entry) for entry in entries)
    return allowed_sender(sender, allowed)


class XmppCrGate:
    """Decides the XMPP connection requests of every device of a worker."""

    def __init__(self, admission: CrAdmission) -> None:
        self.admission = admission
        self.totals: Counter[XmppAnswer] = Counter()

    def decide(self, iq: etree._Element, device: XmppDeviceFacts, now: float) -> XmppAnswer:
        answer = self._decide(iq, device, now)
        self.totals[answer] += 1
        return answer

    def _decide(self, iq: etree._Element, device: XmppDeviceFacts, now: float) -> XmppAnswer:
        by_prefix = Defect.PREFIX_JID_MATCH in device.defects
        if not sender_allowed(iq.get("from", ""), device.allowed, by_prefix=by_prefix):
            return XmppAnswer.FORBIDDEN_SENDER
        payload = iq[0]
        if payload.tag != _REQUEST:
            return XmppAnswer.UNSUPPORTED
        fields = [child for child in payload if isinstance(child.tag, str)]
        if iq.get("type") != "get" or [child.tag for child in fields] != list(_FIELDS):
            return XmppAnswer.MALFORMED
        username, password = (child.text or "" for child in fields)
        if len(fields[0]) or len(fields[1]):
            return XmppAnswer.MALFORMED
        if (username, password) != (device.username, device.password):
            return XmppAnswer.BAD_CREDENTIALS
        admitted = self.admission.admit(device, now)
        return _ADMITTED[admitted.verdict]
