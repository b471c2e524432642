"""Where the XMPP server finds accounts: a lookup from a user name to its SCRAM credentials.

The server calls the lookup with the user name in its JID form (`knock.xmpp.jid.localpart`:
NFC, lower case) and accepts either the credentials (None for an unknown user) or an awaitable
of them, so a store that answers from a database plugs in as it is.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from knock.xmpp.jid import localpart
from knock.xmpp.sasl import DEFAULT_ITERATIONS, ScramCredentials

Lookup = Callable[[str], ScramCredentials | Awaitable[ScramCredentials | None] | None]


class MemoryAccounts:
    """Accounts in a dict, for tests and labs. Passwords are salted and derived at once and
    never kept."""

    def __init__(self, iterations: int = DEFAULT_ITERATIONS) -> None:
        self._iterations = iterations
        self._accounts: dict[str, ScramCredentials] = {}

    def add(self, username: str, password: str) -> None:
        self.set(username, ScramCredentials.from_password(password, iterations=self._iterations))

    def set(self, username: str, credentials: ScramCredentials) -> None:
        """Store credentials derived elsewhere, such as a benchmark's fleet sharing one."""
        self._accounts[localpart(username)] = credentials

    def remove(self, username: str) -> None:
        self._accounts.pop(localpart(username), None)

    def __call__(self, username: str) -> ScramCredentials | None:
        return self._accounts.get(username)
