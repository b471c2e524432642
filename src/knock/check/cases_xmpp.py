"""XMPP connection-request cases (TR-069 Annex K).

Requests come from the ACS's own JID (the one the ACS put in ConnReqAllowedJabberIDs) or, for
the refusals of other senders, from a second account on the built-in XMPP server. A refusal is
judged by its exact error condition and by the session that does not follow.
"""

from __future__ import annotations

import asyncio
from typing import Final

from lxml import etree

from knock.check.cases import case
from knock.check.context import CheckContext
from knock.check.xmpp_probe import (
    RETRY_INITIAL,
    ask,
    bare,
    built_in,
    device_jid,
    from_acs,
    logged_in,
    probe,
    valid_request,
)
from knock.connreq.xmpp import CONN_REQ_NS, connection_request
from knock.xmpp import ns
from knock.xmpp.client import IqResult
from knock.xmpp.jid import JidError, parse_jid

ANNEX_K: Final = "TR-069 Annex K"
ALLOWED_RESOURCE: Final = "allowed"  # the full JID the prefix case lists...
PREFIXED_RESOURCE: Final = "allowed-not"  # ...and the one it sends from, sharing its prefix


def expect_condition(ctx: CheckContext, answer: IqResult | None, condition: str) -> None:
    ctx.expect(answer is not None, f"the device did not answer; expected {condition}")
    assert answer is not None
    got = "a result" if answer.error is None else repr(answer.error.condition)
    ctx.expect(
        answer.error is not None and answer.error.condition == condition,
        f"the device answered {got}, not {condition!r}",
    )


@case(
    "xmpp.jid-reported",
    ANNEX_K,
    "ConnReqJabberID is reported, a full JID, and online on the XMPP server",
)
async def jid_reported(ctx: CheckContext) -> None:
    jid = await device_jid(ctx)
    try:
        parsed = parse_jid(jid)
    except JidError as exc:
        ctx.fail(f"ConnReqJabberID {jid!r} is not a JID: {exc}")
    ctx.expect(parsed.is_full, f"ConnReqJabberID {jid} has no resource: IQs cannot reach it")
    if ctx.acs.xmpp is not None:
        ctx.expect(
            parsed in ctx.acs.xmpp.sessions,
            f"no connection is bound as {jid} on the built-in XMPP server",
        )


@case(
    "xmpp.valid-cr",
    ANNEX_K,
    "A connectionRequest IQ from an allowed JID with the CR credentials is answered with a "
    "result, then an Inform with 6 CONNECTION REQUEST follows",
)
async def valid_cr(ctx: CheckContext) -> None:
    jid = await device_jid(ctx)
    with ctx.watch() as sessions:
        answer = await from_acs(ctx, jid, await valid_request(ctx), "valid CR")
        ctx.expect(answer is not None, "the device did not answer the connectionRequest IQ")
        assert answer is not None
        ctx.expect(
            answer.error is None,
            f"the device answered {answer.error.describe() if answer.error else ''}, not a result",
        )
        await sessions.inform()


@case(
    "xmpp.unlisted-jid",
    ANNEX_K,
    "A connectionRequest IQ from a JID not in ConnReqAllowedJabberIDs is answered "
    "service-unavailable and gives no session",
)
async def unlisted_jid(ctx: CheckContext) -> None:
    jid = await device_jid(ctx)
    async with probe(ctx, "unlisted") as (sender, send):
        with ctx.watch() as sessions:
            content = await valid_request(ctx)
            answer = await ask(ctx, sender, send, jid, content, "CR from an unlisted JID")
            expect_condition(ctx, answer, "service-unavailable")
            await sessions.no_session()


@case(
    "xmpp.prefix-jid",
    ANNEX_K,
    "A connectionRequest IQ from a JID that only shares a prefix with an allowed full JID is "
    "answered service-unavailable and gives no session",
)
async def prefix_jid(ctx: CheckContext) -> None:
    jid = await device_jid(ctx)
    server = built_in(ctx)
    requester = ctx.acs.xmpp_requester
    if requester is None or not requester.status.jid:
        ctx.skip("the ACS is not connected to its XMPP server")
    acs = bare(requester.status.jid)
    listed = f"{acs},knock-check@{server.policy.domain}/{ALLOWED_RESOURCE}"
    allowed = ctx.ms("ConnReqAllowedJabberIDs")
    await ctx.set_values({allowed: listed})
    try:
        await ctx.ready()  # a rate-limited refusal would prove nothing
        async with probe(ctx, PREFIXED_RESOURCE) as (sender, send):
            with ctx.watch() as sessions:
                content = await valid_request(ctx)
                answer = await ask(ctx, sender, send, jid, content, "CR from a prefixed JID")
                expect_condition(ctx, answer, "service-unavailable")
                await sessions.no_session()
    finally:
        await ctx.set_values({allowed: acs})  # what the ACS provisions


@case(
    "xmpp.wrong-credentials",
    ANNEX_K,
    "A connectionRequest IQ with a wrong password is answered not-authorized (so spelt) and "
    "gives no session",
)
async def wrong_credentials(ctx: CheckContext) -> None:
    jid = await device_jid(ctx)
    username, password = await ctx.credentials()
    with ctx.watch() as sessions:
        content = connection_request(username, password + "-wrong")
        answer = await from_acs(ctx, jid, content, "CR with a wrong password")
        expect_condition(ctx, answer, "not-authorized")
        await sessions.no_session()


@case(
    "xmpp.malformed-iq",
    ANNEX_K,
    "A connectionRequest IQ without its password element is answered with an error",
)
async def malformed_iq(ctx: CheckContext) -> None:
    jid = await device_jid(ctx)
    username, _password = await ctx.credentials()
    tag = ns.qname(CONN_REQ_NS, "connectionRequest")
    content = etree.Element(tag, nsmap=ns.default(CONN_REQ_NS))
    etree.SubElement(content, ns.qname(CONN_REQ_NS, "username")).text = username
    answer = await from_acs(ctx, jid, content, "CR without password")
    ctx.expect(answer is not None, "the device did not answer the malformed IQ")
    assert answer is not None
    ctx.expect(answer.error is not None, "the device answered the malformed IQ with a result")


@case(
    "xmpp.reconnect",
    ANNEX_K,
    "After the XMPP server restarts, the device connects again and takes connection requests",
)
async def reconnect(ctx: CheckContext) -> None:
    jid = await device_jid(ctx)
    server = built_in(ctx)
    requester = ctx.acs.xmpp_requester
    assert requester is not None  # the ACS connects to its built-in server
    account = parse_jid(jid).bare
    within = ctx.options.inform_within + 2 * RETRY_INITIAL
    ctx.note(f"restarting the XMPP server on port {server.port}")
    await server.restart()
    now = await logged_in(ctx, server, account, within)
    try:
        async with asyncio.timeout(within):
            await requester.wait_connected()
    except TimeoutError:
        ctx.fail(f"the ACS did not log in to its XMPP server again within {within:g} s")
    ctx.note(f"the device is back as {now}")
    with ctx.watch() as sessions:
        answer = await from_acs(ctx, now, await valid_request(ctx), "valid CR after the restart")
        ctx.expect(
            answer is not None and answer.error is None,
            "the device did not answer a valid connectionRequest with a result after it "
            "reconnected",
        )
        await sessions.inform()
