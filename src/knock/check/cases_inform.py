"""What the device's Informs say (TR-069 Annex A.3.3.1, §3.7.1.5): the forced parameters of its
data model with their types, standard event codes with the CommandKeys Table 7 gives them, a
RetryCount of 0 after a session that succeeded, a CurrentTime the ACS can read. Judged on every
Inform seen during the run, and on one of a session Knock asks for, so a case run alone has
one to judge."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Final

from knock.check.cases import case
from knock.check.context import CheckContext
from knock.check.memo import memo
from knock.cwmp.values import InvalidValue, parse_datetime
from knock.notify import Arrival

SECTION: Final = "TR-069 Annex A.3.3.1"
# The forced Inform parameters every version of the data model has (TR-181 Device:2,
# TR-098 InternetGatewayDevice:1 forcedInform), all strings.
FORCED: Final = (
    "DeviceInfo.HardwareVersion",
    "DeviceInfo.SoftwareVersion",
    "DeviceInfo.ProvisioningCode",
    "ManagementServer.ParameterKey",
    "ManagementServer.ConnectionRequestURL",
)
FORCED_TR098: Final = ("DeviceSummary", "DeviceInfo.SpecVersion")
# TR-069 §3.7.1.5, Table 7: the standard event codes; "M <method>" and "X <OUI> <event>" are
# the others allowed.
EVENTS: Final = re.compile(
    r"(0 BOOTSTRAP|1 BOOT|2 PERIODIC|3 SCHEDULED|4 VALUE CHANGE|5 KICKED|6 CONNECTION REQUEST"
    r"|7 TRANSFER COMPLETE|8 DIAGNOSTICS COMPLETE|9 REQUEST DOWNLOAD"
    r"|10 AUTONOMOUS TRANSFER COMPLETE|11 DU STATE CHANGE COMPLETE"
    r"|12 AUTONOMOUS DU STATE CHANGE COMPLETE|13 WAKEUP|14 HEARTBEAT"
    r"|M [A-Za-z_]+|X [0-9A-F]{6} .+)"
)
# An M event comes with the event of what it caused (Table 7).
ALONG: Final = {"M Reboot": "1 BOOT", "M ScheduleInform": "3 SCHEDULED"}
UNKNOWN_TIME: Final = "0001-01-01T00:00:00Z"  # TR-069: a CPE that does not know the time
CLOCK_SKEW: Final = 300.0  # seconds the device's clock may differ before a warning


def forced(ctx: CheckContext) -> list[str]:
    root = ctx.dut.root
    extra = FORCED_TR098 if root == "InternetGatewayDevice." else ()
    return [root + leaf for leaf in (*FORCED, *extra)]


async def fresh(ctx: CheckContext, *, reuse: bool = True) -> Arrival:
    """The Inform of a session Knock asks for now (a GetParameterValues in it), after the
    sessions before it succeeded; or, when *reuse*, that of the session an earlier case asked
    for so, while the device opened none since: the Inform cases in a row judge one session."""
    asked = memo(ctx).fresh
    latest = ctx.dut.informs[-1] if ctx.dut.informs else None
    if reuse and latest is not None and asked.get(ctx.device_id) == latest.session_id:
        ctx.record_arrival(latest)
        ctx.note(f"judging session {latest.session_id}, asked for by an earlier case")
        return latest
    with ctx.watch() as sessions:
        await ctx.read(ctx.ms("ConnectionRequestURL"))
        arrival = await sessions.inform(None)
    asked[ctx.device_id] = arrival.session_id
    return arrival


def every(ctx: CheckContext, latest: Arrival) -> list[Arrival]:
    """Every Inform seen during the run, *latest* among them."""
    seen = [a for a in ctx.dut.informs if a.session_id != latest.session_id]
    ctx.note(f"{len(seen) + 1} Informs judged")
    return [*seen, latest]


@case(
    "inform.forced-parameters",
    f"{SECTION}; TR-181/TR-098 forcedInform",
    "Every Inform carries the forced parameters of the data model (DeviceInfo versions and "
    "ProvisioningCode, ParameterKey, ConnectionRequestURL; DeviceSummary and SpecVersion on "
    "TR-098)",
)
async def forced_parameters(ctx: CheckContext) -> None:
    for arrival in every(ctx, await fresh(ctx)):
        names = dict(arrival.parameters)
        missing = [n for n in forced(ctx) if n not in names]
        ctx.expect(
            not missing,
            f"the Inform of session {arrival.session_id} [{', '.join(arrival.events)}] lacks "
            f"{', '.join(missing)}",
        )


@case(
    "inform.parameter-types",
    SECTION,
    "The Inform's ParameterList gives each forced parameter its type, xsd:string",
)
async def parameter_types(ctx: CheckContext) -> None:
    arrival = await fresh(ctx)
    types = dict(arrival.types)
    wrong = {n: types.get(n) for n in forced(ctx) if n in types and types[n] != "xsd:string"}
    ctx.expect(not wrong, f"the Inform types forced string parameters otherwise: {wrong}")


@case(
    "inform.events",
    f"TR-069 §3.7.1.5 (Table 7), {SECTION}",
    "Every event code is one Table 7 defines (or M/X), only M events carry a CommandKey, and "
    "M Reboot and M ScheduleInform come with 1 BOOT and 3 SCHEDULED",
)
async def events(ctx: CheckContext) -> None:
    for arrival in every(ctx, await fresh(ctx)):
        where = f"the Inform of session {arrival.session_id}"
        codes = [code for code, _key in arrival.command_keys]
        for code, key in arrival.command_keys:
            ctx.expect(EVENTS.fullmatch(code) is not None, f"{where} has event {code!r}")
            ctx.expect(
                code.startswith("M ") or key == "",
                f"{where} gives {code} the CommandKey {key!r}: Table 7 leaves it empty",
            )
            needed = ALONG.get(code)
            ctx.expect(needed is None or needed in codes, f"{where} has {code} without {needed}")


@case(
    "inform.retry-count",
    SECTION,
    "The Inform of a session after one that succeeded carries RetryCount 0",
)
async def retry_count(ctx: CheckContext) -> None:
    arrival = await fresh(ctx)
    ctx.expect(
        arrival.retry_count == 0,
        f"the Inform of session {arrival.session_id}, after sessions that succeeded, carries "
        f"RetryCount {arrival.retry_count}",
    )


@case(
    "inform.current-time",
    SECTION,
    f"CurrentTime is an xsd:dateTime with a zone (or the unknown time {UNKNOWN_TIME}); a "
    f"clock more than {CLOCK_SKEW:g} s off the ACS's warns",
)
async def current_time(ctx: CheckContext) -> None:
    arrival = await fresh(ctx, reuse=False)  # compared with the clock now: a session of now
    text = arrival.current_time
    if text == UNKNOWN_TIME:
        ctx.note("the device says it does not know the time")
        return
    try:
        said = parse_datetime(text)
    except InvalidValue as exc:
        ctx.fail(f"CurrentTime {text!r} is no dateTime: {exc}")
    if said.tzinfo is None:
        ctx.fail(f"CurrentTime {text!r} has no time zone: the ACS cannot place it")
    off = abs((said - datetime.now(UTC)).total_seconds())
    ctx.note(f"CurrentTime {text} is {off:.1f} s off the ACS's clock")
    if off > CLOCK_SKEW:
        ctx.warn(f"CurrentTime {text} is {off:.0f} s off the ACS's clock: is NTP set?")
