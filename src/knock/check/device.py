"""Finding the device under test: the first device to Inform (or the one named), once the ACS
has provisioned it and its session ended."""

from __future__ import annotations

import asyncio
import time

from knock.check.context import DeviceUnderTest
from knock.check.options import CheckOptions
from knock.notify import ANY_DEVICE, Arrival, SessionEnded, Subscription
from knock.server import Running


class NoDevice(RuntimeError):
    """No device came, or it could not be provisioned; the message says what to look at."""


async def wait_for_device(
    acs: Running, options: CheckOptions, device_id: str | None = None
) -> DeviceUnderTest:
    """Wait for an Inform from *device_id* (any device when None), then for the end of that
    session, in which the ACS sets the connection-request credentials. Raises `NoDevice`."""
    with acs.hub.subscribe(device_id or ANY_DEVICE) as announcements:
        try:
            async with asyncio.timeout(options.device_within):
                arrival = await _next_arrival(announcements)
                informs = await _settle(announcements, arrival, options.quiet_for)
        except TimeoutError:
            raise NoDevice(
                f"no device informed{'' if device_id is None else f' as {device_id}'} within "
                f"{options.device_within:g} s: set the device's ManagementServer.URL to "
                f"{acs.acs_url} and make it inform (reboot it, or wait for its periodic Inform)"
            ) from None
    target = await acs.store.get_cr_target(arrival.device_id)
    if target is None or target.password is None:
        raise NoDevice(
            f"device {arrival.device_id} informed but Knock holds no connection-request "
            "credentials for it: it refused SetParameterValues of ConnectionRequestUsername/"
            "Password (see the ACS log), or cr_provision is off"
        )
    names = [name for name, _ in arrival.parameters]
    igd = any(n.startswith("InternetGatewayDevice.") for n in names)
    root = "InternetGatewayDevice." if igd else "Device."
    dut = DeviceUnderTest(acs, arrival.device_id, options, root=root, informs=informs)
    dut.last_session = time.monotonic()
    dut.listen()
    return dut


async def _settle(announcements: Subscription, arrival: Arrival, quiet_for: float) -> list[Arrival]:
    """Wait until the device's sessions end and none begins for *quiet_for* seconds: after
    provisioning a device reports its STUN address and XMPP JID in sessions of its own, which
    would otherwise land in the middle of the first cases."""
    session: int | None = arrival.session_id
    seen = [arrival]
    while True:
        try:
            async with asyncio.timeout(None if session is not None else quiet_for):
                item = await announcements.next()
        except TimeoutError:
            return seen
        if item.device_id != arrival.device_id:
            continue
        if isinstance(item, Arrival):
            session = item.session_id
            seen.append(item)
        elif isinstance(item, SessionEnded) and item.session_id == session:
            session = None


async def _next_arrival(announcements: Subscription) -> Arrival:
    while True:
        item = await announcements.next()
        if isinstance(item, Arrival):
            return item
