"""Whether the device under test offers a connection-request method, so that the cases of a
method it lacks are skipped, before they set anything on the device, with a reason in the terms
of its data model (TR-098 has no SupportedConnReqMethods and no XMPP)."""

from __future__ import annotations

from typing import Final, Literal

from knock.check.context import CheckContext
from knock.check.profiles import PROFILES

Method = Literal["STUN", "XMPP"]  # as SupportedConnReqMethods names them


def _management(profile: str, *leaves_left_out: str) -> tuple[str, ...]:
    """The ManagementServer parameters of *profile* (profiles.py), as leaves."""
    prefix = "ManagementServer."
    found = (r.path.removeprefix(prefix) for r in PROFILES[profile] if r.path.startswith(prefix))
    return tuple(leaf for leaf in found if leaf not in leaves_left_out)


# What the cases of each method read and set: the ManagementServer part of the method's profile
# (SupportedConnReqMethods aside, which TR-098 and older TR-181 devices lack).
NEEDED: Final[dict[Method, tuple[str, ...]]] = {
    "STUN": _management("UDPConnReq:1"),
    "XMPP": _management("XMPPConnReq:1", "SupportedConnReqMethods"),
}
WHAT: Final[dict[Method, str]] = {"STUN": "UDP (STUN)", "XMPP": "XMPP"}


async def lacking(ctx: CheckContext, method: Method, *, declared_only: bool = False) -> str:
    """Why the device does not offer *method*, "" when it does: its SupportedConnReqMethods
    leaves it out, its data model has no place for it, or it reports none of the parameters of
    the method's profile. *declared_only*: the parameters are not asked for (a profile case
    judges them), unless the device has no SupportedConnReqMethods to declare the method by."""
    target = await ctx.target()
    root, reported = ctx.dut.root, target.management
    declared = reported.get("SupportedConnReqMethods")
    if declared is not None and method not in {m.strip() for m in declared.split(",")}:
        return f"its {ctx.ms('SupportedConnReqMethods')} is {declared!r}"
    if method == "XMPP" and root != "Device.":
        return (
            f"its data model ({root}, TR-098) has no XMPP. object and no ConnReqJabberID; "
            "XMPP connection requests are TR-181's"
        )
    if declared_only and declared is not None:
        return ""
    if not any(leaf in reported for leaf in NEEDED[method]):
        return f"it reports none of {ctx.ms('')}{', '.join(NEEDED[method])}"
    return ""  # some missing: the profile case fails for them


async def require(ctx: CheckContext, method: Method, *, declared_only: bool = False) -> None:
    """Skip the case unless the device offers *method* (see `lacking`)."""
    why = await lacking(ctx, method, declared_only=declared_only)
    if why:
        ctx.skip(f"the device offers no {WHAT[method]} connection requests: {why}")
