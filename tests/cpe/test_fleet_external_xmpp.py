"""A `knock sim` fleet whose devices have accounts on a real Prosody from the start
(--xmpp-server, --xmpp-password-secret), with `knock serve` logged in to the same Prosody: the
accounts are registered as an operator would, with prosodyctl and the password openssl derives
from the secret; every device logs in over verified STARTTLS, reports its JID, and an XMPP
connection request reaches each one."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_fleet import WAIT, Runner, device_id, runner, serials
from test_xmpp_external_server import external

from knock.cpe.device import SimulatedCpe
from knock.cpe.fleet_config import FleetConfig
from knock.cpe.xmpp_account import preconfigure_xmpp
from knock.server import start
from knock.vocab import CrMethod, CrOutcome
from serve_support import loopback_settings
from xmpp_servers import Prosody, running_prosody

__all__ = ["runner"]  # the fixture, used by name
MS = "Device.ManagementServer."
SECRET = "fleet-secret"
COUNT = 3


def operator_password(username: str) -> str:
    """What the README tells an operator to run."""
    digest = subprocess.run(
        ["openssl", "dgst", "-sha256", "-hmac", SECRET],
        input=username,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return digest.split()[-1]


@pytest.fixture(scope="module")
def prosody() -> Iterator[Prosody]:
    with running_prosody() as server:
        server.register("knock-acs", "acs-secret")
        for serial in serials(COUNT):
            server.register(serial.lower(), operator_password(serial.lower()))
        yield server


async def test_a_fleet_on_prosody_takes_connection_requests_from_an_acs_on_prosody(
    prosody: Prosody, runner: Runner, tmp_path: Path
) -> None:
    acs = await start(loopback_settings(tmp_path, **external(prosody)))
    try:
        config = FleetConfig(
            acs.acs_url,
            COUNT,
            state_dir=str(tmp_path / "state"),
            cr_methods=(CrMethod.HTTP, CrMethod.XMPP),
            start_rate=1000,
            report_interval=0.05,
            ca_file=str(prosody.certificate),
            xmpp_server=f"{prosody.host}:{prosody.port}",
            xmpp_domain=prosody.domain,
            xmpp_password_secret=SECRET,
            xmpp_tls=True,
        )
        fleet = runner.start(config)
        # Bootstrap, then the session reporting the bound JID (it may be folded into the first).
        async with asyncio.timeout(WAIT):
            await fleet.wait_until(lambda s: s.xmpp_online == COUNT and s.online == COUNT)
        for serial in serials(COUNT):
            jid = f"{serial.lower()}@{prosody.domain}/cwmp"
            async with asyncio.timeout(WAIT):
                while True:
                    stored = await acs.store.get_parameters(
                        [device_id(serial)], [f"{MS}ConnReqJabberID"]
                    )
                    if [p.value for p in stored.get(device_id(serial), [])] == [jid]:
                        break
                    await asyncio.sleep(0.05)
        async with asyncio.timeout(WAIT):
            await fleet.wait_until(lambda s: s.in_session == 0)
        for serial in serials(COUNT):
            result = await acs.dispatcher.reach(device_id(serial), within=5, via=CrMethod.XMPP)
            assert (result.outcome, result.method) == (CrOutcome.DELIVERED, CrMethod.XMPP), serial
        final = await runner.stop(fleet)
        assert final.xmpp == {"accepted": COUNT}
        assert final.errors == 0
    finally:
        await acs.close()


def test_a_device_that_kept_its_state_keeps_one_connection_row(tmp_path: Path) -> None:
    cpe = SimulatedCpe("SIM000001", "tr181", tmp_path, "http://127.0.0.1:7547/")
    first = preconfigure_xmpp(cpe, "a@xmpp.example/cwmp", "pw", ("127.0.0.1", 5222))
    again = preconfigure_xmpp(cpe, "b@xmpp.example/cwmp", "pw2", ("127.0.0.1", 5333))
    model = cpe.model
    assert first == again == "Device.XMPP.Connection.1."
    rows = model.get_parameter_names("Device.XMPP.Connection.", True)
    servers = model.get_parameter_names("Device.XMPP.Connection.1.Server.", True)
    assert [r.name for r in rows] == ["Device.XMPP.Connection.1."]
    assert [r.name for r in servers] == ["Device.XMPP.Connection.1.Server.1."]
    assert model.get("Device.XMPP.Connection.1.Username") == "b"
    assert model.get("Device.XMPP.Connection.1.Server.1.Port") == "5333"
    assert model.get(f"{MS}ConnReqXMPPConnection") == "Device.XMPP.Connection.1"
