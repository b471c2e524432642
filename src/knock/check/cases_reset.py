"""FactoryReset (TR-069 Annex A.4.1.6), asked for in a session a connection request by each
method the device offers opened: the device comes back with 0 BOOTSTRAP and 1 BOOT, is
provisioned again by the ACS in that session (a bootstrap makes Knock forget the credentials it
had set) and takes requests by the method again. Its own family, run last: a reset device has
lost what every earlier case set on it."""

from __future__ import annotations

from knock.check.cases_rpc import ok
from knock.check.cases_rpc_lifecycle import reachable
from knock.check.cases_transfer import offers
from knock.check.context import CheckContext
from knock.check.per_method import per_method
from knock.vocab import Event


@per_method(
    "reset",
    "factory-reset",
    "TR-069 Annex A.4.1.6, §3.7.1.5 (Table 7)",
    "After FactoryReset the device informs with 0 BOOTSTRAP and 1 BOOT, and once the ACS has "
    "provisioned it again takes connection requests by the method; skipped when GetRPCMethods "
    "lacks FactoryReset",
)
async def factory_reset(ctx: CheckContext) -> None:
    await offers(ctx, "FactoryReset")
    with ctx.watch() as sessions:
        (task,) = await ctx.run_tasks([{"name": "factoryReset"}])
        ok(ctx, task)
        restarted = (Event.BOOTSTRAP, Event.BOOT)
        within = ctx.options.device_within
        arrival = await sessions.first(
            lambda a: a.session_id != task.session_id and any(e in a.events for e in restarted),
            within,
        )
        if arrival is None:
            ctx.silent(f"no Inform with {' or '.join(restarted)} within {within:g} s")
        await sessions.session_end(arrival.session_id)
    for event in restarted:
        ctx.expect(
            event in arrival.events,
            f"after FactoryReset the device informed [{', '.join(arrival.events)}], "
            f"without {event}",
        )
    await reachable(ctx)
