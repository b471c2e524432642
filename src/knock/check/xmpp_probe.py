"""IQs to the device under test, with their answers as evidence: from the ACS's own XMPP
connection, or from a second JID on the built-in server that the device does not know."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Final

from lxml import etree

from knock.acs.xmpp_accounts import put_account
from knock.check.context import CheckContext
from knock.check.evidence import Kind
from knock.check.memo import Undo, once
from knock.check.offers import require
from knock.connreq.xmpp import connection_request
from knock.hosts import dial_host, over
from knock.tlsutil import trusting
from knock.xmpp.client import ClientConfig, IqResult, NotOnline, TlsPolicy
from knock.xmpp.client_conn import ConnectionLost, XmppClient
from knock.xmpp.jid import Jid, JidError, parse_jid
from knock.xmpp.server import LoginOutcome, XmppServer

PROBE_USER: Final = "knock-check"  # the second account's localpart on the built-in server
LOGIN_WITHIN: Final = 5.0
RETRY_INITIAL: Final = 1  # ServerRetryInitialInterval set for the run, seconds

Ask = Callable[[str, etree._Element, float], Awaitable[IqResult]]


async def ask(
    ctx: CheckContext, sender: str, send: Ask, to: str, content: etree._Element, why: str
) -> IqResult | None:
    """Send *content* in an IQ get from *sender* to *to*; its answer, or None when none came
    within `inform_within`. Both go to the evidence."""
    wait = ctx.options.inform_within
    await ctx.before_request()
    ctx.evidence.add(
        Kind.SENT,
        f"{why}: IQ get from {sender} to {to}{over(device_peer(ctx, to))}",
        etree.tostring(content, encoding="unicode"),
    )
    sent_at = time.monotonic()
    try:
        answer = await send(to, content, wait)
    except TimeoutError:
        ctx.evidence.add(Kind.RECEIVED, f"no answer within {wait:g} s")
        return None
    except (NotOnline, ConnectionLost) as exc:
        ctx.fail(f"the checker's XMPP connection as {sender} is down: {exc}")
    if answer.error is None:
        ctx.evidence.add(Kind.RECEIVED, f"result from {answer.sender or '(no from)'}")
        if isinstance(content.tag, str) and content.tag.endswith("connectionRequest"):
            # A session follows, perhaps already begun: the next case waits for it.
            ctx.dut.last_accepted = sent_at
    else:
        ctx.evidence.add(
            Kind.RECEIVED,
            f"error {answer.error.describe()} from {answer.sender or '(no from)'}",
        )
    return answer


def device_peer(ctx: CheckContext, jid: str) -> str:
    """The address the device's XMPP connection to the built-in server came from, whose family
    an IQ to it went over on its last leg; "" when another server carries it."""
    server = ctx.acs.xmpp
    try:
        return server.peer(parse_jid(jid)) if server is not None else ""
    except JidError:  # the device reported no JID; the IQ's error says so
        return ""


async def device_jid(ctx: CheckContext) -> str:
    """The device's ConnReqJabberID, once per run set up for the XMPP cases (`xmpp_setup`),
    once the device is logged in to the built-in server (within --inform-within): a device may
    reconnect after the set-up changed its XMPP settings, and a case must not meet it in
    between. Skips the case for a device without XMPP, fails it for one that reports no JID."""
    await require(ctx, "XMPP")
    await once(ctx, "xmpp set-up", lambda: xmpp_setup(ctx))
    # The rate-limit wait before the case's request comes first: the device's login is then
    # checked right before the request.
    await ctx.before_request()
    jid = (await ctx.target()).management.get("ConnReqJabberID", "")
    if not jid:
        ctx.fail(await not_online(ctx, "the device reports an empty ConnReqJabberID"))
    with contextlib.suppress(JidError):  # xmpp.jid-reported judges it
        if ctx.acs.xmpp is not None:
            await logged_in(ctx, ctx.acs.xmpp, parse_jid(jid).bare, ctx.options.inform_within)
    return jid


async def not_online(ctx: CheckContext, what: str) -> str:
    """Why the device is not logged in, as far as the XMPP server saw: it refused the
    server's certificate, or it never logged in, or it did once."""
    device = await ctx.acs.store.get_device(ctx.device_id)
    outcome = device.xmpp_login_outcome if device is not None else None
    if device is None or device.xmpp_login_since is None:
        return f"{what}: the device never logged in to the XMPP server"
    since = f"from {device.xmpp_login_source}, since {device.xmpp_login_since:%H:%M:%S}"
    if outcome == LoginOutcome.TLS_REFUSED:
        return (
            f"{what}: the device refused the server's certificate (TLS alert "
            f"{device.xmpp_login_detail}, {since}); give it the CA that signed it (the lab CA "
            "knock check printed) or run with the certificate it trusts"
        )
    return f"{what}: the device's last login was {outcome} ({since}), and it is not on now"


async def xmpp_setup(ctx: CheckContext) -> Undo:
    """Give the device's XMPP connection the run's ServerConnectAlgorithm (`xmpp_connect`) and
    a first reconnection wait of RETRY_INITIAL s (TR-181's 60 to 120 s would outlast a case),
    then wait until it is logged in again and ready for a request; returns what sets the two
    back. The connection is the row ConnReqXMPPConnection names, read from the device: the ACS
    set it after the values it stores were reported."""
    reference = ctx.ms("ConnReqXMPPConnection")
    row = (await ctx.read(reference)).get(reference, "").rstrip(".")
    if not row:
        ctx.fail("the device's ConnReqXMPPConnection names no XMPP.Connection row")
    undo = await ctx.change(
        {
            f"{row}.ServerConnectAlgorithm": str(ctx.options.xmpp_connect),
            f"{row}.ServerRetryInitialInterval": str(RETRY_INITIAL),
        }
    )
    jid = (await ctx.target()).management.get("ConnReqJabberID", "")
    if ctx.acs.xmpp is not None and jid:
        await logged_in(ctx, ctx.acs.xmpp, parse_jid(jid).bare, ctx.options.inform_within)
    await ctx.ready()  # the set-up's sessions are over and the rate limit passed
    return undo


async def logged_in(ctx: CheckContext, server: XmppServer, account: Jid, within: float) -> str:
    """The full JID *account* is bound as on *server*, waiting up to *within* seconds."""
    try:
        async with asyncio.timeout(within):
            while True:
                bound = [jid for jid in server.sessions if jid.bare == account]
                if bound:
                    return str(bound[0])
                await asyncio.sleep(0.1)  # the server announces no logins
    except TimeoutError:
        ctx.fail(
            await not_online(ctx, f"the device did not log in as {account} within {within:g} s")
        )


async def from_acs(
    ctx: CheckContext, to: str, content: etree._Element, why: str
) -> IqResult | None:
    """An IQ from the ACS's own JID, the one ConnReqAllowedJabberIDs lists."""
    requester = ctx.acs.xmpp_requester
    if requester is None:
        ctx.skip("the ACS has no XMPP connection (xmpp_enable is off)")
    return await ask(ctx, requester.status.jid or "the ACS", requester.iq, to, content, why)


async def valid_request(ctx: CheckContext) -> etree._Element:
    username, password = await ctx.credentials()
    return connection_request(username, password)


def built_in(ctx: CheckContext) -> XmppServer:
    server = ctx.acs.xmpp
    if server is None:
        ctx.skip("the ACS runs no built-in XMPP server, on which this case needs a second JID")
    return server


@contextlib.asynccontextmanager
async def probe(ctx: CheckContext, resource: str) -> AsyncIterator[tuple[str, Ask]]:
    """A second connection to the built-in server, as knock-check@<domain>/*resource*: a JID
    the device was never told to accept. Yields its JID and how to send from it."""
    server = built_in(ctx)
    password = secrets.token_urlsafe(18)
    await put_account(ctx.acs.store, PROBE_USER, password)
    server.add_service_account(PROBE_USER)  # a device account may address only the ACS
    jid = f"{PROBE_USER}@{server.policy.domain}/{resource}"
    client = XmppClient(
        jid,
        password,
        host=dial_host(server.listen.host),
        port=server.port,
        ssl_context=trusting(server.ca_file, server.certificate),
        config=ClientConfig(tls=TlsPolicy.IF_OFFERED),
    )
    client.start()
    try:
        try:
            async with asyncio.timeout(LOGIN_WITHIN):
                await client.wait_online()
        except TimeoutError:
            ctx.fail(f"the checker could not log in as {jid}: {client.status.reason}")
        ctx.note(f"logged in as {client.status.jid or jid}")
        yield client.status.jid or jid, client.request
    finally:
        await client.close()


def bare(jid: str) -> str:
    return str(parse_jid(jid).bare)
