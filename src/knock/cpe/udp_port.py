"""Each simulated device's UDP port: its STUN client and its UDP connection requests share it.

TR-111 needs one port per device: the STUN server learns the binding from the port the Binding
Requests leave, and that is where the ACS sends the connection requests. A port is a bare
non-blocking socket read by a loop reader (no asyncio transport, whose buffers a fleet of
thousands would pay for): one descriptor per device, so 10,000 devices need two workers under
the 20,000 descriptors a process may hold (LAB-NOTES) along with their XMPP connections.

Datagrams starting ``GET `` go to the `UdpCrGate`, the rest to the device's `StunAgent`. The
device's STUN settings are read whenever it settles (power-on, end of a session).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time
from collections import Counter
from collections.abc import Callable
from typing import Final
from urllib.parse import urlsplit

from knock.cpe.datamodel import UDP_PARAMETERS, ModelError, ModelSchema, template_of
from knock.cpe.device import CpeError, SimulatedCpe
from knock.cpe.stun_agent import Dropped, Mapped, Output, Send, StunAgent, StunConfig
from knock.cpe.udp_cr import UdpCrGate, UdpDeviceFacts
from knock.cwmp.values import parse_boolean
from knock.hosts import authority, is_ipv6
from knock.ratelog import ReasonLog
from knock.stun.attributes import Address
from knock.stun.codec import DEFAULT_PORT, StunError, parse
from knock.vocab import Event

log = logging.getLogger(__name__)

_CR_PREFIX: Final = b"GET "
_READS_PER_WAKE: Final = 16  # then other devices get their turn
_MAX_DATAGRAM: Final = 4096


def check_udp_support(schema: ModelSchema) -> None:
    """Raise `ModelError` unless devices of *schema* can take UDP connection requests."""
    missing = [
        schema.management(leaf)
        for leaf in UDP_PARAMETERS
        if template_of(schema.management(leaf)) not in schema.params
    ]
    if missing:
        raise ModelError(
            f"model {schema.name} lacks {', '.join(missing)}, which UDP connection requests "
            "(TR-111) need; add them to its ManagementServer object"
        )


class UdpPorts:
    """The UDP ports of one worker's devices. `attach` each device; `close` when done."""

    def __init__(
        self, gate: UdpCrGate, *, host: str = "127.0.0.1", clock: Callable[[], float] = time.time
    ) -> None:
        self.gate = gate
        self.host = host
        self.clock = clock
        self.stun: Counter[str] = Counter()  # STUN datagrams dropped, by reason
        # A fleet shares its settings: one line per reason for all the devices, not one each.
        self.misconfigured = ReasonLog(log)
        self._ports: list[DevicePort] = []

    @property
    def bound(self) -> int:
        """Devices whose STUN binding is known."""
        return sum(1 for port in self._ports if port.agent.mapped is not None)

    def attach(self, cpe: SimulatedCpe) -> DevicePort:
        try:
            check_udp_support(cpe.model.schema)
        except ModelError as exc:
            raise CpeError(f"device {cpe.serial}: {exc}") from None
        try:
            port = DevicePort(self, cpe)
        except OSError as exc:
            raise CpeError(
                f"device {cpe.serial}: cannot open its UDP port: {exc.strerror}; with many "
                "devices, spread them over more --workers (one descriptor each)"
            ) from None
        self._ports.append(port)
        return port

    def close(self) -> None:
        for port in self._ports:
            port.close()
        self._ports.clear()


class DevicePort:
    __slots__ = ("_timer", "agent", "cpe", "local", "ports", "sock")

    def __init__(self, ports: UdpPorts, cpe: SimulatedCpe) -> None:
        self.ports = ports
        self.cpe = cpe
        self.agent = StunAgent(defects=cpe.defects, quirks=cpe.quirks)
        self._timer: asyncio.TimerHandle | None = None
        family = socket.AF_INET6 if is_ipv6(ports.host) else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self.sock.setblocking(False)
            self.sock.bind((ports.host, 0))
            host, port = self.sock.getsockname()[:2]
            self.local: Address = (host, port)
            asyncio.get_running_loop().add_reader(self.sock.fileno(), self._readable)
        except OSError:
            self.sock.close()
            raise
        self._report(self.local)
        cpe.on_settled(self._settled)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self.sock.fileno() >= 0:
            asyncio.get_running_loop().remove_reader(self.sock.fileno())
            self.sock.close()

    # --- settings -------------------------------------------------------------------------

    def _settled(self) -> None:
        config = self._config()
        if config is None and self.agent.mapped is not None:
            self._report(self.local)
        self._run(self.agent.configure(config, self.ports.clock()))

    def _config(self) -> StunConfig | None:
        model = self.cpe.model
        ms = model.schema.management
        if not parse_boolean(model.get(ms("STUNEnable"))):
            return None
        host = model.get(ms("STUNServerAddress")) or _acs_host(model.get(ms("URL")))
        try:
            # A simulated fleet runs next to its ACS: names beyond "localhost" would need a
            # resolver call per device, so they are refused and logged.
            literal = _ip_literal(host, self.sock.family)
            server = (literal, int(model.get(ms("STUNServerPort"))) or DEFAULT_PORT)
        except ValueError as exc:
            self.ports.misconfigured.hit(
                f"STUN server {host!r}: {exc}; give an IP address of --cr-host's family",
                f"device {self.cpe.serial}",
            )
            return None
        return StunConfig(
            server=server,
            username=model.get(ms("STUNUsername")),
            password=model.get(ms("STUNPassword")),
            min_period=int(model.get(ms("STUNMinimumKeepAlivePeriod"))),
            max_period=int(model.get(ms("STUNMaximumKeepAlivePeriod"))),
        )

    # --- the socket -----------------------------------------------------------------------

    def _readable(self) -> None:
        for _ in range(_READS_PER_WAKE):
            try:
                data, _source = self.sock.recvfrom(_MAX_DATAGRAM + 1)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # an ICMP error from an earlier send: the server is away
                log.debug("device %s: UDP port: %s", self.cpe.serial, exc)
                continue
            if data.startswith(_CR_PREFIX):
                self._connection_request(data)
            else:
                self._stun(data)

    def _connection_request(self, datagram: bytes) -> None:
        cpe = self.cpe
        ms = cpe.model.schema.management
        facts = UdpDeviceFacts(
            serial=cpe.serial,
            username=cpe.model.get(ms("ConnectionRequestUsername")),
            password=cpe.model.get(ms("ConnectionRequestPassword")),
            last=cpe.state.udp_cr_last,
            in_session=cpe.in_session,
            sessions_started=cpe.counts.started,
            defects=cpe.defects,
        )
        decision = self.ports.gate.decide(datagram, facts, self.ports.clock())
        if decision.request is not None:
            cpe.state.udp_cr_accepted(decision.request.ts, decision.request.msg_id)
        if decision.answer.opens_session:
            cpe.request_session(Event.CONNECTION_REQUEST)

    def _stun(self, datagram: bytes) -> None:
        try:
            message = parse(datagram)
        except StunError:
            self.ports.stun["malformed"] += 1
            return
        outputs = self.agent.receive(message, self.ports.clock())
        if isinstance(outputs, Dropped):
            self.ports.stun[outputs] += 1
            self._schedule()  # a refused request may have set the next keep-alive
            return
        self._run(outputs)

    def _run(self, outputs: list[Output]) -> None:
        for output in outputs:
            if isinstance(output, Send):
                try:
                    self.sock.sendto(output.datagram, output.to)
                except OSError as exc:  # a full buffer or no route: the retransmission retries
                    log.debug("device %s: STUN send: %s", self.cpe.serial, exc)
            elif isinstance(output, Mapped):
                self._report(output.address)
        self._schedule()

    def _schedule(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        due = self.agent.due
        if due is not None:
            delay = max(0.0, due - self.ports.clock())
            self._timer = asyncio.get_running_loop().call_later(delay, self._tick)

    def _tick(self) -> None:
        self._timer = None
        self._run(self.agent.tick(self.ports.clock()))

    def _report(self, address: Address) -> None:
        """Make the device report *address* as where UDP connection requests reach it."""
        ms = self.cpe.model.schema.management
        try:
            self.cpe.set_value(ms("UDPConnectionRequestAddress"), authority(*address))
            self.cpe.set_value(ms("NATDetected"), str(address != self.local).lower())
        except CpeError as exc:  # the model was checked at attach: a bug, not bad input
            log.error("%s", exc)


def _acs_host(url: str) -> str:
    return urlsplit(url).hostname or ""


def _ip_literal(host: str, family: int) -> str:
    """The STUN server's address as *family*'s socket takes it; ValueError for a name or an
    address of the other family."""
    if host == "localhost":
        return "::1" if family == socket.AF_INET6 else "127.0.0.1"
    ip = ipaddress.ip_address(host.removeprefix("[").removesuffix("]"))
    if (ip.version == 6) != (family == socket.AF_INET6):
        raise ValueError(f"an IPv{ip.version} address, and the device's UDP port is not")
    return str(ip)
