"""Whether the device under test offers a connection-request method, so that the cases of a
method it lacks are skipped rather than failed."""

from __future__ import annotations

from knock.check.context import CheckContext


async def supports(ctx: CheckContext, method: str) -> bool:
    """Whether the device offers *method* (HTTP, STUN, XMPP) by its SupportedConnReqMethods;
    a device without the parameter (TR-098, older TR-181) by the objects it reported."""
    target = await ctx.target()
    supported = target.management.get("SupportedConnReqMethods")
    if supported is not None:
        return method in {m.strip() for m in supported.split(",")}
    if method == "XMPP":
        return ctx.dut.root == "Device." and "ConnReqJabberID" in target.management
    return "STUNEnable" in target.management
