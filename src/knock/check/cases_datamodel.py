"""Data-model and Inform cases: the connection-request profiles, ConnectionRequestURL in the
Informs, credentials of the longest length, active notification of the addresses."""

from __future__ import annotations

import asyncio
import secrets
from urllib.parse import urlsplit

from knock.check.cases import case
from knock.check.cases_udp import SLACK, device_address, mapping_restored, short_keepalives
from knock.check.context import CheckContext, Watch
from knock.check.observe_stun import stun_watch
from knock.check.offers import Method, require
from knock.check.profiles import shortfalls
from knock.hosts import unbracketed_ipv6
from knock.stun.attributes import Address
from knock.stun.service import Handled
from knock.vocab import Event, TaskStatus

# TR-069 Annex A: ConnectionRequestUsername/Password are string(256).
LONGEST = 256


async def _names(ctx: CheckContext, *objects: str) -> dict[str, bool]:
    """Every parameter under *objects* (relative to the root) by GetParameterNames, with
    whether it is writable."""
    names: dict[str, bool] = {}
    for obj in objects:
        done = await ctx.run_task({"name": "getParameterNames", "objectName": ctx.dut.root + obj})
        if done.status == TaskStatus.FAULTED:
            ctx.fail(
                f"GetParameterNames of {ctx.dut.root}{obj} faulted: "
                f"{done.fault_code} {done.fault_string}"
            )
        names.update({str(name): bool(writable) for name, writable in done.result})
    return names


async def _profile(ctx: CheckContext, profile: str, method: Method, *objects: str) -> None:
    await require(ctx, method, declared_only=True)
    missing, read_only = shortfalls(profile, ctx.dut.root, await _names(ctx, *objects))
    problems = []
    if missing:
        problems.append(f"missing: {', '.join(missing)}")
    if read_only:
        problems.append(f"read-only where {profile} requires write access: {', '.join(read_only)}")
    ctx.expect(not problems, f"{profile}: " + "; ".join(problems))


@case(
    "datamodel.xmpp-basic-profile",
    "TR-181 XMPPBasic:1",
    "The parameters of the XMPPBasic:1 profile are present with the access it requires",
)
async def xmpp_basic(ctx: CheckContext) -> None:
    await _profile(ctx, "XMPPBasic:1", "XMPP", "XMPP.")


@case(
    "datamodel.xmpp-connreq-profile",
    "TR-181 XMPPConnReq:1, TR-069 Annex K",
    "The parameters of the XMPPConnReq:1 profile are present with the access it requires",
)
async def xmpp_connreq(ctx: CheckContext) -> None:
    await _profile(ctx, "XMPPConnReq:1", "XMPP", "ManagementServer.")


@case(
    "datamodel.udp-connreq-profile",
    "TR-181/TR-098 UDPConnReq:1, TR-069 Annex G",
    "The parameters of the UDPConnReq:1 profile are present with the access it requires",
)
async def udp_connreq(ctx: CheckContext) -> None:
    await _profile(ctx, "UDPConnReq:1", "STUN", "ManagementServer.")


@case(
    "datamodel.cr-url-http",
    "TR-069 §3.2.2, §3.7.1.5 (Inform)",
    "Every Inform carries ManagementServer.ConnectionRequestURL, an http:// URL",
)
async def cr_url_http(ctx: CheckContext) -> None:
    name = ctx.ms("ConnectionRequestURL")
    informs = ctx.dut.informs
    ctx.note(f"{len(informs)} Informs seen since the device first came")
    for arrival in informs:
        values = dict(arrival.parameters)
        ctx.expect(
            name in values,
            f"the Inform of session {arrival.session_id} [{', '.join(arrival.events)}] "
            f"lacks {name}",
        )
        url = values[name]
        ctx.expect(
            urlsplit(url).scheme == "http",
            f"the Inform of session {arrival.session_id} reports {name} = {url!r}: "
            "TR-069 §3.2.2 requires an http:// URL",
        )
        ctx.expect(
            not unbracketed_ipv6(url),
            f"the Inform of session {arrival.session_id} reports {name} = {url!r}: an IPv6 "
            "address in a URL goes in brackets (RFC 3986 §3.2.2)",
        )


@case(
    "datamodel.cr-credentials-256",
    "TR-069 Annex A (ManagementServer), §3.2.2",
    "ConnectionRequestUsername and ConnectionRequestPassword of 256 characters are accepted "
    "and a CR with them opens a session",
)
async def credentials_256(ctx: CheckContext) -> None:
    username = ("knock-check-" + secrets.token_hex(LONGEST))[:LONGEST]
    password = secrets.token_urlsafe(LONGEST)[:LONGEST]
    await ctx.set_values(
        {
            ctx.ms("ConnectionRequestUsername"): username,
            ctx.ms("ConnectionRequestPassword"): password,
        }
    )
    # Knock's other connection requests (UDP signatures, XMPP IQs) now need the new pair too.
    await ctx.acs.store.set_cr_credentials(ctx.device_id, username, password)
    await ctx.ready()
    with ctx.watch() as sessions:
        answer = await ctx.digest_cr(username, password)
        ctx.expect(
            answer.status in (200, 204),
            f"a CR with the {LONGEST}-character credentials was answered {answer.status}",
        )
        await sessions.inform(None)


@case(
    "datamodel.jid-notify",
    "TR-069 Annex K, TR-181 ManagementServer.ConnReqJabberID",
    "ConnReqJabberID has active notification, and a change of it is informed at once with "
    "4 VALUE CHANGE",
)
async def jid_notify(ctx: CheckContext) -> None:
    await require(ctx, "XMPP")
    name = ctx.ms("ConnReqJabberID")
    await _active(ctx, name)
    reference = ctx.ms("ConnReqXMPPConnection")
    row = (await ctx.read(reference)).get(reference, "").rstrip(".")
    if not row:
        ctx.fail(f"{reference} is empty: the device names no XMPP connection for CRs")
    resource = f"knock-check-{secrets.token_hex(4)}"
    ctx.note(f"changing {row}.Resource to {resource}: the device's JID changes with it")
    with ctx.watch() as sessions:
        await ctx.set_values({f"{row}.Resource": resource})
        while True:
            arrival = await sessions.inform(Event.VALUE_CHANGE, nth=len(sessions.arrivals) + 1)
            reported = dict(arrival.parameters).get(name, "")
            if reported.endswith("/" + resource):
                return
            ctx.note(f"an Inform with 4 VALUE CHANGE but {name} = {reported!r}")


@case(
    "datamodel.udp-address-notify",
    "TR-069 Annex G, TR-111 part 2",
    "UDPConnectionRequestAddress has active notification, and when STUN answers another mapping "
    "the new address is informed at once with 4 VALUE CHANGE",
)
async def udp_address_notify(ctx: CheckContext) -> None:
    await require(ctx, "STUN")
    name = ctx.ms("UDPConnectionRequestAddress")
    await _active(ctx, name)
    target = await ctx.target()
    stun_password = None
    if target.stun_username is not None:
        stun_password = (await ctx.acs.store.stun_passwords()).get(target.stun_username)
    server = ctx.acs.stun
    async with short_keepalives(ctx) as (_low, high), stun_watch(ctx) as stun:
        assert server is not None  # stun_watch skips the case without one
        host, port = await device_address(ctx)
        within = high + SLACK + ctx.options.inform_within
        with ctx.watch() as sessions:
            # Two moves: behind a NAT each tests the address alone; on a device that sees its
            # own address at first (no NAT), the first also flips NATDetected, whose own
            # notification would carry the address along, so only the second tells.
            for step in (1, 2):
                moved = (host, port + step if port + step <= 0xFFFF else port - step)
                ctx.note(f"STUN answers the device with MAPPED-ADDRESS {host}:{moved[1]}")

                def keep(data: bytes, source: Address, handled: Handled, now: float) -> Handled:
                    # Runs after the watch's tap: every answer from now on is moved, as a
                    # NAT binding that moved would be.
                    stun.move_next(moved, stun_password)  # noqa: B023 - called within the step
                    return handled

                stun.move_next(moved, stun_password)
                with server.tapped(keep):
                    await _informed(ctx, sessions, name, f"{host}:{moved[1]}", within)
            await mapping_restored(ctx, sessions, (host, port))


async def _informed(
    ctx: CheckContext, sessions: Watch, name: str, value: str, within: float
) -> None:
    """Wait for an Inform with 4 VALUE CHANGE reporting *name* = *value*."""
    try:
        async with asyncio.timeout(within):
            while True:
                arrival = await sessions.inform(
                    Event.VALUE_CHANGE, within, nth=_value_changes(sessions) + 1
                )
                if dict(arrival.parameters).get(name) == value:
                    ctx.note(f"{name} = {value} informed at once")
                    return
    except TimeoutError:
        pass
    ctx.fail(f"no Inform with 4 VALUE CHANGE reported {name} = {value} within {within:g} s")


def _value_changes(sessions: Watch) -> int:
    return sum(Event.VALUE_CHANGE in a.events for a in sessions.arrivals)


async def _active(ctx: CheckContext, name: str) -> None:
    done = await ctx.run_task({"name": "getParameterAttributes", "parameterNames": [name]})
    if done.status == TaskStatus.FAULTED:
        ctx.fail(f"GetParameterAttributes of {name} faulted: {done.fault_code} {done.fault_string}")
    notification = {str(n): int(level) for n, level, _access in done.result}.get(name)
    ctx.expect(
        notification == 2,
        f"{name} has Notification {notification}, not 2 (active): the ACS would learn a new "
        "address only at the next periodic Inform",
    )
