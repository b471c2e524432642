"""What Knock sets on a device so that connection requests work with no hand configuration.

Pure: the service starts a `Provisioning` at the beginning of the ACS's turn when it holds no
connection-request credentials for the device. It first reads the device's ManagementServer object
(to learn, for one, whether the device does STUN; by its partial path, or by leaf names from a
device that cannot take one: `ObjectRead`), then sets the connection-request credentials
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
from typing import Any

from knock.acs.xmpp_rows import NoRows, Rows, XmppRowPlan, refusal
from knock.cwmp.rpcs import (
    DeleteObject,
    DeleteObjectResponse,
    Fault,
    GetParameterNames,
    GetParameterNamesResponse,
    GetParameterValues,
    GetParameterValuesResponse,
    ParameterValueStruct,
    Rpc,
    SetParameterValues,
    SetParameterValuesResponse,
)
from knock.store.rows import ParamValue
from knock.vocab import Lack, XmppSetup


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
    # The values the device accepted, as it now holds them (passwords as it reads them: ""),
    # and the XMPP rows they went in: the store records them at once, as GenieACS does.
    accepted: list[ParamValue] = field(default_factory=list)
    xmpp_setup: XmppSetup | None = None  # None: XMPP was not offered to this device
    xmpp_detail: str = ""  # the row used, or why the device got no XMPP


def random_credentials() -> Credentials:
    # 20 characters: a multiple of 4, so a STUN client puts the username in its USERNAME
    # attribute unpadded, and no padding byte (RFC 3489 names none) can garble it.
    return Credentials("knock-" + secrets.token_hex(7), secrets.token_urlsafe(24))


def data_model_root(parameter_names: list[str]) -> str:
    """ "InternetGatewayDevice." for TR-098 devices, "Device." for TR-181 ones."""
    if any(name.startswith("InternetGatewayDevice.") for name in parameter_names):
        return "InternetGatewayDevice."
    return "Device."


# The ManagementServer leaves provisioning and connection requests use (TR-098 and TR-181
# alike): what a device that can list neither values nor names of a partial path is asked for,
# one at a time, so that a name its model lacks costs one fault and not the read.
KNOWN_MANAGEMENT_LEAVES = (
    "URL",
    "PeriodicInformEnable",
    "PeriodicInformInterval",
    "ConnectionRequestURL",
    "ConnectionRequestUsername",
    "UDPConnectionRequestAddress",
    "NATDetected",
    "STUNEnable",
    "STUNServerAddress",
    "STUNServerPort",
    "STUNUsername",
    "ConnReqXMPPConnection",
    "ConnReqAllowedJabberIDs",
    "ConnReqJabberID",
)


class _Way(enum.Enum):
    VALUES = "values"  # GetParameterValues of the partial path
    NAMES = "names"  # GetParameterNames of it
    LEAVES = "leaves"  # GetParameterValues of the leaf names it listed
    KNOWN = "known"  # GetParameterValues of each known name, one at a time


class ObjectRead:
    """Reads the values under an object path in the way the device can, sans-IO.

    GetParameterValues of the partial path first; a device that lacks that (it faults, or
    dropped the connection in an earlier session) is asked GetParameterNames of the path and
    then the values of the leaf names it listed, as GenieACS always reads; one that lacks that
    too, or faults on the leaves, is asked for the *known* names one at a time (a name its model
    lacks costs one fault, not the read). `probing` names what the outstanding request needs,
    so that a session dying on it is remembered against the device."""

    def __init__(
        self,
        path: str,
        lacks: frozenset[str],
        known: tuple[str, ...] = (),
        wanted: Callable[[str], bool] = lambda name: True,
    ) -> None:
        self._path = path
        self._lacks = set(lacks)
        self.found_lacking: set[Lack] = set()
        self._known = [path + leaf for leaf in known]
        self._wanted = wanted
        self._values: list[ParameterValueStruct] = []
        self._way = _Way.VALUES

    @property
    def probing(self) -> Lack | None:
        """What the device must be able to do to answer the outstanding request."""
        if self._way is _Way.VALUES:
            return Lack.PARTIAL_PATH_VALUES
        if self._way is _Way.NAMES:
            return Lack.PARTIAL_PATH_NAMES
        return None

    def first(self) -> Rpc | None:
        """The first request, or None when the device offers no way to read the object."""
        if Lack.PARTIAL_PATH_VALUES not in self._lacks:
            self._way = _Way.VALUES
            return GetParameterValues([self._path])
        if Lack.PARTIAL_PATH_NAMES not in self._lacks:
            self._way = _Way.NAMES
            return GetParameterNames(self._path, next_level=False)
        return self._next_known()

    def on_response(self, rpc: Rpc) -> Rpc | list[ParameterValueStruct]:
        """The next request, or every value read (none, if the device gives none)."""
        if isinstance(rpc, Fault):
            if (lacking := self.probing) is not None:
                self.found_lacking.add(lacking)
                self._lacks.add(lacking)
                return self.first() or self._values
            return self._next_known() or self._values
        if isinstance(rpc, GetParameterNamesResponse) and self._way is _Way.NAMES:
            leaves = [
                info.name
                for info in rpc.parameter_list
                if not info.name.endswith(".") and self._wanted(info.name)
            ]
            self._way = _Way.LEAVES
            return GetParameterValues(leaves) if leaves else self._values
        if isinstance(rpc, GetParameterValuesResponse):
            self._values += [p for p in rpc.parameter_list if self._wanted(p.name)]
        if self._way is _Way.KNOWN:
            return self._next_known() or self._values
        return self._values

    def _next_known(self) -> Rpc | None:
        self._way = _Way.KNOWN
        if not self._known:
            return None
        return GetParameterValues([self._known.pop(0)])


class _Phase(enum.Enum):
    READ = "read"  # the device's ManagementServer object
    ROWS = "rows"  # the XMPP.Connection and Server rows for Knock's server (xmpp_rows)
    FIND_CONNECTION = "find-connection"  # the row an operator set up, for ConnReqXMPPConnection
    SET = "set"
    UNDO = "undo"  # delete the XMPP row this provisioning added, once XMPP failed


class Provisioning:
    def __init__(
        self,
        root: str,
        cr: Credentials,
        stun: StunOffer | None,
        xmpp: XmppOffer | None,
        new_credentials: Callable[[], Credentials] = random_credentials,
        lacks: frozenset[str] = frozenset(),
    ) -> None:
        self._root = root
        self._prefix = f"{root}ManagementServer."
        self._cr = cr
        self._stun_offer = stun
        self._xmpp_offer = xmpp
        self._new_credentials = new_credentials
        self._phase = _Phase.READ
        self._lacks = lacks
        self._lacking: set[Lack] = set()  # found in this session, by reads before the last
        self._read = ObjectRead(self._prefix, lacks, KNOWN_MANAGEMENT_LEAVES)
        self._names: set[str] = set()
        self._seen: list[ParamValue] = []
        self._rows: XmppRowPlan | None = None
        self._found: Rows | None = None  # the rows Knock's account goes in
        self._connection = ""  # with an external server: the row ConnReqXMPPConnection names
        self._added = ""  # the outermost XMPP object this provisioning added
        self._xmpp_failure = ""  # why XMPP was given up; "" while it was not
        self._sent: SetParameterValues | None = None
        self._stun: Credentials | None = None
        self._xmpp: Credentials | None = None

    @property
    def probing(self) -> Lack | None:
        """What the device must be able to do to answer the outstanding request, if anything
        beyond the basics: a session that dies on it says the device cannot."""
        return self._read.probing if self._phase in (_Phase.READ, _Phase.FIND_CONNECTION) else None

    @property
    def found_lacking(self) -> set[Lack]:
        """What the device was found unable to do in this session (it faulted)."""
        return self._lacking | self._read.found_lacking

    def first(self) -> Rpc:
        return self._read.first() or self._set()

    def on_response(self, rpc: Rpc) -> Rpc | Provisioned:
        """The next RPC, or what the device accepted (nothing, if it refused the values). A fault
        to a read or to finding the XMPP rows only means Knock sets less."""
        if self._phase is _Phase.READ:
            step = self._read.on_response(rpc)
            return step if not isinstance(step, list) else self._after_read(step)
        if self._phase is _Phase.FIND_CONNECTION:
            values = self._read.on_response(rpc)
            if not isinstance(values, list):
                return values
            self._connection = _first_enabled_row(f"{self._root}XMPP.Connection.", values)
            return self._set()
        if self._phase is _Phase.ROWS:
            assert self._rows is not None
            rows = self._rows.on_response(rpc)
            if isinstance(rows, Rows):
                self._found = rows
                return self._set()
            if isinstance(rows, NoRows):
                return self._give_up_xmpp(rows.reason, rows.added)
            return rows
        if self._phase is _Phase.UNDO:
            if not isinstance(rpc, DeleteObjectResponse):
                self._xmpp_failure += f"; deleting {self._added} failed too"
            return self._set()
        sent = self._sent
        assert sent is not None
        if not isinstance(rpc, SetParameterValuesResponse):
            if self._carries_xmpp:
                # The credentials and STUN still go in: set them again without XMPP.
                added = self._found.added if self._found is not None else ""
                return self._give_up_xmpp(refusal(sent, rpc), added)
            return Provisioned(None, None, self._seen, **self._xmpp_outcome())
        return Provisioned(
            self._cr,
            self._stun,
            self._seen,
            self._xmpp,
            accepted=self._accepted(sent),
            **self._xmpp_outcome(),
        )

    def _after_read(self, reported: list[ParameterValueStruct]) -> Rpc:
        """What to do once the ManagementServer values are read."""
        self._seen = [ParamValue(p.name, p.value, p.type) for p in reported]
        self._names = {p.name for p in reported}
        reference = {p.name: p.value for p in reported}.get(f"{self._prefix}ConnReqXMPPConnection")
        if self._xmpp_offer is None or reference is None:
            return self._set()
        if self._xmpp_offer.account is not None:
            self._phase = _Phase.ROWS
            self._rows = XmppRowPlan(self._root, reference)
            return self._rows.first()
        if not reference:
            self._phase = _Phase.FIND_CONNECTION
            self._lacking |= self._read.found_lacking
            self._read = ObjectRead(
                f"{self._root}XMPP.Connection.",
                self._lacks | self._lacking,
                wanted=lambda name: name.endswith(".Enable"),
            )
            return self._read.first() or self._set()
        return self._set()

    def _give_up_xmpp(self, reason: str, added: str) -> Rpc:
        """XMPP failed: delete what this provisioning added, then set the rest."""
        self._xmpp_failure = reason
        self._found = None
        self._connection = ""
        self._xmpp = None
        if not added:
            return self._set()
        self._phase = _Phase.UNDO
        self._added = added
        return DeleteObject(added, parameter_key="")

    @property
    def _carries_xmpp(self) -> bool:
        xmpp = self._xmpp_offer
        if xmpp is None or self._xmpp_failure:
            return False
        if xmpp.account is not None:
            return self._found is not None
        return f"{self._prefix}ConnReqAllowedJabberIDs" in self._names

    def _xmpp_outcome(self) -> dict[str, Any]:
        if self._xmpp_failure:
            return {"xmpp_setup": XmppSetup.FAILED, "xmpp_detail": self._xmpp_failure}
        if self._found is not None:
            return {"xmpp_setup": XmppSetup.OK, "xmpp_detail": self._found.connection}
        return {}

    def _accepted(self, sent: SetParameterValues) -> list[ParamValue]:
        rows = [] if self._found is None else [self._found.connection, self._found.server]
        return [ParamValue(row, None, None) for row in rows] + [
            ParamValue(p.name, "" if p.name.endswith("Password") else p.value, p.type)
            for p in sent.parameter_list
        ]

    def _set(self) -> SetParameterValues:
        self._phase = _Phase.SET
        ms = self._prefix
        values = [
            ParameterValueStruct(f"{ms}ConnectionRequestUsername", self._cr.username),
            ParameterValueStruct(f"{ms}ConnectionRequestPassword", self._cr.password),
        ]
        stun = self._stun_offer
        if stun is not None and f"{ms}STUNEnable" in self._names:
            self._stun = self._stun or self._new_credentials()
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
        if self._carries_xmpp:
            values += self._xmpp_values()
        self._sent = SetParameterValues(values, parameter_key="")
        return self._sent

    def _xmpp_values(self) -> list[ParameterValueStruct]:
        xmpp, ms = self._xmpp_offer, self._prefix
        assert xmpp is not None
        account, found = xmpp.account, self._found
        if account is None:
            # An external server: the device's account is the operator's; only allow the ACS.
            reference = self._connection.removesuffix(".")
            chosen = [ParameterValueStruct(f"{ms}ConnReqXMPPConnection", reference)]
            allowed = ParameterValueStruct(f"{ms}ConnReqAllowedJabberIDs", xmpp.acs_jid)
            return [*(chosen if reference else []), allowed]
        assert found is not None
        self._xmpp = self._xmpp or self._new_credentials()
        conn, server = found.connection, found.server
        return [
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
    lacks: frozenset[str] = frozenset(),
) -> Provisioning | None:
    """The provisioning a device without Knock's credentials gets, or None to leave it alone.
    *lacks*: what the device was found unable to do in earlier sessions (knock.vocab.Lack)."""
    if policy is CrPolicy.OFF:
        return None
    cr = fixed if policy is CrPolicy.FIXED else new_credentials()
    return Provisioning(root, cr, stun, xmpp, new_credentials, lacks)
