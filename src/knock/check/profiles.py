"""The parameters of the connection-request profiles and the access each requires.

Paths are relative to the data model's root (Device. or InternetGatewayDevice.); `{i}` stands
for any instance number. The lists follow ../shared/PROTOCOLS.md §4-5 (TR-181 2.19 and TR-098
1.8): W means the profile requires write access, R read access (writable is allowed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final


class Access(StrEnum):
    READ = "R"
    WRITE = "W"


@dataclass(frozen=True, slots=True)
class Required:
    path: str
    access: Access

    def pattern(self, root: str) -> re.Pattern[str]:
        parts = (re.escape(p) for p in (root + self.path).split("{i}"))
        return re.compile(r"[1-9][0-9]*".join(parts) + r"\Z")


R, W = Access.READ, Access.WRITE
_CONNECTION = "XMPP.Connection.{i}."
_SERVER = _CONNECTION + "Server.{i}."

PROFILES: Final[dict[str, tuple[Required, ...]]] = {
    "XMPPBasic:1": (
        Required("XMPP.ConnectionNumberOfEntries", R),
        *(
            Required(_CONNECTION + leaf, W)
            for leaf in (
                "Enable",
                "Username",
                "Password",
                "Domain",
                "Resource",
                "ServerConnectAlgorithm",
                "KeepAliveInterval",
                "ServerConnectAttempts",
                "ServerRetryInitialInterval",
                "ServerRetryIntervalMultiplier",
                "ServerRetryMaxInterval",
                "UseTLS",
            )
        ),
        *(
            Required(_CONNECTION + leaf, R)
            for leaf in ("JabberID", "Status", "LastChangeDate", "TLSEstablished")
        ),
        *(
            Required(_SERVER + leaf, W)
            for leaf in ("Enable", "Priority", "Weight", "ServerAddress", "Port")
        ),
    ),
    "XMPPConnReq:1": (
        Required("ManagementServer.ConnReqXMPPConnection", W),
        Required("ManagementServer.ConnReqAllowedJabberIDs", W),
        Required("ManagementServer.ConnReqJabberID", R),
        Required("ManagementServer.SupportedConnReqMethods", R),
    ),
    "UDPConnReq:1": (
        Required("ManagementServer.UDPConnectionRequestAddress", R),
        *(
            Required("ManagementServer." + leaf, W)
            for leaf in (
                "STUNEnable",
                "STUNServerAddress",
                "STUNServerPort",
                "STUNUsername",
                "STUNPassword",
                "STUNMaximumKeepAlivePeriod",
                "STUNMinimumKeepAlivePeriod",
            )
        ),
        Required("ManagementServer.NATDetected", R),
    ),
}


def shortfalls(profile: str, root: str, names: dict[str, bool]) -> tuple[list[str], list[str]]:
    """(missing, not writable): the profile's parameters absent from *names* (full name ->
    writable, as GetParameterNames reported them), and its W parameters reported read-only."""
    missing, read_only = [], []
    for required in PROFILES[profile]:
        pattern = required.pattern(root)
        found = [writable for name, writable in names.items() if pattern.match(name)]
        if not found:
            missing.append(root + required.path)
        elif required.access is Access.WRITE and not all(found):
            read_only.append(root + required.path)
    return missing, read_only
