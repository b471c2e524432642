"""A CPE's STUN client for TR-111 (TR-069 Annex G), sans-IO: one per device, fed its datagrams.

The agent keeps the device's NAT binding open and learns its public address. It sends Binding
Requests with CONNECTION-REQUEST-BINDING and USERNAME; a 401 makes it sign this and every later
request with MESSAGE-INTEGRITY (the ACS's STUN server challenges unsigned ones). An answered
request is followed by the next after a keep-alive period drawn between STUNMinimumKeepAlivePeriod
and STUNMaximumKeepAlivePeriod, which spreads a fleet's keep-alives; an unanswered one is sent
again after RETRANSMIT, then left until the next period. A MAPPED-ADDRESS that differs from the
last one is reported, and the next request carries BINDING-CHANGE until one is answered, so the
ACS updates its binding at once.

`configure`, `receive` and `tick` return the datagrams to send and the addresses learned; the
adapter (`udp_port`) calls `tick` at `due`.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from knock.cpe.defects import NONE, Defect, Defects
from knock.cpe.quirks import Quirk, Quirks
from knock.stun.attributes import Address, AttributeType
from knock.stun.codec import Message, MessageType, binding_request, check_integrity

# Seconds to wait for an answer before sending again (RFC 3489 §9.3 doubles from 100 ms; a
# simulated fleet on a LAN needs fewer tries, and the keep-alive comes again anyway).
RETRANSMIT: Final = (0.5, 1.0, 2.0, 4.0)
_UNAUTHORIZED: Final = 401


@dataclass(frozen=True, slots=True)
class StunConfig:
    server: Address  # resolved: the adapter looks up a host name once
    username: str
    password: str
    min_period: int  # STUNMinimumKeepAlivePeriod, seconds
    max_period: int  # STUNMaximumKeepAlivePeriod; -1: no maximum

    def __repr__(self) -> str:  # the password never reaches a log through a repr
        return f"StunConfig({self.username!r} -> {self.server[0]}:{self.server[1]})"


@dataclass(frozen=True, slots=True)
class Send:
    datagram: bytes
    to: Address


@dataclass(frozen=True, slots=True)
class Mapped:
    """The binding's public address, new or moved."""

    address: Address


Output = Send | Mapped


class Dropped(StrEnum):
    """Datagrams on the STUN side the agent ignores, counted by the adapter."""

    STRAY = "stray"  # not the answer to the request outstanding
    BAD_INTEGRITY = "bad-integrity"
    NO_ADDRESS = "no-address"  # a Binding Response without MAPPED-ADDRESS
    ERROR = "error"  # a Binding Error Response other than the first 401


class StunAgent:
    __slots__ = (
        "_change",
        "_config",
        "_defects",
        "_due",
        "_mapped",
        "_quirks",
        "_signed",
        "_tries",
        "_txid",
        "_uniform",
    )

    def __init__(
        self,
        uniform: Callable[[float, float], float] = random.uniform,
        defects: Defects = NONE,
        quirks: Quirks = frozenset(),
    ) -> None:
        """*uniform* draws the keep-alive periods; tests pass a fixed one. *defects*: the
        device's; NO_BINDING_CHANGE and STUN_NO_INTEGRITY change what the agent sends.
        *quirks*: the device's; STUN_USERNAME_SPACE_PAD pads USERNAME with spaces."""
        self._uniform = uniform
        self._defects = defects
        self._quirks = quirks
        self._config: StunConfig | None = None
        self._txid = b""  # of the request outstanding; b"": none
        self._tries = 0
        self._signed = False  # the server asked for MESSAGE-INTEGRITY
        self._mapped: Address | None = None
        self._change = False  # the next request carries BINDING-CHANGE
        self._due: float | None = None

    @property
    def due(self) -> float | None:
        return self._due

    @property
    def mapped(self) -> Address | None:
        return self._mapped

    def configure(self, config: StunConfig | None, now: float) -> list[Output]:
        """Start (or restart, with new settings) at once; None stops the agent."""
        if config == self._config:
            return []
        self._config = config
        self._txid, self._signed, self._due = b"", False, None
        return [] if config is None else self._request(now)

    def tick(self, now: float) -> list[Output]:
        if self._config is None or self._due is None or now < self._due:
            return []
        if not self._txid:
            return self._request(now)
        if self._tries < len(RETRANSMIT):
            return self._send(now)
        self._wait_period(now)  # the server is away; the binding is refreshed next period
        return []

    def receive(self, message: Message, now: float) -> list[Output] | Dropped:
        """Act on a STUN message that arrived; a `Dropped` reason when it is ignored."""
        config = self._config
        if config is None or not self._txid or message.txid != self._txid:
            return Dropped.STRAY
        if message.integrity is not None and not check_integrity(message, config.password):
            return Dropped.BAD_INTEGRITY
        if message.kind is MessageType.BINDING_ERROR_RESPONSE:
            error = message.error
            if (
                error is not None
                and error.code == _UNAUTHORIZED
                and not self._signed
                and Defect.STUN_NO_INTEGRITY not in self._defects
            ):
                self._signed = True
                return self._request(now)
            self._wait_period(now)
            return Dropped.ERROR
        if message.kind is not MessageType.BINDING_RESPONSE:
            return Dropped.STRAY
        mapped = message.address(AttributeType.MAPPED_ADDRESS)
        if mapped is None:
            self._wait_period(now)
            return Dropped.NO_ADDRESS
        self._change = False  # a request that carried it was answered: the ACS has heard
        self._wait_period(now)
        if mapped == self._mapped:
            return []
        moved = self._mapped is not None
        self._mapped = mapped
        if moved and Defect.NO_BINDING_CHANGE not in self._defects:
            self._change = True
            return [Mapped(mapped), *self._request(now)]
        return [Mapped(mapped)]

    def _wait_period(self, now: float) -> None:
        config = self._config
        assert config is not None
        low = max(1, config.min_period)
        high = max(low, config.max_period)
        self._txid = b""
        self._due = now + self._uniform(low, high)

    def _request(self, now: float) -> list[Output]:
        self._txid = os.urandom(16)
        self._tries = 0
        return self._send(now)

    def _send(self, now: float) -> list[Output]:
        config = self._config
        assert config is not None
        datagram = binding_request(
            self._txid,
            username=config.username or None,  # TR-111: no USERNAME when none is set
            username_pad=b" " if Quirk.STUN_USERNAME_SPACE_PAD in self._quirks else b"\0",
            password=config.password if self._signed else None,
            connection_request_binding=True,
            binding_change=self._change,
        )
        self._due = now + RETRANSMIT[self._tries]
        self._tries += 1
        return [Send(datagram, config.server)]
