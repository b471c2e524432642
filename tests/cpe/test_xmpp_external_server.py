"""`knock serve` against an external XMPP server, a real Prosody on loopback: the ACS logs in as
its own account (over verified STARTTLS), the built-in server stays off, a simulated device whose
account the operator registered on Prosody beforehand is only told the ACS's JID, and an XMPP
connection request reaches it (the Inform with 6 CONNECTION REQUEST proves it). Wrong ACS
credentials stop the start with what to do."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from live_lab import MS, WAIT, fast_retry_model, until

from knock.config import ConfigError
from knock.cpe.cr_rate import CrPolicy
from knock.cpe.cr_services import CrServices
from knock.cpe.device import SimulatedCpe
from knock.cpe.xmpp_account import preconfigure_xmpp
from knock.cpe.xmpp_cr import XmppAnswer
from knock.cwmp.deviceid import device_key
from knock.server import start
from knock.vocab import CrMethod, CrOutcome
from serve_support import loopback_settings
from xmpp_servers import Prosody, account, running_prosody


@pytest.fixture(scope="module")
def prosody() -> Iterator[Prosody]:
    with running_prosody() as server:
        server.register("knock-acs", "acs-secret")
        yield server


def external(prosody: Prosody, **overrides: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "xmpp_acs_jid": f"knock-acs@{prosody.domain}",
        "xmpp_acs_password": "acs-secret",
        "xmpp_acs_server": prosody.host,
        "xmpp_acs_port": prosody.port,
        "xmpp_acs_tls": "required",
        "xmpp_acs_ca": str(prosody.certificate),
        "cr_provision": "random",
        "cr_session_wait": 5.0,
    }
    return settings | overrides


@pytest.fixture
async def services() -> AsyncIterator[CrServices]:
    running = CrServices((CrMethod.HTTP, CrMethod.XMPP), CrPolicy(rate_limit=0))
    await running.start()
    yield running
    await running.close()


async def test_a_request_reaches_a_device_with_an_account_made_out_of_band(
    prosody: Prosody, services: CrServices, tmp_path: Path
) -> None:
    acs = await start(loopback_settings(tmp_path, **external(prosody)))
    cpe = SimulatedCpe("EXT0001", fast_retry_model(tmp_path), tmp_path / "state", acs.acs_url)
    task: asyncio.Task[None] | None = None
    try:
        assert acs.xmpp is None  # the built-in server is not started
        assert acs.xmpp_requester is not None and acs.xmpp_requester.connected
        assert acs.xmpp_requester.status.tls
        jid, password = account(prosody)  # the operator's registration
        preconfigure_xmpp(cpe, jid, password, server=(prosody.host, prosody.port))
        services.attach(cpe)
        device_id = device_key(cpe.model.device_id())
        with acs.hub.subscribe(device_id) as arrivals:
            task = asyncio.create_task(cpe.run())
            # The bootstrap session, then the one reporting the JID Prosody bound.
            async with asyncio.timeout(WAIT):
                while True:
                    stored = await acs.store.get_parameters([device_id], [f"{MS}ConnReqJabberID"])
                    if any(p.value == jid for p in stored.get(device_id, [])):
                        break
                    await arrivals.next()
        # The device logs in while it bootstraps, so a session reporting its JID may follow: a
        # device in a session refuses requests (Busy.REFUSE), so wait until it is idle.
        await until(lambda: not cpe.in_session and not cpe.state.events)
        assert cpe.model.get(f"{MS}ConnReqAllowedJabberIDs") == f"knock-acs@{prosody.domain}"
        result = await acs.dispatcher.reach(device_id, within=5, via=CrMethod.XMPP)
        assert result.outcome is CrOutcome.DELIVERED, result
        assert result.method is CrMethod.XMPP
        assert services.xmpp is not None
        assert services.xmpp.gate.totals[XmppAnswer.ACCEPTED] == 1
    finally:
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await acs.close()


async def test_a_wrong_acs_password_stops_the_start_with_what_to_do(
    prosody: Prosody, tmp_path: Path
) -> None:
    settings = loopback_settings(tmp_path, **external(prosody, xmpp_acs_password="guess"))
    with pytest.raises(ConfigError) as refused:
        await start(settings)
    message = str(refused.value)
    assert f"cannot log in to its XMPP server as knock-acs@{prosody.domain}" in message
    assert "auth-failed" in message
    assert f"prosodyctl register knock-acs {prosody.domain} PASSWORD" in message
    assert not (tmp_path / "knock.db").exists()  # nothing else was opened


async def test_an_untrusted_server_certificate_stops_the_start_with_what_to_do(
    prosody: Prosody, tmp_path: Path
) -> None:
    # Without xmpp_acs_ca, Prosody's self-signed certificate is not trusted.
    settings = loopback_settings(tmp_path, **external(prosody, xmpp_acs_ca=""))
    with pytest.raises(ConfigError) as refused:
        await start(settings)
    message = str(refused.value)
    assert "TLS failed" in message and "certificate verify failed" in message
    assert "give xmpp_acs_ca the CA that signed the server's certificate" in message
