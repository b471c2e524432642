"""One worker's connection-request services: the methods `knock sim --cr` enables, sharing one
`CrAdmission`, so a device's rate limit and busy rule hold whichever method asks."""

from __future__ import annotations

import ssl
from typing import Final

from knock.cpe.cr_http import CrGate
from knock.cpe.cr_listener import CrListener
from knock.cpe.cr_rate import CrAdmission, CrPolicy
from knock.cpe.datamodel import ModelSchema
from knock.cpe.device import SimulatedCpe
from knock.cpe.udp_cr import UdpCrGate
from knock.cpe.udp_port import UdpPorts, check_udp_support
from knock.cpe.xmpp_agent import XmppShared, check_xmpp_support
from knock.cpe.xmpp_cr import XmppCrGate
from knock.vocab import CrMethod

# ManagementServer.SupportedConnReqMethods names a method by its transport's name.
MODEL_NAMES: Final = {CrMethod.HTTP: "HTTP", CrMethod.UDP: "STUN", CrMethod.XMPP: "XMPP"}


def check_support(schema: ModelSchema, methods: tuple[CrMethod, ...]) -> None:
    """Raise `ModelError` unless devices of *schema* can take the UDP and XMPP requests asked
    for (HTTP is always served: the ACS needs a ConnectionRequestURL)."""
    if CrMethod.UDP in methods:
        check_udp_support(schema)
    if CrMethod.XMPP in methods:
        check_xmpp_support(schema)


class CrServices:
    """Use `start`, then `attach` each device; `close` when done."""

    def __init__(
        self,
        methods: tuple[CrMethod, ...],
        policy: CrPolicy,
        *,
        host: str = "127.0.0.1",
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """*tls*: what devices check their XMPP server's certificate with (None: the system's
        CAs)."""
        admission = CrAdmission(policy)
        self.methods = methods
        self.http = CrListener(CrGate(admission=admission), host=host)
        self.udp = UdpPorts(UdpCrGate(admission), host=host) if CrMethod.UDP in methods else None
        self.xmpp = XmppShared(XmppCrGate(admission), tls=tls) if CrMethod.XMPP in methods else None

    async def start(self) -> None:
        await self.http.start()

    def attach(self, cpe: SimulatedCpe) -> None:
        """Make *cpe* reachable by every enabled method and say so in SupportedConnReqMethods.
        Raises `CpeError`."""
        supported = cpe.model.schema.management("SupportedConnReqMethods")
        if cpe.model.has(supported):
            cpe.set_fact(supported, ",".join(MODEL_NAMES[m] for m in self.methods))
        self.http.attach(cpe)
        if self.udp is not None:
            self.udp.attach(cpe)
        if self.xmpp is not None:
            self.xmpp.attach(cpe)

    async def close(self) -> None:
        if self.udp is not None:
            self.udp.close()
        if self.xmpp is not None:
            await self.xmpp.close()
        await self.http.close()
