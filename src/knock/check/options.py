"""What a test lab varies between runs of `knock check`."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ConnectAlgorithm(StrEnum):
    """XMPP.Connection.{i}.ServerConnectAlgorithm (TR-181)."""

    DNS_SRV = "DNS-SRV"
    DNS = "DNS"
    SERVER_TABLE = "ServerTable"


@dataclass(frozen=True, slots=True)
class CheckOptions:
    inform_within: float = 30.0  # TR-069 §3.2.2: the session follows a CR within 30 s
    quiet_for: float = 10.0  # how long "no session" is watched for
    case_timeout: float = 120.0  # a case still running after this fails
    device_within: float = 300.0  # how long to wait for the device's first Inform
    rate_gap: float = 5.0  # least seconds from a session's start to a request that should pass
    xmpp_tls: bool = True  # the device's XMPP connection uses TLS (UseTLS); off: lab plaintext
    xmpp_connect: ConnectAlgorithm = ConnectAlgorithm.SERVER_TABLE
    stun_auth: bool = True  # the STUN server asks for MESSAGE-INTEGRITY (401 first)
    udp_delay: float = 0.0  # seconds between the STUN binding and the first UDP CR
    cr_attempts: int = 3  # copies of a UDP CR / tries of a CR before it counts as lost
    cr_interval: float = 1.0  # seconds between those attempts
    schedule_delay: int = 5  # DelaySeconds the ScheduleInform cases ask for
    periodic_interval: int = 10  # PeriodicInformInterval session.periodic-inform sets
    retry_wait: int = 0  # CWMPRetryMinimumWaitInterval session.retry-backoff sets; 0: the device's
    download_file: str = ""  # what the Download cases fetch; "": RANDOM_SIZE random bytes
    download_type: str = "2 Web Content"  # its FileType: no firmware, no configuration
    # What rpc.*.active-notify sets active notification on: a parameter that changes on its own,
    # relative to the data model's root (or a full name).
    notify_parameter: str = "DeviceInfo.UpTime"
