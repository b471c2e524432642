"""`knock serve` runs the built-in XMPP server on accounts kept in the store."""

from __future__ import annotations

import asyncio
from typing import Any

import slixmpp

from knock.acs.xmpp_accounts import put_account
from knock.server import Running


async def log_in(port: int, jid: str, password: str, host: str = "127.0.0.1") -> bool:
    """Whether slixmpp gets a session (plaintext settings from LAB-NOTES)."""
    client = slixmpp.ClientXMPP(jid, password)
    client.enable_starttls = False
    client.enable_direct_tls = False
    client.enable_plaintext = True
    client.plugin["feature_mechanisms"].unencrypted_scram = True
    outcome: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    client.add_event_handler("session_start", lambda _: outcome.done() or outcome.set_result(True))
    client.add_event_handler(
        "failed_all_auth", lambda _: outcome.done() or outcome.set_result(False)
    )
    client.connect(host, port)
    try:
        return await asyncio.wait_for(outcome, 10)
    finally:
        gone = client.disconnect()
        if gone is not None:
            await gone


async def test_store_accounts_log_in_and_wrong_passwords_do_not(start_acs: Any) -> None:
    acs: Running = await start_acs()
    assert acs.xmpp is not None and acs.xmpp.port
    await put_account(acs.store, "cpe-0001", "cpe-pw")
    stored = await acs.store.get_xmpp_account("cpe-0001")
    assert stored is not None and b"cpe-pw" not in repr(stored).encode()
    assert await log_in(acs.xmpp.port, "cpe-0001@knock.lab/cwmp", "cpe-pw")
    assert not await log_in(acs.xmpp.port, "cpe-0001@knock.lab/cwmp", "guess")
    assert not await log_in(acs.xmpp.port, "nobody@knock.lab/cwmp", "cpe-pw")
