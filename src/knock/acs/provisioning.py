"""What Knock sets on a device so that connection requests work with no hand configuration.

Pure: the service starts a `Provisioning` at the beginning of the ACS's turn when it holds no
connection-request credentials for the device. It first reads the device's ManagementServer object
(to learn, for one, whether the device does STUN), then sets the connection-request credentials
and, for a STUN-capable device, TR-111's STUN parameters; the service stores the credentials once
the device accepted them.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from knock.cwmp.rpcs import (
    GetParameterValues,
    GetParameterValuesResponse,
    ParameterValueStruct,
    Rpc,
    SetParameterValues,
    SetParameterValuesResponse,
)
from knock.store.rows import ParamValue


class CrPolicy(StrEnum):
    RANDOM = "random"  # a fresh random username and password per device (the default)
    FIXED = "fixed"  # the configured pair, on every device
    OFF = "off"  # leave devices as they are; connection requests use the configured pair


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str
    password: str

    def __repr__(self) -> str:  # secrets never reach a log through a repr
        return f"Credentials(username={self.username!r}, password=<hidden>)"


@dataclass(frozen=True, slots=True)
class StunOffer:
    """The STUN server a STUN-capable device is told to keep its NAT binding open with."""

    server_address: str
    server_port: int
    min_keepalive: int = 20  # seconds; NAT UDP bindings often expire after 30 s
    max_keepalive: int = 60


@dataclass(frozen=True, slots=True)
class Provisioned:
    """What the device accepted (None: not set), and the ManagementServer values it reported."""

    cr: Credentials | None
    stun: Credentials | None
    seen: list[ParamValue] = field(default_factory=list)


def random_credentials() -> Credentials:
    return Credentials("knock-" + secrets.token_hex(6), secrets.token_urlsafe(24))


def data_model_root(parameter_names: list[str]) -> str:
    """ "InternetGatewayDevice." for TR-098 devices, "Device." for TR-181 ones."""
    if any(name.startswith("InternetGatewayDevice.") for name in parameter_names):
        return "InternetGatewayDevice."
    return "Device."


class Provisioning:
    def __init__(
        self,
        root: str,
        cr: Credentials,
        stun: StunOffer | None,
        new_credentials: Callable[[], Credentials] = random_credentials,
    ) -> None:
        self._prefix = f"{root}ManagementServer."
        self._cr = cr
        self._stun_offer = stun
        self._new_credentials = new_credentials
        self._stun: Credentials | None = None
        self._seen: list[ParamValue] = []
        self._set_sent = False

    def first(self) -> Rpc:
        return GetParameterValues([self._prefix])

    def on_response(self, rpc: Rpc) -> Rpc | Provisioned:
        """The next RPC, or what the device accepted (nothing, if it refused the values). A fault
        to the read (no partial paths) only means Knock sets less."""
        if not self._set_sent:
            reported = rpc.parameter_list if isinstance(rpc, GetParameterValuesResponse) else []
            self._seen = [ParamValue(p.name, p.value, p.type) for p in reported]
            return self._set({p.name for p in reported})
        if isinstance(rpc, SetParameterValuesResponse):
            return Provisioned(self._cr, self._stun, self._seen)
        return Provisioned(None, None, self._seen)

    def _set(self, names: set[str]) -> SetParameterValues:
        self._set_sent = True
        values = [
            ParameterValueStruct(f"{self._prefix}ConnectionRequestUsername", self._cr.username),
            ParameterValueStruct(f"{self._prefix}ConnectionRequestPassword", self._cr.password),
        ]
        offer = self._stun_offer
        if offer is not None and f"{self._prefix}STUNEnable" in names:
            self._stun = self._new_credentials()
            values += [
                ParameterValueStruct(f"{self._prefix}STUNEnable", "1", "xsd:boolean"),
                ParameterValueStruct(f"{self._prefix}STUNServerAddress", offer.server_address),
                ParameterValueStruct(
                    f"{self._prefix}STUNServerPort", str(offer.server_port), "xsd:unsignedInt"
                ),
                ParameterValueStruct(f"{self._prefix}STUNUsername", self._stun.username),
                ParameterValueStruct(f"{self._prefix}STUNPassword", self._stun.password),
                ParameterValueStruct(
                    f"{self._prefix}STUNMinimumKeepAlivePeriod",
                    str(offer.min_keepalive),
                    "xsd:unsignedInt",
                ),
                ParameterValueStruct(
                    f"{self._prefix}STUNMaximumKeepAlivePeriod",
                    str(offer.max_keepalive),
                    "xsd:int",
                ),
            ]
        return SetParameterValues(values, parameter_key="")


def provisioning_for(
    policy: CrPolicy,
    root: str,
    fixed: Credentials,
    stun: StunOffer | None,
    new_credentials: Callable[[], Credentials] = random_credentials,
) -> Provisioning | None:
    """The provisioning a device without Knock's credentials gets, or None to leave it alone."""
    if policy is CrPolicy.OFF:
        return None
    cr = fixed if policy is CrPolicy.FIXED else new_credentials()
    return Provisioning(root, cr, stun, new_credentials)
