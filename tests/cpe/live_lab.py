"""Simulated devices with every connection-request method against an in-process `knock serve`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from knock.cpe.cr_rate import CrPolicy
from knock.cpe.cr_services import CrServices
from knock.cpe.device import SimulatedCpe
from knock.cpe.trust import device_tls
from knock.cwmp.deviceid import device_key
from knock.server import Running, start
from knock.vocab import CrMethod
from serve_support import loopback_settings

MS = "Device.ManagementServer."
ALL_METHODS = (CrMethod.HTTP, CrMethod.UDP, CrMethod.XMPP)
WAIT = 10.0  # seconds any one awaited event may take before the test fails


async def until(condition: Callable[[], bool]) -> None:
    """Wait for a state nothing announces (a binding inside the STUN server, a connection's
    loss inside the XMPP client); what is announced is awaited as such."""
    async with asyncio.timeout(WAIT):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def settled(cpe: SimulatedCpe) -> None:
    """Wait until *cpe* ends a session (it settles then)."""
    done = asyncio.Event()
    cpe.on_settled(done.set)
    async with asyncio.timeout(WAIT):
        await done.wait()


def fast_retry_model(folder: Path) -> str:
    """TR-181 with a 1 s first XMPP reconnection wait (the default 60 s would outlast a test)."""
    text = resources.files("knock.cpe").joinpath("models/tr181.json").read_text("utf-8")
    model = json.loads(text)
    connection = model["objects"]["Device.XMPP.Connection.{i}."]["parameters"]
    connection["ServerRetryInitialInterval"]["value"] = "1"
    path = folder / "tr181-fast-retry.json"
    path.write_text(json.dumps(model), "utf-8")
    return str(path)


def lab_trust(acs: Running) -> ssl.SSLContext:
    """What the lab's devices and probes trust: the lab CA, as a lab installs it on devices."""
    assert acs.ca is not None
    return device_tls(str(acs.ca.cert_path))


@dataclass
class Lab:
    folder: Path
    acs: Running
    services: CrServices
    devices: list[SimulatedCpe]
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def device_id(self, cpe: SimulatedCpe) -> str:
        return device_key(cpe.model.device_id())

    async def stored(self, cpe: SimulatedCpe, name: str, accept: Callable[[str], bool]) -> str:
        """The value the ACS stores for *name* once *accept* takes it, waiting for sessions."""
        device_id = self.device_id(cpe)
        with self.acs.hub.subscribe(device_id) as announcements:
            async with asyncio.timeout(WAIT):
                while True:
                    params = await self.acs.store.get_parameters([device_id], [name])
                    values = [p.value for p in params.get(device_id, []) if p.path == name]
                    if values and values[0] is not None and accept(values[0]):
                        return values[0]
                    await announcements.next()

    async def provisioned(self, cpe: SimulatedCpe) -> tuple[str, str]:
        """The UDP address and JID the ACS stored once the device reported both, after the
        session that reported them ended (a connection request would meet it busy)."""
        address = await self.stored(cpe, f"{MS}UDPConnectionRequestAddress", _stun_mapped(cpe))
        jid = await self.stored(cpe, f"{MS}ConnReqJabberID", bool)
        if cpe.in_session:
            await settled(cpe)
        return address, jid

    async def restart_acs(self) -> None:
        """Stop `knock serve` and start it again on the same ports and database."""
        old = self.acs
        assert old.stun is not None and old.xmpp is not None
        await old.close()
        xmpp = self.services.xmpp
        assert xmpp is not None
        await until(lambda: not any(a.client and a.client.online for a in xmpp.agents))
        settings = replace(
            loopback_settings(self.folder, cr_session_wait=5.0),
            cwmp_port=old.cwmp_port,
            stun_port=old.stun.address[1],
            xmpp_port=old.xmpp.port,
        )
        self.acs = await start(settings)


def _stun_mapped(cpe: SimulatedCpe) -> Callable[[str], bool]:
    def check(value: str) -> bool:
        return value != "" and value == cpe.model.get(f"{MS}UDPConnectionRequestAddress")

    return check


@contextlib.asynccontextmanager
async def lab(
    folder: Path,
    count: int = 1,
    policy: CrPolicy | None = None,
    device_options: Mapping[str, Any] | None = None,
    trust: ssl.SSLContext | None = None,
    cr_host: str = "127.0.0.1",
    **acs_settings: Any,
) -> AsyncIterator[Lab]:
    """*device_options*: what every SimulatedCpe is given besides (quirks, values, ...);
    *trust*: what the devices check certificates with, default the lab CA; *cr_host*: where
    the devices take connection requests."""
    acs = await start(loopback_settings(folder, cr_session_wait=5.0, **acs_settings))
    tls = trust or lab_trust(acs)
    services = CrServices(ALL_METHODS, policy or CrPolicy(rate_limit=0), host=cr_host, tls=tls)
    await services.start()
    model = fast_retry_model(folder)
    devices = [
        SimulatedCpe(
            f"LAB{n:04d}",
            model,
            folder / "state",
            acs.acs_url,
            **(device_options or {}),
        )
        for n in range(count)
    ]
    running = Lab(folder, acs, services, devices)
    try:
        for cpe in devices:
            services.attach(cpe)
            running.tasks.append(asyncio.create_task(cpe.run()))
        yield running
    finally:
        for task in running.tasks:
            task.cancel()
        await asyncio.gather(*running.tasks, return_exceptions=True)
        await services.close()
        await running.acs.close()
