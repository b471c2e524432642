"""The XMPP certificate case: a device must check the server's certificate (RFC 6120
§13.7.2), or anyone who can answer for the server's address gets its password and its
connection requests. Offered a certificate for another name, signed by the CA the device
trusts (so that the name is the only fault), it must refuse to log in.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Final

from knock.check.cases import case
from knock.check.context import CheckContext
from knock.check.xmpp_probe import RETRY_INITIAL, built_in, device_jid, logged_in
from knock.labca import LabCa
from knock.tlsutil import server_context
from knock.xmpp.jid import parse_jid
from knock.xmpp.server import LoginEvent, LoginOutcome

RFC_6120: Final = "RFC 6120 §13.7.2"
WRONG_NAME: Final = "not-the-xmpp-server.invalid"  # RFC 2606: never anyone's name


def _wrong_pair(ca: LabCa, folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "wrong-name-cert.pem", folder / "wrong-name-key.pem"
    ca.ensure_leaf(cert, key, [WRONG_NAME])
    return cert, key


@case(
    "xmpp.validates-certificate",
    RFC_6120,
    "Offered a certificate for another name, signed by a CA the device trusts, the device "
    "refuses to log in to the XMPP server",
)
async def validates_certificate(ctx: CheckContext) -> None:
    jid = await device_jid(ctx)
    server = built_in(ctx)
    if not ctx.options.xmpp_tls:
        ctx.skip("the device's XMPP connection is in the clear (--xmpp-lab-plaintext)")
    if server.ca_file is None:
        ctx.skip("the server serves the operator's certificate; the case needs the lab CA")
    account = parse_jid(jid).bare
    ca = LabCa.ensure(server.ca_file.parent)
    served = server.serve_context(server_context(*_wrong_pair(ca, server.ca_file.parent)))
    within = ctx.options.inform_within + 2 * RETRY_INITIAL
    logins = ctx.acs.xmpp_logins
    try:
        ctx.note(f"the server now offers a certificate for {WRONG_NAME}, signed by the lab CA")
        with logins.watch() as events:
            server.drop(parse_jid(jid))
            try:
                async with asyncio.timeout(within):
                    refusal = await _next_login(ctx, events, account.local or "")
            except TimeoutError:
                ctx.fail(f"the device did not try to log in again within {within:g} s")
        if refusal.outcome is LoginOutcome.OK:
            ctx.fail(
                f"the device logged in although the certificate names {WRONG_NAME}, not "
                f"{server.policy.domain}: it does not check the server's certificate, so "
                "anyone answering for the server's address gets its password"
            )
        ctx.note(
            f"the device at {refusal.address} aborted the TLS handshake with alert {refusal.detail}"
        )
    finally:
        server.serve_context(served)
    ctx.note(f"the right certificate is back; waiting for {account} to log in again")
    await logged_in(ctx, server, account, within)


async def _next_login(
    ctx: CheckContext, events: asyncio.Queue[LoginEvent], username: str
) -> LoginEvent:
    """The device's next login event: a refusal from its address, or its account's login."""
    logins = ctx.acs.xmpp_logins
    while True:
        event = await events.get()
        if event.outcome is LoginOutcome.OK and event.username == username:
            return event
        if event.outcome is LoginOutcome.TLS_REFUSED and logins.device_at(event.address) in (
            ctx.device_id,
            None,
        ):
            return event
