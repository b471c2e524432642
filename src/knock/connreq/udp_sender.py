"""UDP connection requests (TR-069 Annex G) as the ACS sends them: the signed datagram of
`knock.connreq.udp`, from the STUN server's own socket, repeated because UDP may be lost.

No answer comes back on UDP; the dispatcher waits for the Inform that proves delivery.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from collections.abc import Callable

from knock.connreq.http import Sent
from knock.connreq.udp import build_udp_cr
from knock.hosts import authority, canonical_ip
from knock.store.rows import CrTarget
from knock.vocab import CrOutcome

Address = tuple[str, int]
SendTo = Callable[[bytes, Address], None]
LiveBinding = Callable[[str], Address | None]
"""The address this process's STUN server saw last for a STUN username, if it saw one."""


class UdpConnectionRequester:
    def __init__(
        self,
        send_to: SendTo,
        live_binding: LiveBinding,
        *,
        repeat: int = 3,
        interval: float = 0.2,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._send_to = send_to
        self._live_binding = live_binding
        self._repeat = max(1, repeat)
        self._interval = interval
        self._clock = clock
        # A CPE drops an id equal to the last one it accepted: ids only move on, from a random
        # start so that a restarted ACS does not repeat its predecessor's.
        self._ids = itertools.count(secrets.randbelow(2**31))
        self._pending: set[asyncio.Task[None]] = set()
        self._last_ts: dict[str, int] = {}  # by CR username: one entry per device

    def address_for(self, target: CrTarget) -> Address | None:
        return udp_address(target, self._live_binding)

    async def send(self, address: Address, username: str, password: str) -> Sent:
        host, port = address
        # A CPE drops a request whose ts is not newer than the last it accepted, and ts counts
        # whole seconds: a second request within the same second gets the next second.
        ts = max(int(self._clock()), self._last_ts.get(username, -1) + 1)
        self._last_ts[username] = ts
        datagram = build_udp_cr(
            host, port, username, password, ts, next(self._ids), secrets.token_hex(8)
        )
        try:
            self._send_to(datagram, address)
        except OSError as exc:
            return Sent(CrOutcome.UNREACHABLE, f"cannot send to {authority(host, port)}: {exc}")
        if self._repeat > 1:
            # The copies follow in the background: the wait for the Inform (and the latency the
            # dispatcher measures) starts with the first datagram, not the last.
            copies = asyncio.create_task(self._copies(datagram, address))
            self._pending.add(copies)
            copies.add_done_callback(self._pending.discard)
        return Sent(
            None, f"{self._repeat} signed datagrams to {authority(host, port)} from the STUN port"
        )

    async def _copies(self, datagram: bytes, address: Address) -> None:
        for _copy in range(self._repeat - 1):
            await asyncio.sleep(self._interval)
            try:
                self._send_to(datagram, address)
            except (OSError, RuntimeError):
                # The first one went; the dispatcher is already waiting for the Inform. (A
                # RuntimeError: the STUN server has closed, the ACS is stopping.)
                return


def udp_address(target: CrTarget, live_binding: LiveBinding) -> Address | None:
    """The freshest address of *target*: the binding this STUN server just saw, else the one
    the store holds (seen by any ACS process), else the device's UDPConnectionRequestAddress."""
    if target.stun_username is not None:
        live = live_binding(target.stun_username)
        if live is not None:
            return live
    if target.stun_binding is not None:
        return target.stun_binding
    return parse_address(target.management.get("UDPConnectionRequestAddress", ""))


def parse_address(text: str) -> Address | None:
    """UDPConnectionRequestAddress ("host:port", "[v6]:port") as an address, or None."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not port.isdigit() or not host:
        return None
    number = int(port)
    return (canonical_ip(host), number) if 0 < number <= 0xFFFF else None
