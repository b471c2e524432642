"""A simulated device whose XMPP account an operator configured out of band, as on an external
server (Prosody, ejabberd) that the ACS cannot create accounts on: a Device.XMPP.Connection row
with the account, a Server row or none (then ServerConnectAlgorithm DNS-SRV finds the server),
and ManagementServer.ConnReqXMPPConnection naming the row.

`ExternalXmpp` is a fleet's share of that (`knock sim --xmpp-server`): each device's username is
its serial in lower case (what Prosody's nodeprep makes of it anyway) and its password the hex
HMAC-SHA256 of that username under the operator's secret, so a script registers the same
accounts on the server: ``printf %s sim000001 | openssl dgst -sha256 -hmac SECRET``.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from knock.cpe.device import SimulatedCpe
from knock.xmpp.jid import parse_jid

RESOURCE = "cwmp"


def device_username(serial: str) -> str:
    return serial.lower()


def device_password(username: str, secret: str) -> str:
    return hmac.new(secret.encode(), username.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class ExternalXmpp:
    """Where a fleet's devices log in: host, port, domain, TLS, and the accounts' secret."""

    host: str
    port: int
    domain: str
    secret: str
    use_tls: bool = False

    def __repr__(self) -> str:  # the secret never reaches a log through a repr
        return f"ExternalXmpp({self.host}:{self.port}, {self.domain})"

    def account(self, serial: str) -> tuple[str, str]:
        """The device's full JID and its password."""
        username = device_username(serial)
        return f"{username}@{self.domain}/{RESOURCE}", device_password(username, self.secret)

    def configure(self, cpe: SimulatedCpe) -> str:
        jid, password = self.account(cpe.serial)
        return preconfigure_xmpp(cpe, jid, password, (self.host, self.port), self.use_tls)


def preconfigure_xmpp(
    cpe: SimulatedCpe,
    jid: str,
    password: str,
    server: tuple[str, int] | None = None,
    use_tls: bool = False,
) -> str:
    """Give *cpe* the account *jid* (with its resource); the row's path. A device that kept its
    state (`knock sim --state-dir`) has the row already: it is rewritten, not added again."""
    account = parse_jid(jid)
    model = cpe.model
    root = model.schema.root
    pointer = model.schema.management("ConnReqXMPPConnection")
    row = f"{model.get(pointer)}." if model.get(pointer) else ""
    if not model.has(f"{row}Enable"):
        row = f"{root}XMPP.Connection.{model.add_object(f'{root}XMPP.Connection.', '')}."
    values = {
        "Enable": "true",
        "Username": account.local,
        "Password": password,
        "Domain": account.domain,
        "Resource": account.resource,
        "UseTLS": str(use_tls).lower(),
        "ServerConnectAlgorithm": "DNS-SRV" if server is None else "ServerTable",
    }
    for leaf, value in values.items():
        cpe.set_value(row + leaf, value)
    if server is not None:
        entry = f"{row}Server.1."
        if not model.has(f"{entry}Enable"):
            entry = f"{row}Server.{model.add_object(f'{row}Server.', '')}."
        cpe.set_value(entry + "Enable", "true")
        cpe.set_value(entry + "ServerAddress", server[0])
        cpe.set_value(entry + "Port", str(server[1]))
    cpe.set_value(pointer, row.removesuffix("."))
    return row
