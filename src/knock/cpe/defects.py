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


class Defect(StrEnum):
    # HTTP connection requests (TR-069 §3.2.2)
    ACCEPT_ANY_CR_AUTH = "accept-any-cr-auth"  # 200 and a session without valid Digest
    BASIC_ACCEPTED = "basic-accepted"  # right password sent with Basic opens a session
    NO_CR_EVENT = "no-cr-event"  # the session a request opens lacks 6 CONNECTION REQUEST
    NO_503_WHEN_BUSY = "no-503-when-busy"  # during a session: 200, and no session after it
    NO_RATE_LIMIT = "no-rate-limit"  # every authenticated request opens a session at once
    CR_URL_ANY_PATH = "cr-url-any-path"  # a path other than ConnectionRequestURL's is served
    HTTPS_CR_URL = "https-cr-url"  # ConnectionRequestURL reported with https (§3.2.2: http)
    # UDP connection requests (Annex G)
    UDP_REPLAY = "udp-replay"  # an id equal to the last accepted one is accepted
    UDP_BAD_SIG = "udp-bad-sig"  # sig not checked
    UDP_OLD_TS = "udp-old-ts"  # ts not newer than the last accepted one is accepted
    UDP_WRONG_USERNAME = "udp-wrong-username"  # un not compared with the CR username
    # STUN (TR-111 part 2, Annex G)
    NO_BINDING_CHANGE = "no-binding-change"  # a moved binding is not flagged BINDING-CHANGE
    STUN_NO_INTEGRITY = "stun-no-integrity"  # a 401 does not make requests carry INTEGRITY
    # XMPP connection requests (Annex K)
    PREFIX_JID_MATCH = "prefix-jid-match"  # ConnReqAllowedJabberIDs matched by prefix
    NOT_AUTORIZED_TYPO = "not-autorized-typo"  # wrong credentials answered `not-autorized`
    XMPP_NO_RESULT = "xmpp-no-result"  # an accepted IQ opens a session but gets no result
    # Active notification (TR-069 §3.2.1, TR-111, Annex K)
    NO_ACTIVE_NOTIFY_JID = "no-active-notify-jid"  # ConnReqJabberID changes wait for a session
    NO_ACTIVE_NOTIFY_UDP_ADDRESS = "no-active-notify-udp-address"  # UDPConnectionRequestAddress


Defects = frozenset[Defect]
NONE: Final[Defects] = frozenset()

# The ManagementServer parameter whose active notification each defect silences.
SILENCED: Final = {
    Defect.NO_ACTIVE_NOTIFY_JID: "ConnReqJabberID",
    Defect.NO_ACTIVE_NOTIFY_UDP_ADDRESS: "UDPConnectionRequestAddress",
}


class DefectError(ValueError):
    """An unknown defect name; the message lists the known ones."""


def parse_defects(names: Iterable[str]) -> Defects:
    """The defects *names* name (each once or more, any letter case); raises `DefectError`."""
    found: set[Defect] = set()
    for name in names:
        try:
            found.add(Defect(name.strip().lower()))
        except ValueError:
            known = ", ".join(defect.value for defect in Defect)
            raise DefectError(f"{name!r} is not a defect; name one of {known}") from None
    return frozenset(found)
