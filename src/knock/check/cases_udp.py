"""UDP connection-request and STUN cases (TR-069 Annex G, TR-111 part 2).

The datagrams leave from the STUN server's socket, as the ACS's own UDP connection requests do
(a NAT lets nothing else in), to the address the STUN server last saw the device at. A refused
datagram is judged by the session that does not follow: before it, each such case sends a valid
request and waits for its session, so the device is shown to take UDP connection requests at
all and its last accepted ts and id are the case's own; then it waits for that session's end and
`rate_gap` seconds (`CheckContext.ready`), so a rate limit cannot pass for a refusal.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Final

from knock.check.cases import case
from knock.check.context import CheckContext, Watch
from knock.check.evidence import Kind
from knock.check.memo import Undo, memo, once
from knock.check.observe_stun import NO_STUN_CREDENTIALS, Seen, StunWatch, describe, stun_watch
from knock.check.offers import require
from knock.connreq.udp import build_udp_cr
from knock.connreq.udp_sender import parse_address, udp_address
from knock.hosts import authority, over
from knock.notify import Arrival
from knock.stun.attributes import CRB_VALUE, Address, AttributeType
from knock.vocab import Event

ANNEX_G: Final = "TR-069 Annex G"
TR111: Final = "TR-111 part 2 / TR-069 Annex G"
# STUNMinimum/MaximumKeepAlivePeriod the STUN cases set, so that they see several keep-alives
# within their timeout.
SHORT_KEEPALIVE: Final = (2, 4)
KEEPALIVES: Final = 2  # intervals between keep-alives measured
SLACK: Final = 1.0  # seconds a keep-alive may stray from the periods: timers, a loaded host


@dataclass(frozen=True, slots=True)
class Sent:
    ts: int
    msg_id: int


class UdpRequests:
    """Signed datagrams to the device from the STUN socket, each recorded as evidence."""

    def __init__(self, ctx: CheckContext, address: Address, username: str, password: str) -> None:
        self.ctx = ctx
        self.address = address
        self.username = username
        self.password = password

    def fresh(self) -> Sent:
        """A ts newer than any sent before and a new id. The ts keeps to the clock unless
        requests come faster than one a second: the ACS's own requests take the clock's, and
        the device would drop them as old if this ran ahead."""
        sent = memo(self.ctx).last_ts
        ts = max(int(time.time()), sent.get(self.ctx.device_id, 0) + 1)
        sent[self.ctx.device_id] = ts
        return Sent(ts, secrets.randbelow(2**31))

    async def send(
        self,
        sent: Sent,
        *,
        username: str | None = None,
        password: str | None = None,
        why: str = "valid",
        valid: bool = False,
    ) -> None:
        """The datagram for *sent*, signed with *password* (the device's by default), carrying
        *username* as un; `cr_attempts` copies, as an ACS sends them. A *valid* one counts as
        accepted: the checker waits for its session before the next request."""
        host, port = self.address
        datagram = build_udp_cr(
            host,
            port,
            self.username if username is None else username,
            self.password if password is None else password,
            sent.ts,
            sent.msg_id,
            secrets.token_hex(8),
        )
        stun = self.ctx.acs.stun
        assert stun is not None  # udp_requests skipped the case otherwise
        await self.ctx.before_request()
        copies = max(1, self.ctx.options.cr_attempts)
        self.ctx.evidence.add(
            Kind.SENT,
            f"{why} UDP CR ts={sent.ts} id={sent.msg_id} to {authority(host, port)} "
            f"({copies} copies){over(host)}",
            datagram.decode("ascii"),
        )
        if valid:  # before sending: its session may begin before the copies are out
            self.ctx.dut.last_accepted = time.monotonic()
        for copy in range(copies):
            if copy:
                await asyncio.sleep(self.ctx.options.cr_interval)
            stun.send_to(datagram, self.address)


async def device_address(ctx: CheckContext) -> Address:
    """Where UDP connection requests reach the device, as the ACS's own go."""
    target = await ctx.target()
    stun = ctx.acs.stun

    def live(username: str) -> Address | None:
        binding = None if stun is None else stun.bindings.get(username)
        return None if binding is None else binding.address

    address = udp_address(target, live)
    if address is None:
        reported = target.management.get("UDPConnectionRequestAddress", "")
        ctx.fail(
            f"the device reported no usable UDPConnectionRequestAddress ({reported!r}) and the "
            "STUN server holds no binding for it"
        )
    return address


async def udp_requests(ctx: CheckContext) -> UdpRequests:
    if ctx.acs.stun is None:
        ctx.skip("the ACS runs no STUN server, whose socket UDP connection requests leave from")
    await require(ctx, "STUN")
    target = await ctx.target()
    if not target.management.get("UDPConnectionRequestAddress"):
        ctx.skip("the device reports no UDPConnectionRequestAddress: it offers no UDP CRs")
    username, password = await ctx.credentials()
    address = await device_address(ctx)
    if ctx.options.udp_delay:
        ctx.note(f"waiting {ctx.options.udp_delay:g} s before the first UDP CR (udp_delay)")
        await asyncio.sleep(ctx.options.udp_delay)
    return UdpRequests(ctx, address, username, password)


async def accepted_first(ctx: CheckContext, requests: UdpRequests) -> Sent:
    """A valid request and its session, so the device's last accepted ts and id are known;
    then the wait for its rate limit."""
    with ctx.watch() as sessions:
        sent = requests.fresh()
        await requests.send(sent, why="valid (to set the last accepted ts and id)", valid=True)
        await sessions.inform(None)
    await ctx.ready()  # its session over, and its rate limit
    return sent


async def refused(
    ctx: CheckContext,
    requests: UdpRequests,
    sent: Sent,
    why: str,
    *,
    username: str | None = None,
    password: str | None = None,
) -> None:
    with ctx.watch() as sessions:
        await requests.send(sent, username=username, password=password, why=why)
        await sessions.no_session()


@case(
    "udp.valid-cr",
    ANNEX_G,
    "A signed UDP CR with a new ts and id gives a session with 6 CONNECTION REQUEST",
)
async def valid_cr(ctx: CheckContext) -> None:
    requests = await udp_requests(ctx)
    with ctx.watch() as sessions:
        await requests.send(requests.fresh(), valid=True)
        await sessions.inform()


@case(
    "udp.bad-sig", ANNEX_G, "A UDP CR whose sig is not keyed with the CR password gives no session"
)
async def bad_sig(ctx: CheckContext) -> None:
    requests = await udp_requests(ctx)
    await accepted_first(ctx, requests)
    wrong = "knock-check-" + secrets.token_hex(4)
    await refused(ctx, requests, requests.fresh(), "wrongly signed", password=wrong)


@case("udp.old-ts", ANNEX_G, "A UDP CR whose ts is older than the last accepted gives no session")
async def old_ts(ctx: CheckContext) -> None:
    requests = await udp_requests(ctx)
    last = await accepted_first(ctx, requests)
    stale = Sent(last.ts - 1, requests.fresh().msg_id)
    await refused(ctx, requests, stale, "old ts (new id)")


@case(
    "udp.repeated-id",
    ANNEX_G,
    "A UDP CR with the id of the last accepted one gives no session, even with a newer ts",
)
async def repeated_id(ctx: CheckContext) -> None:
    requests = await udp_requests(ctx)
    last = await accepted_first(ctx, requests)
    again = Sent(requests.fresh().ts, last.msg_id)
    await refused(ctx, requests, again, "repeated id (new ts)")


@case(
    "udp.wrong-username",
    ANNEX_G,
    "A UDP CR whose un is not the CR username gives no session, even when signed for that un",
)
async def wrong_username(ctx: CheckContext) -> None:
    requests = await udp_requests(ctx)
    await accepted_first(ctx, requests)
    other = requests.username + "-not"
    await refused(ctx, requests, requests.fresh(), "other un", username=other)


# --- STUN -----------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def short_keepalives(ctx: CheckContext) -> AsyncIterator[tuple[int, int]]:
    """Keep-alive periods short enough to watch several keep-alives within a case: the first
    case of a run sets them on the device (the ACS stores no values it set, so what the device
    holds is only known by setting it) and they stay for the rest of the run, at whose end
    the values the device had come back."""
    names = (ctx.ms("STUNMinimumKeepAlivePeriod"), ctx.ms("STUNMaximumKeepAlivePeriod"))

    await require(ctx, "STUN")  # before setting what a device without STUN lacks

    async def shorten() -> Undo:
        ctx.note(f"setting keep-alive periods of {SHORT_KEEPALIVE[0]}-{SHORT_KEEPALIVE[1]} s")
        return await ctx.change(dict(zip(names, map(str, SHORT_KEEPALIVE), strict=True)))

    await once(ctx, "short keep-alives", shorten)
    yield SHORT_KEEPALIVE


@case(
    "udp.binding-request",
    TR111,
    "The device's Binding Requests carry CONNECTION-REQUEST-BINDING "
    "('dslforum.org/TR-111 ') and USERNAME (its STUNUsername)",
)
async def binding_request(ctx: CheckContext) -> None:
    async with short_keepalives(ctx) as (_low, high), stun_watch(ctx) as watch:
        seen = await watch.next(high + SLACK + 1)
    crb = seen.request.first(AttributeType.CONNECTION_REQUEST_BINDING)
    ctx.expect(crb is not None, "the Binding Request lacks CONNECTION-REQUEST-BINDING")
    ctx.expect(crb == CRB_VALUE, f"CONNECTION-REQUEST-BINDING is {crb!r}, not {CRB_VALUE!r}")
    target = await ctx.target()
    ctx.expect(
        seen.request.username == target.stun_username,
        f"USERNAME is {seen.request.username!r}, not the STUNUsername "
        f"{target.stun_username!r} Knock set",
    )


@case(
    "udp.stun-integrity",
    TR111,
    "After a 401 from the STUN server, the device's Binding Requests carry MESSAGE-INTEGRITY",
)
async def stun_integrity(ctx: CheckContext) -> None:
    stun = ctx.acs.stun
    if stun is not None and not stun.service.settings.require_auth:
        ctx.skip("the STUN server asks for no authentication (stun_require_auth is off)")
    async with short_keepalives(ctx) as (_low, high), stun_watch(ctx) as watch:
        within = KEEPALIVES * (high + SLACK) + 1
        first = await watch.first(lambda s: s.challenged or s.request.integrity is not None, within)
        if first is None:
            ctx.fail(f"no Binding Request within {within:g} s was refused with 401 or signed")
        if not first.challenged:
            ctx.note("the device signs its requests already: no 401 to answer")
            return
        seen = await watch.next(high + SLACK + 1, "Binding Request after a 401")
    ctx.expect(
        seen.request.integrity is not None,
        "the Binding Request after the STUN server's 401 carries no MESSAGE-INTEGRITY",
    )
    ctx.expect(
        not seen.challenged,
        "the signed Binding Request after the 401 was refused too: its "
        "MESSAGE-INTEGRITY is not keyed with STUNPassword",
    )


@case(
    "udp.address-mapped",
    TR111,
    "UDPConnectionRequestAddress is reported and equals the address the STUN server sees",
)
async def address_mapped(ctx: CheckContext) -> None:
    stun = ctx.acs.stun
    if stun is None:
        ctx.skip("the ACS runs no STUN server (stun_enable is off)")
    await require(ctx, "STUN")
    target = await ctx.target()
    if target.stun_username is None:
        ctx.skip(NO_STUN_CREDENTIALS)
    within = ctx.options.inform_within
    deadline = asyncio.get_running_loop().time() + within
    name = ctx.ms("UDPConnectionRequestAddress")
    with ctx.watch() as sessions:
        while True:
            reported = (await ctx.parameters(name)).get(name, "")
            binding = stun.bindings.get(target.stun_username)
            if binding is not None and parse_address(reported) == binding.address:
                ctx.note(f"reported {reported}, the STUN server sees {binding.address}")
                return
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                break
            await sessions.collect(min(left, 0.2))
    seen = "no binding" if binding is None else f"{binding.address[0]}:{binding.address[1]}"
    ctx.fail(
        f"the device reports UDPConnectionRequestAddress {reported!r}, the STUN server sees {seen}"
    )


@case(
    "udp.keepalive-periods",
    TR111,
    "Binding Requests come between STUNMinimumKeepAlivePeriod and STUNMaximumKeepAlivePeriod apart",
)
async def keepalive_period(ctx: CheckContext) -> None:
    async with short_keepalives(ctx) as (low, high), stun_watch(ctx) as watch:
        ctx.note(f"periods {low}-{high} s, give or take {SLACK} s; watching {KEEPALIVES} intervals")
        starts: list[Seen] = []  # the first request of each keep-alive
        last: Seen | None = None
        while len(starts) <= KEEPALIVES:
            seen = await watch.next(high + SLACK + 1, "keep-alive")
            # A retransmission shares its transaction, and the signed retry a 401 asks for
            # follows at once: neither is a keep-alive of its own.
            retry = last is not None and (
                seen.request.txid == last.request.txid
                or (last.challenged and seen.request.integrity is not None)
            )
            if not retry:
                starts.append(seen)
            last = seen
    gaps = [round(b.at - a.at, 2) for a, b in itertools.pairwise(starts)]
    ctx.note(f"intervals: {', '.join(f'{gap:g} s' for gap in gaps)}")
    for gap in gaps:
        ctx.expect(gap >= low - SLACK, f"a keep-alive came {gap:g} s after the last, under {low} s")
        ctx.expect(
            gap <= high + SLACK, f"a keep-alive came {gap:g} s after the last, over {high} s"
        )


@case(
    "udp.binding-change",
    TR111,
    "When STUN answers another mapped address, the device's next Binding Request carries "
    "BINDING-CHANGE",
)
async def binding_change(ctx: CheckContext) -> None:
    target = await ctx.target()
    stun_password = None
    if target.stun_username is not None:
        stun_password = (await ctx.acs.store.stun_passwords()).get(target.stun_username)
    async with short_keepalives(ctx) as (_low, high), stun_watch(ctx) as watch:
        host, port = await device_address(ctx)
        moved = (host, port + 1 if port < 0xFFFF else port - 1)
        with ctx.watch() as sessions:
            watch.move_next(moved, stun_password)
            within = high + SLACK + 1
            await mapping_moved(ctx, watch, moved, KEEPALIVES * within)
            ctx.note(f"told the device its mapping is now {moved[0]}:{moved[1]}")
            after = await watch.next(within, "Binding Request after the moved mapping")
            await mapping_restored(ctx, sessions, (host, port))
    ctx.expect(
        after.request.binding_change,
        f"the first Binding Request after the mapping moved lacks BINDING-CHANGE "
        f"({describe(after.request)})",
    )


async def mapping_moved(ctx: CheckContext, watch: StunWatch, moved: Address, within: float) -> None:
    """Wait until the STUN server has answered the device with the *moved* mapping: only a
    Binding Response can carry it, so a device whose requests are all refused fails here."""

    def told(seen: Seen) -> bool:
        return (
            seen.answer is not None and seen.answer.address(AttributeType.MAPPED_ADDRESS) == moved
        )

    if await watch.first(told, within) is None:
        ctx.fail(
            f"the STUN server answered none of the device's Binding Requests within {within:g} s "
            "with a Binding Response, which alone can move its mapping (udp.stun-integrity tells "
            "why)"
        )


async def mapping_restored(ctx: CheckContext, sessions: Watch, true: Address) -> None:
    """Wait until the device has informed its true mapping again and that session ended. The
    STUN server's next answer moves it back after a case moved it, and the device reports that
    in a session of its own, which would otherwise begin in the next case and meet its request.
    A device that does not report it (no active notification: datamodel.udp-address-notify
    judges that) is waited for `inform_within` seconds and noted, not failed."""
    name = ctx.ms("UDPConnectionRequestAddress")
    value = f"{true[0]}:{true[1]}"
    wait = ctx.options.inform_within

    def reports_true(arrival: Arrival) -> bool:
        return Event.VALUE_CHANGE in arrival.events and dict(arrival.parameters).get(name) == value

    arrival = await sessions.first(reports_true, wait)
    if arrival is None:
        ctx.note(f"the device did not inform {name} = {value} again within {wait:g} s")
        return
    ctx.note(f"the device informed its true mapping {value} again")
    await sessions.session_end(arrival.session_id)
