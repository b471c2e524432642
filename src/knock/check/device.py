"""Finding the device under test: the first device to Inform (or the one named), once the ACS
has provisioned it and its session ended."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Final

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
    informs: list[Arrival] = []
    with acs.hub.subscribe(device_id or ANY_DEVICE) as announcements:
        try:
            async with asyncio.timeout(options.device_within):
                arrival = await _next_arrival(announcements)
                await _settle(announcements, arrival, options.quiet_for, informs)
        except TimeoutError:
            if informs:
                raise NoDevice(
                    f"{await _sessions(acs, informs)}; it was not provisioned and quiet for "
                    f"{options.quiet_for:g} s within {options.device_within:g} s: {PROVISIONING}"
                ) from None
            raise NoDevice(
                f"no device informed{'' if device_id is None else f' as {device_id}'} within "
                f"{options.device_within:g} s: set the device's ManagementServer.URL to "
                f"{acs.acs_url} and make it inform (reboot it, or wait for its periodic Inform)"
            ) from None
    target = await acs.store.get_cr_target(arrival.device_id)
    if target is None or target.password is None:
        raise NoDevice(
            f"{await _sessions(acs, informs)}, but Knock holds no connection-request "
            f"credentials for it: {PROVISIONING}, or cr_provision is off"
        )
    names = [name for name, _ in arrival.parameters]
    igd = any(n.startswith("InternetGatewayDevice.") for n in names)
    root = "InternetGatewayDevice." if igd else "Device."
    dut = DeviceUnderTest(acs, arrival.device_id, options, root=root, informs=informs)
    dut.last_session = time.monotonic()
    dut.listen()
    return dut


PROVISIONING: Final = (
    "in its first session Knock reads ManagementServer. (GetParameterValues of that partial "
    "path; from a device that faulted or dropped the connection on that, GetParameterNames and "
    "the leaf names it lists) and sets ConnectionRequestUsername/Password; the device must "
    "answer both (the ACS log says which it did not)"
)
# What a session's outcome (the store's sessions.outcome) tells of the device.
_OUTCOMES: Final = {
    "ok": "ended normally",
    "superseded": "abandoned (the device dropped the connection and informed anew)",
    "closed": "cut short (the device closed the connection without answering)",
    "timeout": "fell silent (the ACS ended them after its session timeout)",
    "error": "ended in an error (the device answered a request with an empty POST)",
    "aborted": "aborted as the ACS stopped",
    "": "still open",
}


async def _sessions(acs: Running, informs: list[Arrival]) -> str:
    """What the device's sessions did, in words: how often it informed, with which events, and
    how its sessions ended."""
    device_id = informs[0].device_id
    ended = Counter(s.outcome or "" for s in await acs.store.list_sessions(device_id))
    events = Counter(", ".join(a.events) for a in informs)
    return (
        f"device {device_id} informed {len(informs)} times ("
        + "; ".join(f"{n} x [{e}]" for e, n in events.items())
        + "); its sessions: "
        + "; ".join(f"{n} {_OUTCOMES.get(o, o)}" for o, n in ended.items())
    )


async def _settle(
    announcements: Subscription, arrival: Arrival, quiet_for: float, seen: list[Arrival]
) -> None:
    """Wait until the device's sessions end and none begins for *quiet_for* seconds, adding
    each Inform to *seen*: after provisioning a device reports its STUN address and XMPP JID
    in sessions of its own, which would otherwise land in the middle of the first cases."""
    session: int | None = arrival.session_id
    seen.append(arrival)
    while True:
        try:
            async with asyncio.timeout(None if session is not None else quiet_for):
                item = await announcements.next()
        except TimeoutError:
            return
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
