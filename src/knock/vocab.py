"""The one vocabulary shared by the ACS, the simulator, the checker, the NBI and the dashboard."""

from __future__ import annotations

from enum import StrEnum


class CrMethod(StrEnum):
    """Ways to make a device open a session now."""

    HTTP = "http"
    UDP = "udp"
    XMPP = "xmpp"


class CrOutcome(StrEnum):
    """How a connection-request attempt ended."""

    DELIVERED = "delivered"
    UNREACHABLE = "unreachable"
    REFUSED = "refused"
    BAD_CREDENTIALS = "bad-credentials"
    RATE_LIMITED = "rate-limited"
    TIMEOUT = "timeout"
    NO_SESSION = "no-session"


class StunOutcome(StrEnum):
    """How the STUN server answered a device's signed Binding Request (TR-111)."""

    OK = "ok"  # authenticated: its binding is known, UDP connection requests can reach it
    UNKNOWN_USERNAME = "unknown-username"  # 401: no STUN password known for its USERNAME
    BAD_INTEGRITY = "bad-integrity"  # 401: MESSAGE-INTEGRITY does not match the password


class XmppSetup(StrEnum):
    """How provisioning a device for XMPP connection requests (Annex K) ended."""

    OK = "ok"
    FAILED = "failed"  # the device faulted an AddObject or SetParameterValues; rows undone


class TaskStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAULTED = "faulted"
    # Its session died after its RPC went out, and the task is one Knock does not send again
    # unasked (NOT_RESENT): whether the device ran it, only the device can tell.
    UNKNOWN = "unknown"


# Tasks whose RPC changes the device anew each time it runs (a second AddObject adds a second
# instance, a second Download installs again). TR-069 gives the ACS no way to ask whether an RPC
# whose response was lost ran, so when the session dies with one of these running it ends
# `unknown` instead of being retried. The others (Get*, SetParameterValues) leave the device as
# one run would, and are retried (knock.store.retry decides both).
NOT_RESENT = frozenset(
    {"addObject", "deleteObject", "reboot", "factoryReset", "download", "upload"}
)


class Lack(StrEnum):
    """What a device was found unable to do, remembered so that later sessions do not try it
    again (the standard allows each, and deployed stacks take the freedom)."""

    # GetParameterValues of a partial path ("Device.ManagementServer."): the device faulted or
    # dropped the connection; Knock reads leaf names instead.
    PARTIAL_PATH_VALUES = "partial-path-values"
    # GetParameterNames of one: Knock falls back to the names the data model defines.
    PARTIAL_PATH_NAMES = "partial-path-names"


class Event(StrEnum):
    """Inform event codes (TR-069 §3.7.1.5)."""

    BOOTSTRAP = "0 BOOTSTRAP"
    BOOT = "1 BOOT"
    PERIODIC = "2 PERIODIC"
    SCHEDULED = "3 SCHEDULED"
    VALUE_CHANGE = "4 VALUE CHANGE"
    KICKED = "5 KICKED"
    CONNECTION_REQUEST = "6 CONNECTION REQUEST"
    TRANSFER_COMPLETE = "7 TRANSFER COMPLETE"
    DIAGNOSTICS_COMPLETE = "8 DIAGNOSTICS COMPLETE"
    REQUEST_DOWNLOAD = "9 REQUEST DOWNLOAD"
    AUTONOMOUS_TRANSFER_COMPLETE = "10 AUTONOMOUS TRANSFER COMPLETE"
    DU_STATE_CHANGE_COMPLETE = "11 DU STATE CHANGE COMPLETE"
    AUTONOMOUS_DU_STATE_CHANGE_COMPLETE = "12 AUTONOMOUS DU STATE CHANGE COMPLETE"
    WAKEUP = "13 WAKEUP"
    M_REBOOT = "M Reboot"
    M_DOWNLOAD = "M Download"
    M_SCHEDULE_INFORM = "M ScheduleInform"
