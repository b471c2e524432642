"""Reach a device now: pick a method, send, and wait for the Inform that proves it worked.

A request counts as delivered only when the device's Inform with `6 CONNECTION REQUEST` arrives;
the hub announces it, so nothing polls the store. Every attempt is recorded with its outcome.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from knock.connreq.http import HttpConnectionRequester, Sent
from knock.connreq.order import MethodOrder
from knock.connreq.udp_sender import UdpConnectionRequester
from knock.connreq.xmpp import XmppConnectionRequester
from knock.logs import fields
from knock.metrics import Metrics
from knock.notify import Arrival, Hub, SessionEnded, Subscription
from knock.store import Store
from knock.store.rows import CrTarget
from knock.vocab import CrMethod, CrOutcome, Event

log = logging.getLogger("knock.connreq")


@dataclass(frozen=True, slots=True)
class Attempt:
    method: CrMethod
    outcome: CrOutcome
    detail: str
    seconds: float  # from sending to the outcome


@dataclass(frozen=True, slots=True)
class CrResult:
    device_id: str
    outcome: CrOutcome
    method: CrMethod | None  # the method that delivered, or the last one tried
    latency: float | None  # seconds from sending the request to the device's Inform
    detail: str
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def delivered(self) -> bool:
        return self.outcome is CrOutcome.DELIVERED


@dataclass(frozen=True, slots=True)
class CrSettings:
    session_wait: float = 30.0  # TR-069 gives a device 30 s to start its session
    rate_limit_pause: float = 1.0  # before asking again when the device did not say how long
    udp_resend: float = 3.0  # a UDP request with no session by then is sent anew; 0: never
    order: MethodOrder = field(default_factory=MethodOrder)
    username: str | None = None  # used for devices Knock set no credentials on
    password: str | None = None


class Dispatcher:
    def __init__(
        self,
        store: Store,
        hub: Hub,
        http: HttpConnectionRequester,
        settings: CrSettings,
        udp: UdpConnectionRequester | None,
        xmpp: XmppConnectionRequester | None,
        in_session: Callable[[str], bool],
        clock: Callable[[], float] = time.monotonic,
        metrics: Metrics | None = None,
    ) -> None:
        self._store = store
        self._metrics = metrics or Metrics()
        self._hub = hub
        self._http = http
        self._udp = udp
        self._xmpp = xmpp
        self._settings = settings
        self._in_session = in_session
        self._clock = clock

    async def reach(
        self, device_id: str, within: float | None = None, via: CrMethod | None = None
    ) -> CrResult:
        """Try the device's methods in order (or only `via`) until one is delivered, for at most
        `within` seconds (default: the session wait)."""
        deadline = self._clock() + (within if within is not None else self._settings.session_wait)
        target = await self._store.get_cr_target(device_id)
        if target is None:
            return CrResult(device_id, CrOutcome.UNREACHABLE, via, None, "no such device")
        methods = [via] if via is not None else self.available_methods(target)
        if not methods:
            return CrResult(
                device_id,
                CrOutcome.UNREACHABLE,
                None,
                None,
                "the device reported no ConnectionRequestURL, XMPP JID or UDP address yet",
            )
        await self._session_over(device_id, deadline)
        attempts: list[Attempt] = []
        for method in methods:
            result = await self._attempt(target, method, deadline, attempts)
            if result.delivered or self._clock() >= deadline:
                return result
        return result

    async def _session_over(self, device_id: str, deadline: float) -> None:
        """A device in a session refuses connection requests (busy, TR-069 §3.2.2): wait for it
        to end, within the deadline, rather than spend the request on a 503."""
        with self._hub.subscribe(device_id) as announcements:
            # A session in another ACS process keeps the device as busy as one in this.
            if not (self._in_session(device_id) or self._hub.in_remote_session(device_id)):
                return
            try:
                async with asyncio.timeout(max(0.0, deadline - self._clock())):
                    while not isinstance(await announcements.next(), SessionEnded):
                        pass
            except TimeoutError:
                return  # the request is sent anyway, and its outcome says what happened

    async def reach_many(
        self, device_ids: Iterable[str], concurrency: int = 100, within: float | None = None
    ) -> list[CrResult]:
        """Fan out to many devices, at most `concurrency` requests in flight."""
        gate = asyncio.Semaphore(concurrency)

        async def one(device_id: str) -> CrResult:
            async with gate:
                return await self.reach(device_id, within)

        return list(await asyncio.gather(*(one(d) for d in device_ids)))

    async def nbi_hook(self, device_id: str, within: float) -> str | None:
        """The NBI's `?connection_request`: None once delivered, else the reason, as one line.
        A device in a session here needs no request: this process gives it the new task there.
        A session in another process may be at its end already: the request then follows it."""
        if self._in_session(device_id):
            return None
        result = await self.reach(device_id, within)
        return None if result.delivered else f"{result.outcome.value}: {result.detail}"

    async def _attempt(
        self, target: CrTarget, method: CrMethod, deadline: float, attempts: list[Attempt]
    ) -> CrResult:
        device_id = target.device_id
        attempt_id = await self._store.add_cr_attempt(device_id, method, _now())
        # Listen before sending, so that an Inform that comes at once is not missed.
        with self._hub.subscribe(device_id) as arrivals:
            sent, asked, start, sent_at = await self._send_past_rate_limit(target, method, deadline)
            outcome, detail, latency = sent.outcome, sent.detail, None
            if sent.accepted:
                wait_until = min(deadline, start + self._settings.session_wait)
                latency, sends = await self._wait_for_inform(target, method, arrivals, wait_until)
                again = (
                    f" (sent {_times(sends)}: no session followed the first)" if sends > 1 else ""
                )
                if latency is None:
                    outcome = CrOutcome.NO_SESSION
                    detail = (
                        f"{sent.detail}{again}, but no Inform with 6 CONNECTION REQUEST followed"
                    )
                else:
                    outcome, latency = CrOutcome.DELIVERED, latency - start
                    detail = f"{sent.detail}{again}; Inform after {latency * 1000:.0f} ms"
                if asked > 1:
                    detail = f"rate-limited {_times(asked - 1)}, then {detail}"
        assert outcome is not None
        # One duration, the latency when delivered, for the record, the NBI and the dashboard.
        took = latency if latency is not None else self._clock() - start
        await self._store.finish_cr_attempt(
            attempt_id, outcome, sent_at + timedelta(seconds=took), detail, started=sent_at
        )
        self._metrics.cr_attempts.labels(method, outcome).inc()
        if latency is not None:
            self._metrics.cr_latency.labels(method).observe(latency)
        log.info(
            "device %s: %s connection request %s (%s)",
            device_id,
            method,
            outcome,
            detail,
            extra=fields(
                event="connection-request",
                device_id=device_id,
                method=str(method),
                outcome=str(outcome),
                latency_s=None if latency is None else round(latency, 6),
                detail=detail,
            ),
        )
        attempts.append(Attempt(method, outcome, detail, took))
        return CrResult(device_id, outcome, method, latency, detail, list(attempts))

    async def _send_past_rate_limit(
        self, target: CrTarget, method: CrMethod, deadline: float
    ) -> tuple[Sent, int, float, datetime]:
        """Send; while the device answers rate-limited, wait as long as it asked (or the
        configured pause) and ask again, within the deadline. The last answer, how many times
        the device was asked, and when the last request went (on the clock, and UTC)."""
        asked = 1
        start, sent_at = self._clock(), _now()
        sent = await self._send(target, method)
        while sent.outcome is CrOutcome.RATE_LIMITED:
            pause = self._settings.rate_limit_pause
            if sent.retry_after is not None:
                pause = sent.retry_after
            if pause <= 0 or self._clock() + pause >= deadline:
                break
            await asyncio.sleep(pause)
            asked, start, sent_at = asked + 1, self._clock(), _now()
            sent = await self._send(target, method)
        return sent, asked, start, sent_at

    async def _wait_for_inform(
        self, target: CrTarget, method: CrMethod, arrivals: Subscription, wait_until: float
    ) -> tuple[float | None, int]:
        """When the Inform with 6 CONNECTION REQUEST came (or None), and how many requests
        were sent. A UDP request is sent anew while none comes: a device drops one that its
        rate limit refuses, without an answer, and a new id and ts pass once it allows."""
        resend = self._settings.udp_resend if method is CrMethod.UDP else 0.0
        sends = 1
        while True:
            until = wait_until if resend <= 0 else min(wait_until, self._clock() + resend)
            arrived = await _inform_with_cr(arrivals, until, self._clock)
            if arrived is not None or self._clock() >= wait_until:
                return arrived, sends
            if not (await self._send(target, method)).accepted:
                return None, sends
            sends += 1

    def available_methods(self, target: CrTarget) -> list[CrMethod]:
        """The methods the device can be reached by, in the order its group tries them (by
        default XMPP over the connection the device keeps open, then UDP through its NAT
        binding, then HTTP, which a NAT in front of the device blocks)."""
        usable = {
            # Offered even while the ACS's XMPP connection is down, so that the attempt (and why
            # it failed) is on record before the next method is tried.
            CrMethod.XMPP: self._xmpp is not None and bool(_jid(target)),
            CrMethod.UDP: self._udp is not None and self._udp.address_for(target) is not None,
            CrMethod.HTTP: bool(target.management.get("ConnectionRequestURL")),
        }
        return [m for m in self._settings.order.for_device(target.device_id) if usable[m]]

    async def _send(self, target: CrTarget, method: CrMethod) -> Sent:
        username, password = target.username, target.password
        if password is None:
            username, password = self._settings.username, self._settings.password
        if method is CrMethod.HTTP:
            url = target.management.get("ConnectionRequestURL", "")
            if not url:
                return Sent(CrOutcome.UNREACHABLE, "the device reported no ConnectionRequestURL")
            # A device may (wrongly) not ask for credentials: HTTP goes without them.
            return await self._http.send(url, username, password)
        if username is None or password is None:
            return Sent(
                CrOutcome.BAD_CREDENTIALS,
                f"a {method} request carries the device's connection-request credentials and "
                "Knock holds none for it (see cr_provision)",
            )
        if method is CrMethod.UDP:
            if self._udp is None:
                return Sent(CrOutcome.UNREACHABLE, "the STUN server is off (stun_enable)")
            address = self._udp.address_for(target)
            if address is None:
                return Sent(
                    CrOutcome.UNREACHABLE,
                    "no NAT binding from STUN and no UDPConnectionRequestAddress reported",
                )
            return await self._udp.send(address, username, password)
        if self._xmpp is None:
            return Sent(CrOutcome.UNREACHABLE, "the ACS has no XMPP connection (xmpp_enable)")
        jid = _jid(target)
        if not jid:
            return Sent(CrOutcome.UNREACHABLE, "the device reported no ConnReqJabberID yet")
        return await self._xmpp.send(
            jid, username, password, target.management.get("ConnReqAllowedJabberIDs")
        )


def _times(count: int) -> str:
    return "1 time" if count == 1 else f"{count} times"


def _jid(target: CrTarget) -> str:
    return target.management.get("ConnReqJabberID", "")


async def _inform_with_cr(
    arrivals: Subscription, wait_until: float, clock: Callable[[], float]
) -> float | None:
    """When (on `clock`) the device's Inform with 6 CONNECTION REQUEST arrived, or None."""
    try:
        async with asyncio.timeout(max(0.0, wait_until - clock())):
            while True:
                item = await arrivals.next()
                if isinstance(item, Arrival) and Event.CONNECTION_REQUEST in item.events:
                    return clock()
    except TimeoutError:
        return None


def _now() -> datetime:
    return datetime.now(UTC)
