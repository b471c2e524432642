"""The built-in XMPP server's accounts, kept in the store as SCRAM credentials."""

from __future__ import annotations

from knock.store import Store
from knock.store.rows import XmppAccountRow
from knock.xmpp.accounts import Lookup
from knock.xmpp.jid import localpart
from knock.xmpp.sasl import ScramCredentials


def store_lookup(store: Store) -> Lookup:
    """What the XMPP server calls to find an account (by its JID localpart)."""

    async def lookup(username: str) -> ScramCredentials | None:
        row = await store.get_xmpp_account(username)
        if row is None:
            return None
        return ScramCredentials(row.salt, row.iterations, row.stored_key, row.server_key)

    return lookup


async def put_account(
    store: Store, username: str, password: str, device_id: str | None = None
) -> None:
    """Create or reset an account (for *device_id*, when it is a device's); only the derived
    SCRAM credentials are kept."""
    creds = ScramCredentials.from_password(password)
    await store.put_xmpp_account(
        XmppAccountRow(
            localpart(username),
            creds.salt,
            creds.iterations,
            creds.stored_key,
            creds.server_key,
            device_id,
        )
    )
