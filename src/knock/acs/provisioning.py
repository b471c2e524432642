"""What Knock sets on a device so that connection requests work with no hand configuration.

Pure: the service starts a `Provisioning` at the beginning of the ACS's turn when it holds no
connection-request credentials for the device. It first reads the device's ManagementServer object
(to learn, for one, whether the device does STUN), then sets the connection-request credentials
and, for a STUN-capable device, TR-111's STUN parameters, and for an XMPP-capable one either an
account on Knock's own XMPP server or, with an external server whose accounts are configured out
of band, only the ACS's JID in ConnReqAllowedJabberIDs; the service stores the credentials once
the device accepted them.
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from knock.cwmp.rpcs import (
    AddObject,
    AddObjectResponse,
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
class XmppAccountOffer:
    """Knock's own XMPP server, on which the ACS creates each device's account and which the
    device with `Device.XMPP.` is told to keep a connection to."""

    domain: str
    server_address: str
    port: int
    use_tls: bool
    resource: str = "cwmp"


@dataclass(frozen=True, slots=True)
class XmppOffer:
    """What an XMPP-capable device is told (Annex K)."""

    acs_jid: str  # the one JID the device accepts connection requests from
    # None: an external server (Prosody, ejabberd) the ACS cannot create accounts on. Devices
    # hold accounts configured out of band; the ACS only allows its JID and uses the
    # ConnReqJabberID they report.
    account: XmppAccountOffer | None = None


@dataclass(frozen=True, slots=True)
class Provisioned:
    """What the device accepted (None: not set), and the ManagementServer values it reported."""

    cr: Credentials | None
    stun: Credentials | None
    seen: list[ParamValue] = field(default_factory=list)
    xmpp: Credentials | None = None  # the device's XMPP account, to create on Knock's server


def random_credentials() -> Credentials:
    # 20 characters: a multiple of 4, so a STUN client puts the username in its USERNAME
    # attribute unpadded, and no padding byte (RFC 3489 names none) can garble it.
    return Credentials("knock-" + secrets.token_hex(7), secrets.token_urlsafe(24))


def data_model_root(parameter_names: list[str]) -> str:
    """ "InternetGatewayDevice." for TR-098 devices, "Device." for TR-181 ones."""
    if any(name.startswith("InternetGatewayDevice.") for name in parameter_names):
        return "InternetGatewayDevice."
    return "Device."


class _Phase(enum.Enum):
    READ = "read"  # the device's ManagementServer object
    ADD_CONNECTION = "add-connection"  # an XMPP.Connection row for Knock's server
    ADD_SERVER = "add-server"  # its Server row
    FIND_CONNECTION = "find-connection"  # the row an operator set up, for ConnReqXMPPConnection
    SET = "set"


class Provisioning:
    def __init__(
        self,
        root: str,
        cr: Credentials,
        stun: StunOffer | None,
        xmpp: XmppOffer | None,
        new_credentials: Callable[[], Credentials] = random_credentials,
    ) -> None:
        self._root = root
        self._prefix = f"{root}ManagementServer."
        self._cr = cr
        self._stun_offer = stun
        self._xmpp_offer = xmpp
        self._new_credentials = new_credentials
        self._phase = _Phase.READ
        self._names: set[str] = set()
        self._seen: list[ParamValue] = []
        self._connection = ""  # "Device.XMPP.Connection.3." once the device added it
        self._server = ""
        self._stun: Credentials | None = None
        self._xmpp: Credentials | None = None

    def first(self) -> Rpc:
        return GetParameterValues([self._prefix])

    def on_response(self, rpc: Rpc) -> Rpc | Provisioned:
        """The next RPC, or what the device accepted (nothing, if it refused the values). A fault
        to the read (no partial paths) or to adding XMPP rows only means Knock sets less."""
        if self._phase is _Phase.READ:
            reported = rpc.parameter_list if isinstance(rpc, GetParameterValuesResponse) else []
            self._seen = [ParamValue(p.name, p.value, p.type) for p in reported]
            self._names = {p.name for p in reported}
            reference = {p.name: p.value for p in reported}.get(
                f"{self._prefix}ConnReqXMPPConnection"
            )
            if self._xmpp_offer is None or reference is None:
                return self._set()
            if self._xmpp_offer.account is not None:
                self._phase = _Phase.ADD_CONNECTION
                return AddObject(f"{self._root}XMPP.Connection.")
            if not reference:
                self._phase = _Phase.FIND_CONNECTION
                return GetParameterValues([f"{self._root}XMPP.Connection."])
            return self._set()
        if self._phase is _Phase.FIND_CONNECTION:
            rows = rpc.parameter_list if isinstance(rpc, GetParameterValuesResponse) else []
            self._connection = _first_enabled_row(f"{self._root}XMPP.Connection.", rows)
            return self._set()
        if self._phase is _Phase.ADD_CONNECTION:
            if not isinstance(rpc, AddObjectResponse):
                return self._set()
            self._connection = f"{self._root}XMPP.Connection.{rpc.instance_number}."
            self._phase = _Phase.ADD_SERVER
            return AddObject(f"{self._connection}Server.")
        if self._phase is _Phase.ADD_SERVER:
            if isinstance(rpc, AddObjectResponse):
                self._server = f"{self._connection}Server.{rpc.instance_number}."
            return self._set()
        if isinstance(rpc, SetParameterValuesResponse):
            return Provisioned(self._cr, self._stun, self._seen, self._xmpp)
        return Provisioned(None, None, self._seen)

    def _set(self) -> SetParameterValues:
        self._phase = _Phase.SET
        ms = self._prefix
        values = [
            ParameterValueStruct(f"{ms}ConnectionRequestUsername", self._cr.username),
            ParameterValueStruct(f"{ms}ConnectionRequestPassword", self._cr.password),
        ]
        stun = self._stun_offer
        if stun is not None and f"{ms}STUNEnable" in self._names:
            self._stun = self._new_credentials()
            values += [
                _boolean(f"{ms}STUNEnable", True),
                ParameterValueStruct(f"{ms}STUNServerAddress", stun.server_address),
                _unsigned(f"{ms}STUNServerPort", stun.server_port),
                ParameterValueStruct(f"{ms}STUNUsername", self._stun.username),
                ParameterValueStruct(f"{ms}STUNPassword", self._stun.password),
                _unsigned(f"{ms}STUNMinimumKeepAlivePeriod", stun.min_keepalive),
                ParameterValueStruct(
                    f"{ms}STUNMaximumKeepAlivePeriod", str(stun.max_keepalive), "xsd:int"
                ),
            ]
        xmpp = self._xmpp_offer
        account = None if xmpp is None else xmpp.account
        if xmpp is not None and account is not None and self._server:
            self._xmpp = self._new_credentials()
            conn, server = self._connection, self._server
            values += [
                _boolean(f"{conn}Enable", True),
                ParameterValueStruct(f"{conn}Username", self._xmpp.username),
                ParameterValueStruct(f"{conn}Password", self._xmpp.password),
                ParameterValueStruct(f"{conn}Domain", account.domain),
                ParameterValueStruct(f"{conn}Resource", account.resource),
                _boolean(f"{conn}UseTLS", account.use_tls),
                ParameterValueStruct(f"{conn}ServerConnectAlgorithm", "ServerTable"),
                _boolean(f"{server}Enable", True),
                ParameterValueStruct(f"{server}ServerAddress", account.server_address),
                _unsigned(f"{server}Port", account.port),
                ParameterValueStruct(f"{ms}ConnReqXMPPConnection", conn.removesuffix(".")),
                ParameterValueStruct(f"{ms}ConnReqAllowedJabberIDs", xmpp.acs_jid),
            ]
        elif xmpp is not None and account is None and f"{ms}ConnReqAllowedJabberIDs" in self._names:
            if self._connection:
                reference = self._connection.removesuffix(".")
                values.append(ParameterValueStruct(f"{ms}ConnReqXMPPConnection", reference))
            values.append(ParameterValueStruct(f"{ms}ConnReqAllowedJabberIDs", xmpp.acs_jid))
        return SetParameterValues(values, parameter_key="")


def _first_enabled_row(table: str, values: list[ParameterValueStruct]) -> str:
    """The enabled row of *table* with the lowest number ("" for none): for XMPP.Connection.,
    the one an operator set up out of band, when ConnReqXMPPConnection does not name it."""
    numbers = [
        int(number)
        for p in values
        if p.value in ("1", "true")
        and (number := p.name.removeprefix(table).removesuffix(".Enable")).isdigit()
    ]
    return f"{table}{min(numbers)}." if numbers else ""


def _boolean(name: str, value: bool) -> ParameterValueStruct:
    return ParameterValueStruct(name, "1" if value else "0", "xsd:boolean")


def _unsigned(name: str, value: int) -> ParameterValueStruct:
    return ParameterValueStruct(name, str(value), "xsd:unsignedInt")


def provisioning_for(
    policy: CrPolicy,
    root: str,
    fixed: Credentials,
    stun: StunOffer | None,
    xmpp: XmppOffer | None,
    new_credentials: Callable[[], Credentials] = random_credentials,
) -> Provisioning | None:
    """The provisioning a device without Knock's credentials gets, or None to leave it alone."""
    if policy is CrPolicy.OFF:
        return None
    cr = fixed if policy is CrPolicy.FIXED else new_credentials()
    return Provisioning(root, cr, stun, xmpp, new_credentials)
