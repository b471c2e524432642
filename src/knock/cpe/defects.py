"""Defects on demand: switches that make a simulated CPE break one connection-request
requirement each, so `knock check` can be shown to catch it (`knock sim --defect NAME`).

A device carries its set in `SimulatedCpe.defects`; the cores that own a behaviour read it from
the facts they are given (`cr_http`, `udp_cr`, `xmpp_cr`, `cr_rate`, `stun_agent`) or from the
device (`device`, `cr_listener`, `xmpp_agent`). A correct device has the empty set.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Final

from knock.cpe.switches import parse_switches


class Defect(StrEnum):
    ACCEPT_ANY_CR_AUTH = "accept-any-cr-auth"
    BASIC_ACCEPTED = "basic-accepted"
    NO_CR_EVENT = "no-cr-event"
    NO_503_WHEN_BUSY = "no-503-when-busy"
    NO_RATE_LIMIT = "no-rate-limit"
    CR_URL_ANY_PATH = "cr-url-any-path"
    HTTPS_CR_URL = "https-cr-url"
    UDP_REPLAY = "udp-replay"
    UDP_BAD_SIG = "udp-bad-sig"
    UDP_OLD_TS = "udp-old-ts"
    UDP_WRONG_USERNAME = "udp-wrong-username"
    NO_BINDING_CHANGE = "no-binding-change"
    STUN_NO_INTEGRITY = "stun-no-integrity"
    PREFIX_JID_MATCH = "prefix-jid-match"
    NOT_AUTORIZED_TYPO = "not-autorized-typo"
    XMPP_NO_RESULT = "xmpp-no-result"
    NO_ACTIVE_NOTIFY_JID = "no-active-notify-jid"
    NO_ACTIVE_NOTIFY_UDP_ADDRESS = "no-active-notify-udp-address"
    NO_CERT_CHECK = "no-cert-check"
    INVALID_NAME_9002 = "invalid-name-9002"
    SPV_NOT_ATOMIC = "spv-not-atomic"
    NO_PASSIVE_NOTIFY = "no-passive-notify"
    NO_ACTIVE_NOTIFY = "no-active-notify"
    COMMAND_KEY_DROPPED = "command-key-dropped"
    RETRY_COUNT_STUCK = "retry-count-stuck"
    PERIODIC_INTERVAL_IGNORED = "periodic-interval-ignored"
    MAX_ENVELOPES_0 = "max-envelopes-0"
    WRONG_TYPE_9007 = "wrong-type-9007"
    EMPTY_POST_ENVELOPE = "empty-post-envelope"
    CWMP_ID_NOT_ECHOED = "cwmp-id-not-echoed"
    COOKIE_DROPPED = "cookie-dropped"
    RETRY_AT_ONCE = "retry-at-once"
    TRANSFER_FAULT_DROPPED = "transfer-fault-dropped"
    UPLOAD_NOT_SENT = "upload-not-sent"
    HOLD_REQUESTS_IGNORED = "hold-requests-ignored"
    FACTORY_RESET_NO_BOOTSTRAP = "factory-reset-no-bootstrap"

    @property
    def breaks(self) -> str:
        """The requirement a device with this defect breaks, and how, in one line."""
        return BREAKS[self]


BREAKS: Final = {
    Defect.ACCEPT_ANY_CR_AUTH: (
        "§3.2.2: no HTTP CR is ever challenged: without credentials, with wrong ones or with "
        "Basic, it gets 200 and a session"
    ),
    Defect.BASIC_ACCEPTED: "§3.2.2: the CR password sent with Basic gets 200 and a session",
    Defect.NO_CR_EVENT: "§3.2.2: the session a CR opens lacks 6 CONNECTION REQUEST",
    Defect.NO_503_WHEN_BUSY: "§3.2.2: a CR during a session gets 200 and no session after it",
    Defect.NO_RATE_LIMIT: "§3.2.2: every authenticated CR opens a session at once",
    Defect.CR_URL_ANY_PATH: "§3.2.2: a path other than ConnectionRequestURL's is served",
    Defect.HTTPS_CR_URL: "§3.2.2: ConnectionRequestURL is reported with https, not http",
    Defect.UDP_REPLAY: "Annex G: a UDP CR with the last accepted id is accepted",
    Defect.UDP_BAD_SIG: "Annex G: the sig of a UDP CR is not checked",
    Defect.UDP_OLD_TS: "Annex G: a UDP CR with a ts not newer than the last is accepted",
    Defect.UDP_WRONG_USERNAME: "Annex G: the un of a UDP CR is not compared with the username",
    Defect.NO_BINDING_CHANGE: "TR-111: a moved STUN mapping is not flagged BINDING-CHANGE",
    Defect.STUN_NO_INTEGRITY: "TR-111: a 401 does not make Binding Requests carry INTEGRITY",
    Defect.PREFIX_JID_MATCH: "Annex K: ConnReqAllowedJabberIDs match by prefix",
    Defect.NOT_AUTORIZED_TYPO: "Annex K: wrong credentials are answered not-autorized",
    Defect.XMPP_NO_RESULT: "Annex K: an accepted IQ opens a session but gets no result",
    Defect.NO_ACTIVE_NOTIFY_JID: "Annex K: a new ConnReqJabberID waits for the next session",
    Defect.NO_ACTIVE_NOTIFY_UDP_ADDRESS: (
        "TR-111: a new UDPConnectionRequestAddress waits for the next session"
    ),
    Defect.NO_CERT_CHECK: (
        "RFC 6120 §13.7.2: any certificate of the XMPP server (and the ACS) is accepted, "
        "whoever signed it and whatever it names"
    ),
    Defect.INVALID_NAME_9002: (
        "Annex A.3.2: GetParameterNames/Values of a name the device lacks fault 9002, not 9005"
    ),
    Defect.SPV_NOT_ATOMIC: (
        "Annex A.3.2.1: a SetParameterValues with one bad value faults but applies the others"
    ),
    Defect.NO_PASSIVE_NOTIFY: (
        "Annex A.3.2.4, §3.7.1.5: a change of a passively notified parameter is never informed"
    ),
    Defect.NO_ACTIVE_NOTIFY: (
        "Annex A.3.2.4, §3.7.1.5: a change of a parameter the ACS set active notification on "
        "opens no session (4 VALUE CHANGE) but waits for the next one"
    ),
    Defect.COMMAND_KEY_DROPPED: (
        "Annex A.3.2.9, A.4.1.2: M Reboot and M ScheduleInform carry an empty CommandKey"
    ),
    Defect.RETRY_COUNT_STUCK: (
        "Annex A.3.3.1: the Inform's RetryCount is 1 after a session that succeeded, not 0"
    ),
    Defect.PERIODIC_INTERVAL_IGNORED: (
        "§3.7.1.5 (2 PERIODIC): periodic Informs keep the PeriodicInformInterval the device "
        "booted with; a new one waits for a reboot"
    ),
    Defect.MAX_ENVELOPES_0: "Annex A.3.3.1: the Inform's MaxEnvelopes is 0, not 1",
    Defect.WRONG_TYPE_9007: (
        "Annex A.3.2.1, A.5.1: SetParameterValues of a value of another type faults 9007, not 9006"
    ),
    Defect.EMPTY_POST_ENVELOPE: (
        "§3.7.1: the CPE ends its turn with an envelope whose SOAP Body is empty, not an empty "
        "HTTP POST"
    ),
    Defect.CWMP_ID_NOT_ECHOED: (
        "§3.5: responses carry a cwmp:ID of the CPE's own, not that of the ACS's request"
    ),
    Defect.COOKIE_DROPPED: "§3.4.2: the ACS's session cookie is not returned on later POSTs",
    Defect.RETRY_AT_ONCE: (
        "§3.2.1.1: a failed session is retried at once, not after the wait "
        "CWMPRetryMinimumWaitInterval and CWMPRetryIntervalMultiplier give"
    ),
    Defect.TRANSFER_FAULT_DROPPED: (
        "Annex A.3.3.2: the TransferComplete of a transfer that failed says FaultCode 0"
    ),
    Defect.UPLOAD_NOT_SENT: (
        "Annex A.4.1.5: TransferComplete reports an Upload done without sending the file"
    ),
    Defect.HOLD_REQUESTS_IGNORED: (
        "§3.5 (cwmp:HoldRequests): a pending TransferComplete is sent while the ACS holds"
    ),
    Defect.FACTORY_RESET_NO_BOOTSTRAP: (
        "Annex A.4.1.6, §3.7.1.5: FactoryReset only reboots: settings kept, 1 BOOT without "
        "0 BOOTSTRAP"
    ),
}


Defects = frozenset[Defect]
NONE: Final[Defects] = frozenset()

# The ManagementServer parameter whose active notification each defect silences.
SILENCED: Final = {
    Defect.NO_ACTIVE_NOTIFY_JID: "ConnReqJabberID",
    Defect.NO_ACTIVE_NOTIFY_UDP_ADDRESS: "UDPConnectionRequestAddress",
}


def parse_defects(names: Iterable[str]) -> Defects:
    """The defects *names* name (each once or more, any letter case); raises `SwitchError`."""
    return parse_switches(Defect, names, "defect")
