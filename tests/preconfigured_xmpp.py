"""A simulated device whose XMPP account an operator configured out of band, as on an external
server (Prosody, ejabberd) that the ACS cannot create accounts on: a Device.XMPP.Connection row
with the account, a Server row or none (then ServerConnectAlgorithm DNS-SRV finds the server),
and ManagementServer.ConnReqXMPPConnection naming the row."""

from __future__ import annotations

from knock.cpe.device import SimulatedCpe
from knock.xmpp.jid import parse_jid


def preconfigure_xmpp(
    cpe: SimulatedCpe,
    jid: str,
    password: str,
    server: tuple[str, int] | None = None,
    use_tls: bool = False,
) -> str:
    """Give *cpe* the account *jid* (with its resource); the row's path."""
    account = parse_jid(jid)
    model = cpe.model
    root = model.schema.root
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
        entry = f"{row}Server.{model.add_object(f'{row}Server.', '')}."
        cpe.set_value(entry + "Enable", "true")
        cpe.set_value(entry + "ServerAddress", server[0])
        cpe.set_value(entry + "Port", str(server[1]))
    cpe.set_value(model.schema.management("ConnReqXMPPConnection"), row.removesuffix("."))
    return row
