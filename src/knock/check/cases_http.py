"""HTTP connection-request cases (TR-069 §3.2.2)."""

from __future__ import annotations

from knock.check.cases import case
from knock.check.context import CheckContext

SECTION = "TR-069 §3.2.2"


@case(
    "http.digest-valid",
    SECTION,
    "A CR with valid Digest credentials is answered 200 or 204 with an empty body, then an "
    "Inform with 6 CONNECTION REQUEST follows",
)
async def digest_valid(ctx: CheckContext) -> None:
    with ctx.watch() as sessions:
        answer = await ctx.http_cr()
        ctx.expect(
            answer.status in (200, 204),
            f"a CR with valid Digest credentials was answered {answer.status}, not 200 or 204",
        )
        ctx.expect(answer.body == b"", f"the 200/204 carries a body of {len(answer.body)} bytes")
        await sessions.inform()
