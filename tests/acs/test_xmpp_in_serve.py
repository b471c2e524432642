"""`knock serve` runs the built-in XMPP server on accounts kept in the store, TLS required
unless the lab flag says otherwise."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import slixmpp

from knock.acs.xmpp_accounts import put_account
from knock.server import Running


async def log_in(
    port: int, jid: str, password: str, ca: Path | None, host: str = "127.0.0.1"
) -> bool:
    """Whether slixmpp gets a session at *host*: over STARTTLS checked against *ca*, or with
    None in the clear (plaintext settings from LAB-NOTES)."""
    client = slixmpp.ClientXMPP(jid, password)
    client.enable_direct_tls = False
    if ca is None:
        client.enable_starttls = False
        client.enable_plaintext = True
        client.plugin["feature_mechanisms"].unencrypted_scram = True
    else:
        client.ca_certs = ca
    outcome: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    client.add_event_handler("session_start", lambda _: outcome.done() or outcome.set_result(True))
    client.add_event_handler(
        "failed_all_auth", lambda _: outcome.done() or outcome.set_result(False)
    )
    client.add_event_handler("disconnected", lambda _: outcome.done() or outcome.set_result(False))
    client.connect(host, port)
    try:
        return await asyncio.wait_for(outcome, 10)
    finally:
        gone = client.disconnect()
        if gone is not None:
            await gone


async def test_store_accounts_log_in_and_wrong_passwords_do_not(start_acs: Any) -> None:
    acs: Running = await start_acs()
    assert acs.xmpp is not None and acs.xmpp.port and acs.ca is not None
    await put_account(acs.store, "cpe-0001", "cpe-pw")
    stored = await acs.store.get_xmpp_account("cpe-0001")
    assert stored is not None and b"cpe-pw" not in repr(stored).encode()
    ca = acs.ca.cert_path
    assert await log_in(acs.xmpp.port, "cpe-0001@knock.lab/cwmp", "cpe-pw", ca)
    assert not await log_in(acs.xmpp.port, "cpe-0001@knock.lab/cwmp", "guess", ca)
    assert not await log_in(acs.xmpp.port, "nobody@knock.lab/cwmp", "cpe-pw", ca)


async def features(port: int) -> bytes:
    """The stream features the server offers a client in the clear."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"<?xml version='1.0'?><stream:stream to='knock.lab' xmlns='jabber:client' "
        b"xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
    )
    try:
        return await asyncio.wait_for(reader.readuntil(b"</stream:features>"), 10)
    finally:
        writer.close()


async def test_a_login_in_the_clear_is_refused_unless_the_lab_flag_is_set(start_acs: Any) -> None:
    acs: Running = await start_acs()
    assert acs.xmpp is not None
    offered = await features(acs.xmpp.port)
    # RFC 6120 §5.3.1: STARTTLS is mandatory-to-negotiate, no SASL mechanism before it.
    assert b"<required/></starttls>" in offered and b"mechanisms" not in offered
    lab: Running = await start_acs(xmpp_lab_plaintext=True)  # on the same database
    assert lab.xmpp is not None
    offered = await features(lab.xmpp.port)
    assert b"<required/>" not in offered and b"SCRAM-SHA-1" in offered
    await put_account(lab.store, "cpe-0001", "cpe-pw")
    assert await log_in(lab.xmpp.port, "cpe-0001@knock.lab/cwmp", "cpe-pw", None)
