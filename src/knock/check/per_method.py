"""Cases run once per connection-request method: each of a function's cases has every session
it needs opened by a connection request by its method, so a device is shown to perform the
function whichever way the ACS reaches it. Ids are `<family>.<method>.<name>`
(`rpc.xmpp.gpv-leaf`), so `rpc.xmpp.*` is the profile of one method and `rpc.*.gpv-leaf` one
function by every method."""

from __future__ import annotations

from collections.abc import Callable

from knock.check.cases import CaseFn, case
from knock.check.context import CheckContext
from knock.check.offers import require
from knock.vocab import CrMethod


async def offered(ctx: CheckContext, method: CrMethod) -> None:
    """Skip the case unless the device offers *method* (an http:// ConnectionRequestURL for
    HTTP, see `offers` for the others)."""
    if method is CrMethod.HTTP:
        await ctx.cr_url()
    else:
        await require(ctx, "STUN" if method is CrMethod.UDP else "XMPP")


def per_method(
    family: str, name: str, requirement: str, title: str, *, shares_session: bool = False
) -> Callable[[CaseFn], CaseFn]:
    """Register the decorated function as one case per method, `<family>.<method>.<name>`
    (*shares_session*: see `case`)."""

    def register(run: CaseFn) -> CaseFn:
        for method in CrMethod:

            async def by_method(ctx: CheckContext, method: CrMethod = method) -> None:
                await offered(ctx, method)
                await run(ctx)

            case(
                f"{family}.{method}.{name}",
                requirement,
                title,
                via=method,
                shares_session=shares_session,
            )(by_method)
        return run

    return register
