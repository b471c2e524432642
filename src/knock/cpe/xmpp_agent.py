"""Each simulated device's XMPP connection (TR-069 Annex K, TR-181 Device.XMPP.).

When the device settles (power-on, end of a session) its agent reads the row that
ManagementServer.ConnReqXMPPConnection names: enabled, it keeps an `XmppClient` logged in as
Username@Domain/Resource to the first enabled Server row by Priority (with no row and
ServerConnectAlgorithm DNS-SRV, to the server the Domain's SRV records name), with the row's
back-off (ServerRetry*) and STARTTLS required when UseTLS is set; a change of any of these
starts a new connection. The JID the server binds becomes the row's JabberID and ManagementServer.
ConnReqJabberID (active notification: the ACS hears of it at once); Status, TLSEstablished and
LastChangeDate follow the connection. Incoming IQs go to the `XmppCrGate`.

A fleet runs thousands: every agent of a worker shares one `XmppShared`, holding the gate, the
client configurations (one per TLS policy and keep-alive) and the one TLS context (what the
devices trust, `knock.cpe.trust`).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from knock.cpe.datamodel import ModelError, ModelSchema
from knock.cpe.device import CpeError, SimulatedCpe
from knock.cpe.trust import device_tls
from knock.cpe.xmpp_cr import XmppCrGate, XmppDeviceFacts, reply
from knock.cwmp.values import format_datetime, parse_boolean
from knock.ratelog import ReasonLog
from knock.vocab import Event
from knock.xmpp.client import ClientConfig, IqRequest, TlsPolicy
from knock.xmpp.client_conn import ConnState, ServerRetry, Status, XmppClient
from knock.xmpp.jid import JidError, parse_jid
from knock.xmpp.srv import SYSTEM_RESOLVER, SrvResolver

log = logging.getLogger(__name__)

XMPP_OBJECTS: Final = ("XMPP.Connection.{i}.", "XMPP.Connection.{i}.Server.{i}.")


def check_xmpp_support(schema: ModelSchema) -> None:
    """Raise `ModelError` unless devices of *schema* can take XMPP connection requests."""
    missing = [
        schema.root + name for name in XMPP_OBJECTS if schema.root + name not in schema.objects
    ]
    if schema.management("ConnReqXMPPConnection") not in schema.params:
        missing.append(schema.management("ConnReqXMPPConnection"))
    if missing:
        raise ModelError(
            f"model {schema.name} lacks {', '.join(missing)}, which XMPP connection requests "
            "(TR-069 Annex K) need"
        )


class XmppShared:
    """What every device agent of one worker shares."""

    def __init__(
        self,
        gate: XmppCrGate,
        *,
        tls: ssl.SSLContext | None = None,
        clock: Callable[[], float] = time.time,
        resolver: SrvResolver = SYSTEM_RESOLVER,
    ) -> None:
        """*tls*: what the devices check a server's certificate with under UseTLS
        (`knock.cpe.trust.device_tls`; None: the system's CAs). *resolver*: for devices that
        find their server through DNS SRV."""
        self.gate = gate
        self.resolver = resolver
        self.clock = clock
        self._context = tls
        self._configs: dict[tuple[bool, float], ClientConfig] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self.agents: list[DeviceXmpp] = []
        # A fleet shares its settings: one line per reason for all the devices, not one each.
        self.misconfigured = ReasonLog(log)

    @property
    def online(self) -> int:
        return sum(1 for agent in self.agents if agent.client is not None and agent.client.online)

    def attach(self, cpe: SimulatedCpe) -> DeviceXmpp:
        try:
            check_xmpp_support(cpe.model.schema)
        except ModelError as exc:
            raise CpeError(f"device {cpe.serial}: {exc}") from None
        agent = DeviceXmpp(self, cpe)
        self.agents.append(agent)
        return agent

    def config(self, tls: bool, keepalive: float) -> ClientConfig:
        key = (tls, keepalive)
        config = self._configs.get(key)
        if config is None:
            policy = TlsPolicy.REQUIRED if tls else TlsPolicy.NEVER
            config = self._configs[key] = ClientConfig(tls=policy, keepalive_interval=keepalive)
        return config

    def ssl_context(self) -> ssl.SSLContext:
        if self._context is None:
            self._context = device_tls()
        return self._context

    def close_later(self, client: XmppClient) -> None:
        task = asyncio.get_running_loop().create_task(client.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        for agent in self.agents:
            if agent.client is not None:
                self.close_later(agent.client)
                agent.client = None
        await asyncio.gather(*self._closing, return_exceptions=True)
        self.agents.clear()


@dataclass(frozen=True, slots=True)
class _Settings:
    row: str  # "Device.XMPP.Connection.1."
    jid: str
    password: str
    host: str | None  # None: from the Domain's SRV records
    port: int | None
    tls: bool
    keepalive: float
    retry: ServerRetry

    def __repr__(self) -> str:  # the password never reaches a log through a repr
        return f"_Settings({self.jid} -> {self.host}:{self.port})"


class DeviceXmpp:
    __slots__ = ("client", "cpe", "settings", "shared")

    def __init__(self, shared: XmppShared, cpe: SimulatedCpe) -> None:
        self.shared = shared
        self.cpe = cpe
        self.client: XmppClient | None = None
        self.settings: _Settings | None = None
        cpe.on_settled(self._settled)

    def _settled(self) -> None:
        settings = self._read()
        if settings == self.settings:
            return
        if self.client is not None:
            self.shared.close_later(self.client)
            self.client = None
        self.settings = settings
        if settings is None:
            return
        shared = self.shared
        self.client = XmppClient(
            settings.jid,
            settings.password,
            host=settings.host,
            port=settings.port,
            ssl_context=shared.ssl_context() if settings.tls else None,
            config=shared.config(settings.tls, settings.keepalive),
            retry=settings.retry,
            on_request=self._request,
            on_status=self._status,
            resolver=shared.resolver,
        )
        self.client.start()

    def _read(self) -> _Settings | None:
        model = self.cpe.model
        reference = model.get(model.schema.management("ConnReqXMPPConnection"))
        row = reference.rstrip(".") + "."
        if not reference or not model.has(row + "Enable"):
            return None
        if not parse_boolean(model.get(row + "Enable")):
            self._set(row + "Status", "Disabled")
            return None
        server = self._server(row)
        algorithm = row + "ServerConnectAlgorithm"
        if server is None and model.has(algorithm) and model.get(algorithm) == "DNS-SRV":
            server = (None, None)  # TR-181: look up the Domain's SRV records (RFC 6120 §3.2)
        username, domain = model.get(row + "Username"), model.get(row + "Domain")
        resource = model.get(row + "Resource")
        try:
            jid = str(parse_jid(f"{username}@{domain}" + (f"/{resource}" if resource else "")))
        except JidError as exc:
            self.shared.misconfigured.hit(
                f"{row}: no usable JID", f"device {self.cpe.serial}: {exc}"
            )
            server = None
        if server is None:
            self._set(row + "Status", "Error_Misconfigured")
            return None
        keepalive = int(model.get(row + "KeepAliveInterval"))
        return _Settings(
            row=row,
            jid=jid,
            password=model.get(row + "Password"),
            host=server[0],
            port=server[1],
            tls=parse_boolean(model.get(row + "UseTLS")),
            keepalive=float(max(keepalive, 0)),  # -1: no keep-alive (TR-181)
            retry=ServerRetry(
                float(model.get(row + "ServerRetryInitialInterval")),
                int(model.get(row + "ServerRetryIntervalMultiplier")),
                float(model.get(row + "ServerRetryMaxInterval")),
            ),
        )

    def _server(self, row: str) -> tuple[str | None, int | None] | None:
        """The enabled Server row first by Priority (lowest wins, TR-181)."""
        model = self.cpe.model
        rows = [info.name for info in model.get_parameter_names(row + "Server.", True)]
        candidates = [
            (
                int(model.get(r + "Priority")),
                model.get(r + "ServerAddress"),
                int(model.get(r + "Port")),
            )
            for r in rows
            if parse_boolean(model.get(r + "Enable")) and model.get(r + "ServerAddress")
        ]
        if not candidates:
            return None
        _priority, host, port = min(candidates)
        return host, port

    # --- the connection -------------------------------------------------------------------

    def _request(self, client: XmppClient, request: IqRequest) -> None:
        cpe = self.cpe
        model = cpe.model
        ms = model.schema.management
        facts = XmppDeviceFacts(
            serial=cpe.serial,
            username=model.get(ms("ConnectionRequestUsername")),
            password=model.get(ms("ConnectionRequestPassword")),
            allowed=model.get(ms("ConnReqAllowedJabberIDs")),
            in_session=cpe.in_session,
            sessions_started=cpe.counts.started,
            defects=cpe.defects,
        )
        answer = self.shared.gate.decide(request.stanza, facts, self.shared.clock())
        sent = reply(answer, cpe.defects)
        if sent is not None:
            client.answer(request, sent.error)
        if answer.opens_session:
            cpe.request_session(Event.CONNECTION_REQUEST)

    def _status(self, client: XmppClient, status: Status) -> None:
        settings = self.settings
        if client is not self.client or settings is None:
            return  # a replaced connection closing
        row = settings.row
        if status.state is ConnState.ONLINE:
            self._set(row + "JabberID", status.jid)
            self._set(self.cpe.model.schema.management("ConnReqJabberID"), status.jid)
            self._set(row + "TLSEstablished", str(status.tls).lower())
        self._set(row + "Status", _STATUS[status.state](status))

    def _set(self, name: str, value: str) -> None:
        cpe = self.cpe
        if cpe.model.get(name) == value:
            return
        try:
            cpe.set_value(name, value)
            if name.endswith(".Status"):
                stamp = format_datetime(datetime.fromtimestamp(self.shared.clock(), UTC))
                cpe.set_value(name.removesuffix("Status") + "LastChangeDate", stamp)
        except CpeError as exc:  # the model was checked at attach: a bug, not bad input
            log.error("%s", exc)


def _disconnected(status: Status) -> str:
    return "Error_AuthenticationFailure" if "auth-failed" in status.reason else "ServerNotPresent"


_STATUS: Final[dict[ConnState, Callable[[Status], str]]] = {
    ConnState.ONLINE: lambda _status: "Enabled",
    ConnState.CONNECTING: lambda _status: "Connecting",
    ConnState.DISCONNECTED: _disconnected,
    ConnState.CLOSED: lambda _status: "Disabled",
}
