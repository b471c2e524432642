"""How the device carries a session a connection request opened: it ends its turn with an
empty HTTP POST and the session ends at the ACS's empty answer (TR-069 §3.7.1), its responses
echo the cwmp:ID of the ACS's requests (§3.5), it returns the ACS's session cookie (§3.4.2);
and how it retries a session that failed (§3.2.1.1).

Knock's ACS copes with a device that breaks the first three where it can still read the device
(`knock.cwmp.breaches`) and records each breach on the session: these cases judge that record,
so a device that breaks one rule fails that rule's case and no other."""

from __future__ import annotations

import time
from typing import Final

from knock.acs.service import Failure
from knock.check.cases import case
from knock.check.cases_rpc import ok
from knock.check.context import CheckContext
from knock.check.memo import memo
from knock.check.per_method import per_method
from knock.cwmp.breaches import Rule
from knock.notify import SessionEnded
from knock.vocab import Event

EARLY: Final = 0.5  # seconds a retry may come before its range: clocks and timers differ
LATE: Final = 2.0  # and after it: the connection, TLS, a loaded device
METHOD_NOT_SUPPORTED: Final = "9000"
# TR-069 §3.2.1.1: the defaults of CWMPRetryMinimumWaitInterval and CWMPRetryIntervalMultiplier.
DEFAULT_MINIMUM_WAIT: Final = 5
DEFAULT_MULTIPLIER: Final = 2000
# How the check's ACS fails the sessions it times the retries after: an HTTP error, then a
# connection closed unanswered; neither session ends normally, so each must be retried.
FAILURES: Final = (Failure.HTTP_503, Failure.DROP)


async def recorded(ctx: CheckContext) -> SessionEnded:
    """How the ACS recorded the end of a session a connection request by the case's method
    opened, the ACS sending one request in it (GetParameterValues of ConnectionRequestURL).
    One such session per method and run: the profile's other cases judge its record."""
    key = (ctx.device_id, str(ctx.via))
    ended = memo(ctx).sessions.get(key)
    if ended is not None:
        ctx.note(
            f"judged on session {ended.session_id}, which a {ctx.via} connection request of "
            f"an earlier session.{ctx.via}.* case opened"
        )
    else:
        with ctx.watch() as sessions:
            await ctx.read(ctx.ms("ConnectionRequestURL"))
            arrival = await sessions.inform(Event.CONNECTION_REQUEST)
            ended = await sessions.session_end(arrival.session_id)
        memo(ctx).sessions[key] = ended
    kept = "; ".join(map(str, ended.breaches)) or "none"
    ctx.note(f"session {ended.session_id} ended {ended.outcome}; rules broken: {kept}")
    return ended


def judge(ctx: CheckContext, ended: SessionEnded, rule: Rule) -> None:
    """Fail the case when the ACS recorded a breach of *rule* in the session *ended*."""
    for breach in ended.breaches:
        ctx.expect(breach.rule is not rule, f"session {ended.session_id}: {breach.detail}")


@per_method(
    "session",
    "empty-post",
    "TR-069 §3.7.1 (session procedure), §3.4.2",
    "With nothing more to ask, the device sends an empty HTTP POST, the ACS sends its request, "
    "and the session ends at the ACS's empty 204 answer",
)
async def empty_post(ctx: CheckContext) -> None:
    ended = await recorded(ctx)
    judge(ctx, ended, Rule.EMPTY_POST)
    ctx.expect(
        ended.outcome == "ok",
        f"session {ended.session_id} ended {ended.outcome}, not at the ACS's 204 after the "
        "device's empty POST",
    )


@per_method(
    "session",
    "cwmp-id",
    "TR-069 §3.5 (Table 4, cwmp:ID)",
    "The device's response to the ACS's request carries that request's cwmp:ID",
)
async def cwmp_id(ctx: CheckContext) -> None:
    judge(ctx, await recorded(ctx), Rule.CWMP_ID)


@per_method(
    "session",
    "cookies",
    "TR-069 §3.4.2 (cookies)",
    "The device returns the session cookie the ACS set on its InformResponse with every later "
    "POST of the session",
)
async def cookies(ctx: CheckContext) -> None:
    judge(ctx, await recorded(ctx), Rule.COOKIE)


def retry_range(nth: int, minimum_wait: int, multiplier: int) -> tuple[float, float]:
    """TR-069 §3.2.1.1 (Table 3): seconds from the *nth* failed session in a row to the next
    attempt, from CWMPRetryMinimumWaitInterval and CWMPRetryIntervalMultiplier (per mille)."""
    step = min(nth, 10) - 1  # from the tenth retry on the range stops growing
    ratio = multiplier / 1000
    return minimum_wait * ratio**step, minimum_wait * ratio ** (step + 1)


@case(
    "session.retry-backoff",
    "TR-069 §3.2.1.1 (Table 3, session retry), Annex A.3.3.1 (RetryCount)",
    "The session a ScheduleInform (sent in a session a connection request opened) asks for is "
    "failed by the ACS (HTTP 503, then a connection closed unanswered): the device tries again "
    "within the range CWMPRetryMinimumWaitInterval and CWMPRetryIntervalMultiplier give for "
    f"each retry ({EARLY:g} s early to {LATE:g} s late), its Inform's RetryCount counting the "
    "failures",
)
async def retry_backoff(ctx: CheckContext) -> None:
    # As the device reported them; TR-069's defaults where it did not.
    name, factor = ctx.ms("CWMPRetryMinimumWaitInterval"), ctx.ms("CWMPRetryIntervalMultiplier")
    known = await ctx.parameters(name, factor)
    minimum_wait = int(known.get(name, DEFAULT_MINIMUM_WAIT))
    multiplier = int(known.get(factor, DEFAULT_MULTIPLIER))
    undo = None
    wanted = ctx.options.retry_wait
    if wanted and wanted != minimum_wait:
        if name not in known:
            ctx.note(f"the device reports no {name}: timed against TR-069's {minimum_wait} s")
        else:
            undo = await ctx.change({name: str(wanted)})
            minimum_wait = wanted
    try:
        await timed_retries(ctx, minimum_wait, multiplier)
    finally:
        if undo is not None:
            await undo(ctx)


async def timed_retries(ctx: CheckContext, minimum_wait: int, multiplier: int) -> None:
    """A failed session whose only event is 6 CONNECTION REQUEST need not be retried (TR-069
    §3.7.1.5 lets the device discard that event): the sessions failed here are those of a
    ScheduleInform, whose 3 SCHEDULED the device must keep until an Inform delivers it."""
    acs = ctx.acs.acs
    delay = ctx.options.schedule_delay
    spec = {"name": "scheduleInform", "delaySeconds": delay, "commandKey": "knock-retry"}
    with ctx.watch() as sessions:
        asked = await ctx.run_task(spec)
        if asked.fault_code == METHOD_NOT_SUPPORTED:
            # ScheduleInform is optional (Annex A.3.1, Table 5): no session here to retry.
            ctx.skip(
                "the device does not support ScheduleInform (9000), whose session the case "
                "fails to time the retries"
            )
        ok(ctx, asked)
        ctx.note(
            f"the ACS fails the next {len(FAILURES)} sessions ({', '.join(FAILURES)}); retries "
            f"timed against CWMPRetryMinimumWaitInterval {minimum_wait}, "
            f"CWMPRetryIntervalMultiplier {multiplier}"
        )
        acs.fail_sessions(ctx.device_id, FAILURES)
        try:
            first = await sessions.inform(Event.SCHEDULED, delay + ctx.options.inform_within)
            moments = [time.monotonic()]
            arrivals = [first]
            for nth in range(1, len(FAILURES) + 1):
                low, high = retry_range(nth, minimum_wait, multiplier)
                arrival = await sessions.inform(Event.SCHEDULED, high + LATE + 1, nth + 1)
                moments.append(time.monotonic())
                arrivals.append(arrival)
                gap = moments[-1] - moments[-2]
                ctx.note(
                    f"retry {nth} (session {arrival.session_id}, RetryCount "
                    f"{arrival.retry_count}) {gap:.2f} s after the failure; Table 3 gives "
                    f"{low:g}-{high:g} s"
                )
                ctx.expect(
                    low - EARLY <= gap <= high + LATE,
                    f"retry {nth} came {gap:.2f} s after the failed session, outside "
                    f"{low:g}-{high:g} s (TR-069 §3.2.1.1, Table 3)",
                )
                ctx.expect(
                    arrival.retry_count == nth,
                    f"the Inform of retry {nth} carries RetryCount {arrival.retry_count}, "
                    f"not {nth}",
                )
        finally:
            acs.fail_sessions(ctx.device_id, ())
        await sessions.session_end(arrivals[-1].session_id)
