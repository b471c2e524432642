"""A simulated device with ServerConnectAlgorithm DNS-SRV and an empty Server table finds its XMPP
server through the Domain's SRV records, served by a name server on loopback."""

from __future__ import annotations

import asyncio
from pathlib import Path

from dns_server import running_dns
from knock.cpe.cr_rate import CrAdmission, CrPolicy
from knock.cpe.device import SimulatedCpe
from knock.cpe.xmpp_account import preconfigure_xmpp
from knock.cpe.xmpp_agent import XmppShared
from knock.cpe.xmpp_cr import XmppCrGate
from knock.xmpp.srv import SrvResolver
from xmpp_servers import account, running_knock

MS = "Device.ManagementServer."
WAIT = 10.0


async def test_a_device_without_server_rows_uses_the_domains_srv_records(tmp_path: Path) -> None:
    async with running_dns() as dns, running_knock(tmp_path / "xmpp") as server:
        dns.srv[f"_xmpp-client._tcp.{server.domain}."] = [f"5 0 {server.port} localhost."]
        shared = XmppShared(
            XmppCrGate(CrAdmission(CrPolicy(rate_limit=0))),
            resolver=SrvResolver([("127.0.0.1", dns.port)], timeout=WAIT),
        )
        cpe = SimulatedCpe("SRV0001", "tr181", tmp_path / "state", "http://127.0.0.1:9/")
        jid, password = account(server)
        row = preconfigure_xmpp(cpe, jid, password)
        agent = shared.attach(cpe)
        # Powered on, the device reads the row; its sessions (no ACS listens) do not matter.
        running = asyncio.create_task(cpe.run())
        try:
            await asyncio.sleep(0)
            assert agent.client is not None
            await asyncio.wait_for(agent.client.wait_online(), WAIT)
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
            await shared.close()
        assert cpe.model.get(f"{MS}ConnReqJabberID") == jid
        assert cpe.model.get(row + "Status") == "Enabled"
        assert dns.asked == [f"_xmpp-client._tcp.{server.domain}."]
