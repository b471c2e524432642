"""HTTP connection-request cases (TR-069 §3.2.2)."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit, urlunsplit

from knock.check.cases import case
from knock.check.context import CheckContext
from knock.vocab import Event

SECTION = "TR-069 §3.2.2"


@case(
    "http.digest-valid",
    SECTION,
    "A CR with valid Digest credentials is answered 200 or 204 with an empty body, then an "
    "Inform with 6 CONNECTION REQUEST follows",
)
async def digest_valid(ctx: CheckContext) -> None:
    username, password = await ctx.credentials()
    with ctx.watch() as sessions:
        answer = await ctx.digest_cr(username, password)
        ctx.expect(
            answer.status in (200, 204),
            f"a CR with valid Digest credentials was answered {answer.status}, not 200 or 204",
        )
        ctx.expect(answer.body == b"", f"the 200/204 carries a body of {len(answer.body)} bytes")
        await sessions.inform()


ACCEPTED = (200, 204)


@case(
    "http.no-credentials",
    SECTION,
    "A CR without credentials is answered 401 with a Digest challenge, and no session follows",
)
async def no_credentials(ctx: CheckContext) -> None:
    with ctx.watch() as sessions:
        answer = await ctx.challenge()
        ctx.expect(
            any(c.lower().startswith("digest") for c in answer.challenges),
            "the 401 carries no WWW-Authenticate: Digest challenge",
        )
        await sessions.no_session()


@case(
    "http.wrong-password",
    SECTION,
    "A CR answering the challenge with a wrong password is answered 401, and no session follows",
)
async def wrong_password(ctx: CheckContext) -> None:
    username, password = await ctx.credentials()
    with ctx.watch() as sessions:
        answer = await ctx.digest_cr(username, password + "-wrong")
        ctx.expect(
            answer.status == 401,
            f"a Digest answer with a wrong password was answered {answer.status}",
        )
        await sessions.no_session()


@case(
    "http.basic-refused",
    SECTION,
    "A CR with the right credentials sent as Basic is refused, and no session follows",
)
async def basic_refused(ctx: CheckContext) -> None:
    username, password = await ctx.credentials()
    with ctx.watch() as sessions:
        answer = await ctx.http_get(authorization=ctx.basic(username, password))
        ctx.expect(
            answer.status not in ACCEPTED,
            f"Basic credentials were answered {answer.status}: TR-069 §3.2.2 requires Digest",
        )
        await sessions.no_session()


@case(
    "http.nonce-reuse",
    SECTION,
    "A Digest answer replayed after it was used (same nonce, same nc) is answered 401 and opens "
    "no session; answering the fresh challenge then works",
)
async def nonce_reuse(ctx: CheckContext) -> None:
    username, password = await ctx.credentials()
    first = await ctx.challenge()
    used = ctx.digest(first, username, password)
    with ctx.watch() as sessions:
        accepted = await ctx.http_get(first.url, used)
        ctx.expect(accepted.status in ACCEPTED, f"a valid CR was answered {accepted.status}")
        await sessions.inform(None)
        await sessions.session_end()
    await ctx.ready()
    with ctx.watch() as sessions:
        replayed = await ctx.http_get(first.url, used)
        ctx.expect(
            replayed.status == 401,
            f"the replayed Authorization (nonce and nc used before) was answered {replayed.status}",
        )
        await sessions.no_session()
        fresh = await ctx.http_get(first.url, ctx.digest(replayed, username, password))
        ctx.expect(
            fresh.status in ACCEPTED,
            f"answering the fresh challenge of that 401 was answered {fresh.status}",
        )
        await sessions.inform(None)


@case(
    "http.wrong-path",
    SECTION,
    "A CR to a path other than the published ConnectionRequestURL is refused, and no session "
    "follows",
)
async def wrong_path(ctx: CheckContext) -> None:
    username, password = await ctx.credentials()
    published = urlsplit(await ctx.cr_url())
    wrong = urlunsplit(published._replace(path=published.path.rstrip("/") + "-knock-check"))
    with ctx.watch() as sessions:
        answer = await ctx.http_cr(username, password, url=wrong)
        ctx.expect(
            answer.status not in ACCEPTED,
            f"a CR to {wrong} (not the published {published.path}) was answered {answer.status}",
        )
        await sessions.no_session()


@case(
    "http.burst-one-session",
    SECTION,
    "Several CRs before the session starts are each answered, and one session follows",
)
async def burst(ctx: CheckContext) -> None:
    count = max(2, ctx.options.cr_attempts)
    with ctx.watch() as sessions:
        answers = await asyncio.gather(*(ctx.http_cr() for _ in range(count)))
        statuses = [a.status for a in answers]
        ctx.expect(
            any(s in ACCEPTED for s in statuses),
            f"none of {count} simultaneous CRs was accepted (answers {statuses})",
        )
        ctx.expect(
            all(s in (*ACCEPTED, 503) for s in statuses),
            f"{count} simultaneous CRs were answered {statuses}",
        )
        opened = await sessions.inform(None)
        await sessions.session_end()
        await sessions.collect(ctx.options.quiet_for)
        more = sessions.answering(besides=opened)
        ctx.expect(
            not more,
            f"{count} simultaneous CRs (answers {statuses}) gave {1 + len(more)} sessions: "
            f"{', '.join(str(a.session_id) for a in [opened, *more])}, each after the first "
            f"with {Event.CONNECTION_REQUEST}",
        )


@case(
    "http.busy",
    SECTION,
    "A CR during a session is answered 503, or accepted and a new session follows the current one",
)
async def busy(ctx: CheckContext) -> None:
    with ctx.watch() as sessions:
        with ctx.held():
            first = await ctx.http_cr()
            ctx.expect(first.status in ACCEPTED, f"a valid CR was answered {first.status}")
            await sessions.inform(None)
            during = await ctx.http_cr()
        if during.status == 503:
            return
        ctx.expect(
            during.status in ACCEPTED,
            f"a CR during a session was answered {during.status}, neither 503 nor 200/204",
        )
        ctx.note("accepted during the session: a new session must follow it")
        await sessions.inform(None, nth=2)


@case(
    "http.rate-limit",
    SECTION + " (SHOULD)",
    "A CR right after the session the previous one opened is refused with 503; a device that "
    "takes it and opens a session warns (a CPE SHOULD limit CRs, and MUST refuse with 503)",
)
async def rate_limit(ctx: CheckContext) -> None:
    with ctx.watch() as sessions:
        first = await ctx.http_cr()
        ctx.expect(first.status in ACCEPTED, f"a valid CR was answered {first.status}")
        await sessions.inform(None)
        await sessions.session_end()
        again = await ctx.http_cr()
        if again.status in ACCEPTED:
            # Its session must not meet the next case's request.
            await sessions.inform(None, nth=2)
            await sessions.session_end()
            ctx.warn(
                f"a CR right after the session the previous one opened was answered "
                f"{again.status} and opened a session: the device does not rate-limit "
                "connection requests, which TR-069 §3.2.2 says it SHOULD"
            )
        ctx.expect(
            again.status == 503,
            f"a CR right after the session the previous one opened was answered {again.status}: "
            "a device that refuses a CR to limit their rate MUST answer 503",
        )
        retry = again.header("Retry-After")
        ctx.note(f"Retry-After: {retry}" if retry else "no Retry-After header")
        await sessions.no_session()
