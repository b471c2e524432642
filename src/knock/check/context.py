"""What a case works with: the running ACS, the device under test, and tools to drive and
observe it, each recording what it sends and sees in the case's evidence."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NoReturn
from urllib.parse import urlsplit

import aiohttp

from knock.auth import (
    AuthError,
    DigestChallenge,
    basic_authorization,
    new_cnonce,
    select_challenge,
)
from knock.check.evidence import Evidence, Kind
from knock.check.options import CheckOptions
from knock.check.verdict import CaseFailed, CaseSkipped, CaseWarned, DeviceSilent
from knock.connreq.dispatcher import CrResult
from knock.hosts import over
from knock.notify import Arrival, SessionEnded, Subscription, TaskFinished
from knock.server import Running
from knock.store.rows import CrTarget, TaskRow
from knock.vocab import CrMethod, Event, TaskStatus

MS = "Device.ManagementServer."
GPV, SPV = "GetParameterValues", "SetParameterValues"


@dataclass(frozen=True, slots=True)
class HttpExchange:
    """One GET to the device and its answer."""

    url: str
    authorization: str | None
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    @property
    def challenges(self) -> list[str]:
        return [v for k, v in self.headers if k.lower() == "www-authenticate"]

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


@dataclass(frozen=True, slots=True)
class KeptSession:
    """A session a connection request by *via* opened for a case that shares its session, kept
    open by the ACS once its tasks were done, for the next such case of the same method."""

    via: CrMethod
    reached: CrResult  # the connection request that opened it
    arrival: Arrival  # its Inform
    opened_for: str  # the case whose request opened it


@dataclass
class DeviceUnderTest:
    """The ACS and the one device a run checks; each case gets a `CheckContext` on it."""

    acs: Running
    device_id: str
    options: CheckOptions
    root: str = "Device."  # the data model's root object: Device. or InternetGatewayDevice.
    informs: list[Arrival] = field(default_factory=list)  # every Inform seen during the run
    last_session: float = 0.0  # time.monotonic() of the last of them
    last_accepted: float = 0.0  # time.monotonic() of the last CR the device answered 200/204
    # Why the device stopped responding, naming the case it stopped in; "" while it responds.
    unresponsive: str = ""
    kept: KeptSession | None = None  # the session the ACS keeps open for the next case
    _http: aiohttp.ClientSession | None = field(default=None, repr=False)
    _listener: asyncio.Task[None] | None = field(default=None, repr=False)

    def listen(self) -> None:
        """Record every Inform of the device from now on, whichever case (if any) waits for
        it: a case that fails early leaves behind the session its request opened."""
        self._listener = asyncio.create_task(self._listen())

    async def _listen(self) -> None:
        with self.acs.hub.subscribe(self.device_id) as announcements:
            while True:
                item = await announcements.next()
                if isinstance(item, Arrival):
                    self.last_session = time.monotonic()
                    self.informs.append(item)

    @property
    def management(self) -> str:
        return f"{self.root}ManagementServer."

    def http(self) -> aiohttp.ClientSession:
        if self._http is None:
            # One connection per request, as an ACS makes them: a device may close after any.
            self._http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(force_close=True),
                cookie_jar=aiohttp.DummyCookieJar(),
                timeout=aiohttp.ClientTimeout(total=10),
                auto_decompress=False,
            )
        return self._http

    def continues(self, via: CrMethod | None) -> KeptSession | None:
        """The kept session a case by *via* that shares its session runs its tasks in: one
        opened by a request by the same method, still the device's latest, not ended."""
        kept = self.kept
        if kept is None or kept.via is not via or not self.acs.acs.in_session(self.device_id):
            return None
        latest = self.informs[-1].session_id if self.informs else None
        return kept if latest == kept.arrival.session_id else None

    def let_go(self) -> None:
        """End the kept session (once the ACS is done with it) and keep none from now on."""
        self.kept = None
        self.acs.acs.let_go(self.device_id)

    async def close(self) -> None:
        self.let_go()
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        if self._http is not None:
            await self._http.close()
            self._http = None

    def context(self, via: CrMethod | None = None, shares_session: str = "") -> CheckContext:
        return CheckContext(self, Evidence(), via, shares_session)


class CheckContext:
    def __init__(
        self,
        dut: DeviceUnderTest,
        evidence: Evidence,
        via: CrMethod | None = None,
        shares_session: str = "",
    ) -> None:
        self.dut = dut
        self.evidence = evidence
        # The connection-request method every session of a per-method case must be opened by;
        # None: whichever the ACS picks, or none when the device is in a session already.
        self.via = via
        # The id of a case whose tasks may run in a session kept open from the case before it
        # and kept open for the next (`Case.shares_session`); "" for any other.
        self.shares_session = shares_session
        self._recorded: set[int] = set()  # sessions already in the evidence
        # The rate-limit wait `settled(defer_gap=True)` left to the case's first request.
        self._gap_due = False
        self._gap: asyncio.Task[None] | None = None

    @property
    def acs(self) -> Running:
        return self.dut.acs

    @property
    def device_id(self) -> str:
        return self.dut.device_id

    @property
    def options(self) -> CheckOptions:
        return self.dut.options

    def ms(self, leaf: str) -> str:
        """The full name of a ManagementServer parameter in the device's data model."""
        return self.dut.management + leaf

    # --- verdicts ------------------------------------------------------------------------------

    def note(self, summary: str, detail: str = "") -> None:
        self.evidence.add(Kind.NOTE, summary, detail)

    def fail(self, reason: str) -> NoReturn:
        raise CaseFailed(reason)

    def silent(self, reason: str) -> NoReturn:
        """Fail the case because the device did not answer within a wait."""
        raise DeviceSilent(reason)

    def skip(self, reason: str) -> NoReturn:
        raise CaseSkipped(reason)

    def warn(self, reason: str) -> NoReturn:
        """End the case in a warning: for a requirement the standard words as SHOULD."""
        raise CaseWarned(reason)

    def expect(self, condition: bool, reason: str) -> None:
        """Fail with *reason* unless *condition* holds."""
        if not condition:
            self.fail(reason)

    # --- what the ACS knows --------------------------------------------------------------------

    async def target(self) -> CrTarget:
        target = await self.acs.store.get_cr_target(self.device_id)
        if target is None:
            self.fail(f"the ACS knows no device {self.device_id}: did its first Inform fail?")
        return target

    async def credentials(self) -> tuple[str, str]:
        """The connection-request credentials Knock set on the device."""
        target = await self.target()
        if target.username is None or target.password is None:
            self.fail(
                f"Knock holds no connection-request credentials for {self.device_id}: the device "
                "did not accept SetParameterValues of ConnectionRequestUsername/Password"
            )
        return target.username, target.password

    async def parameters(self, *names: str) -> dict[str, str]:
        """The stored values of *names* (full paths), as the device last reported them; a
        name ending in "." gives every parameter under it."""
        rows = await self.acs.store.get_parameters([self.device_id], list(names))
        return {p.path: p.value for p in rows.get(self.device_id, []) if p.value is not None}

    async def cr_url(self) -> str:
        target = await self.target()
        url = target.management.get("ConnectionRequestURL", "")
        if not url:
            self.fail("the device reported no ManagementServer.ConnectionRequestURL")
        if urlsplit(url).scheme != "http":
            # datamodel.cr-url-http fails for it; here there is nothing to talk to.
            self.skip(f"ConnectionRequestURL {url!r} is not an http:// URL")
        return url

    # --- tasks: what the ACS asks of the device in a session ----------------------------------

    async def run_task(self, spec: Mapping[str, Any], within: float | None = None) -> TaskRow:
        """Queue *spec* (a GenieACS task), get the device into a session (a connection request
        unless it is in one) and wait until the task finished or faulted."""
        (done,) = await self.run_tasks([spec], within)
        return done

    async def run_tasks(
        self, specs: Sequence[Mapping[str, Any]], within: float | None = None
    ) -> list[TaskRow]:
        """`run_task` for several tasks at once, queued in order so that one session carries
        them all. With `via` set (a per-method case), the device is first let out of any
        session, and the session must be one a connection request by that method opened."""
        wait = within if within is not None else self.options.inform_within
        kept = self.dut.continues(self.via) if self.shares_session else None
        if kept is None:
            self.dut.let_go()
            await self.before_request()
            if self.via is not None or not self.acs.acs.in_session(self.device_id):
                await self.ready()  # the connection request below must not meet the rate limit
            if self.shares_session and self.via is not None:
                self.acs.acs.keep_open(self.device_id)
        rows = await self.queue(specs)
        waiting = {row.id for row in rows}
        names = ", ".join(str(spec["name"]) for spec in specs)
        sessions: list[Arrival] = []
        with self.acs.hub.subscribe(self.device_id) as announcements:
            reach = None
            if kept is not None:
                self.record_arrival(kept.arrival)
                self.note(
                    f"in session {kept.arrival.session_id}, opened by the {self.via} connection "
                    f"request of {kept.opened_for} and kept open for the next cases"
                )
                self.acs.acs.go_on(self.device_id)
            elif not self.acs.acs.in_session(self.device_id):
                reach = asyncio.create_task(
                    self.acs.dispatcher.reach(self.device_id, wait, via=self.via)
                )
            try:
                async with asyncio.timeout(wait):
                    await self._until_finished(announcements, waiting, sessions)
            except TimeoutError:
                ids = [str(a.session_id) for a in sessions]
                if kept is not None:
                    ids.insert(0, str(kept.arrival.session_id))
                why = (
                    f"the device never answered it in sessions {', '.join(ids)}"
                    if ids
                    else "no session began"
                )
                self.silent(f"the device did not answer {names} within {wait:g} s: {why}")
            finally:
                # A per-method case needs the request's outcome; it ends by its own deadline.
                if reach is not None and (self.via is None or waiting) and not reach.done():
                    reach.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await reach
                await self._cancel(waiting)
        if self.via is not None and kept is not None:
            self._opened_by_via(kept.reached)
        elif self.via is not None:
            reached = None if reach is None else await reach
            self._opened_by_via(reached)
            if self.shares_session and reached is not None and sessions:
                self.dut.kept = KeptSession(self.via, reached, sessions[-1], self.shares_session)
        return [await self._finished(row.id) for row in rows]

    async def queue(self, specs: Sequence[Mapping[str, Any]]) -> list[TaskRow]:
        """Queue *specs* with the ACS, in order, for the device's next session; asks for none."""
        rows = []
        for spec in specs:
            row = await self.acs.store.add_task(
                self.device_id, str(spec["name"]), dict(spec), datetime.now(UTC)
            )
            self.evidence.add(Kind.SENT, f"task {row.id}: {spec['name']}", _show(spec))
            rows.append(row)
        return rows

    async def finished(self, rows: Sequence[TaskRow], within: float | None = None) -> list[TaskRow]:
        """Wait until the tasks *rows* (`queue`) ran, in a session the device opened itself or
        one it is in; fails as silent when they did not within *within* (`inform_within`), and
        takes them off the queue."""
        wait = within if within is not None else self.options.inform_within
        store = self.acs.store
        with self.acs.hub.subscribe(self.device_id) as announcements:
            waiting = set()
            for row in rows:
                now = await store.get_task(row.id)
                if now is not None and now.status in (TaskStatus.QUEUED, TaskStatus.RUNNING):
                    waiting.add(row.id)
            try:
                async with asyncio.timeout(wait):
                    await self._until_finished(announcements, waiting, [])
            except TimeoutError:
                await self._cancel(waiting)
                self.silent(f"the device did not run tasks {sorted(waiting)} within {wait:g} s")
        return [await self._finished(row.id) for row in rows]

    async def _until_finished(
        self, announcements: Subscription, waiting: set[int], sessions: list[Arrival]
    ) -> None:
        """Take the device's announcements until every task of *waiting* finished (each is
        removed from it), recording the Informs heard, in *sessions* too."""
        while waiting:
            item = await announcements.next()
            if isinstance(item, Arrival):
                self.record_arrival(item)
                sessions.append(item)
            if isinstance(item, TaskFinished):
                waiting.discard(item.task_id)

    async def _cancel(self, waiting: Iterable[int]) -> None:
        """Take the tasks *waiting* off the ACS's queue where still there. Left queued, the ACS
        would send them in every later session: a device that cannot take one would fail every
        case after this one."""
        for task_id in sorted(waiting):
            if await self.acs.store.delete_task(task_id):
                self.note(f"task {task_id} cancelled: removed from the ACS's queue")

    def _opened_by_via(self, reached: CrResult | None) -> None:
        """Fail unless the session that ran the tasks was opened by a connection request by
        `via`: a per-method case proves nothing about a session the device opened itself."""
        if reached is None:
            self.fail(f"the tasks ran in a session no {self.via} connection request opened")
        self.note(f"{self.via} connection request: {reached.outcome.value}, {reached.detail}")
        if not reached.delivered:
            self.fail(
                f"the {self.via} connection request that should open the session was not "
                f"delivered ({reached.outcome.value}: {reached.detail})"
            )

    async def _finished(self, task_id: int) -> TaskRow:
        done = await self.acs.store.get_task(task_id)
        assert done is not None  # it just finished
        if done.status == TaskStatus.FAULTED:
            self.evidence.add(
                Kind.RECEIVED, f"task {task_id} faulted {done.fault_code}", str(done.fault_string)
            )
        else:
            self.evidence.add(Kind.RECEIVED, f"task {task_id} done", _show(done.result))
        return done

    async def read(self, *names: str) -> dict[str, str]:
        """The values of *names* as the device gives them now (GetParameterValues in a
        session); fails the case when the device faults."""
        done = await self.run_task(gpv(*names))
        self._taken(done, GPV, names)
        return _values(done)

    async def set_values(self, values: Mapping[str, str]) -> None:
        """SetParameterValues in one task; fails the case when the device faults."""
        self._taken(await self.run_task(_spv(values)), SPV, values)

    async def change(self, values: Mapping[str, str]) -> Callable[[CheckContext], Awaitable[None]]:
        """`set_values` after reading what the device holds, both in one session (one
        connection request, one rate-limit wait); returns what sets that back."""
        got, done = await self.run_tasks([gpv(*values), _spv(values)])
        if got.status == TaskStatus.FAULTED and done.status != TaskStatus.FAULTED:
            self.note("the values were set after the read that failed: they cannot be set back")
        self._taken(got, GPV, values)
        self._taken(done, SPV, values)
        before = _values(got)

        async def undo(ctx: CheckContext) -> None:
            ctx.note(f"setting back {', '.join(f'{k} = {v}' for k, v in before.items())}")
            await ctx.set_values(before)

        return undo

    def _taken(self, done: TaskRow, rpc: str, names: Iterable[str]) -> None:
        """Fail the case when the device faulted *done*, its *rpc* of *names*."""
        if done.status == TaskStatus.FAULTED:
            self.fail(
                f"the device refused {rpc} of {', '.join(names)}: "
                f"{done.fault_code} {done.fault_string}"
            )

    async def responds(self) -> str:
        """ "" when the device still responds: its session ends (a dropped one once the ACS's
        session timeout passed) and it answers a GetParameterValues in a session of its own;
        otherwise why not. Evidence after a failure that the cases after it can still judge
        the device."""
        self.note("checking that the device still responds")
        # By any method: a device that no longer takes one method's requests still responds.
        probe = CheckContext(self.dut, self.evidence)
        try:
            await probe.settled()
            url = self.ms("ConnectionRequestURL")
            await probe.run_task({"name": "getParameterValues", "parameterNames": [url]})
        except CaseFailed as exc:
            return str(exc)
        self.note("the device still responds")
        return ""

    async def settled(self, *, defer_gap: bool = False) -> None:
        """`ready`, waiting for the device's session to end as long as the ACS keeps a silent
        one open (a device that dropped its connection ends it only so). *defer_gap*: the wait
        for the device's rate limit is left to the first request (`before_request`), so that a
        case that sends nothing (skipped, or judging what was seen) does not wait for it."""
        await self.idle(self.acs.acs.session_timeout + self.options.inform_within)
        if not defer_gap:
            await self.ready()
            return
        if self.dut.last_accepted > self.dut.last_session:
            await self._session_of_accepted()
            await self.idle()
        self._gap_due = True

    async def before_request(self) -> None:
        """Wait for the rate-limit wait `settled(defer_gap=True)` left, once: every request to
        the device (a connection request by any method) comes after it, the first one and any
        sent alongside it."""
        if not self._gap_due:
            return
        if self._gap is None:
            self._gap = asyncio.ensure_future(self.ready())
        await self._gap
        self._gap_due = False

    async def ready(self) -> None:
        """Wait until the device is in no session and `options.rate_gap` seconds have passed
        since its last session began, so that its rate limit lets a request through."""
        dut = self.dut
        if dut.last_accepted > dut.last_session:
            await self._session_of_accepted()
        await self.idle()
        wait = max(dut.last_session, dut.last_accepted) + self.options.rate_gap - time.monotonic()
        if wait > 0:
            self.note(f"waiting {wait:.2f} s for the device's rate limit")
            await asyncio.sleep(wait)

    async def _session_of_accepted(self) -> None:
        """Wait for the session an accepted request (of this case or an earlier one) opens, so
        that it does not meet the next request."""
        accepted = self.dut.last_accepted
        with self.acs.hub.subscribe(self.device_id) as announcements:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.options.inform_within):
                    while self.dut.last_session < accepted:
                        item = await announcements.next()
                        if isinstance(item, Arrival):
                            return
            self.note(
                "the request accepted last opened no session within "
                f"{self.options.inform_within:g} s"
            )
            self.dut.last_session = accepted  # waited long enough for it

    async def idle(self, within: float | None = None) -> None:
        """Wait until the device is in no session with the ACS."""
        wait = within if within is not None else self.options.inform_within
        with self.acs.hub.subscribe(self.device_id) as announcements:
            try:
                async with asyncio.timeout(wait):
                    while self.acs.acs.in_session(self.device_id):
                        item = await announcements.next()
                        if isinstance(item, Arrival):
                            self.record_arrival(item)
            except TimeoutError:
                self.silent(f"the device's session did not end within {wait:g} s")

    # --- HTTP connection requests --------------------------------------------------------------

    async def http_get(
        self, url: str | None = None, authorization: str | None = None
    ) -> HttpExchange:
        """One GET to *url* (the device's ConnectionRequestURL by default)."""
        url = url or await self.cr_url()
        await self.before_request()
        scheme = authorization.split(" ", 1)[0] if authorization else "no"
        self.evidence.add(
            Kind.SENT,
            f"GET {urlsplit(url).path or '/'} ({scheme} Authorization)"
            f"{over(urlsplit(url).hostname or '')}",
            f"GET {url}" + (f"\nAuthorization: {authorization}" if authorization else ""),
        )
        headers = {"Authorization": authorization} if authorization else {}
        try:
            async with self.dut.http().get(url, headers=headers, allow_redirects=False) as answer:
                body = await answer.read()
                exchange = HttpExchange(
                    url, authorization, answer.status, tuple(answer.headers.items()), body
                )
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.evidence.add(Kind.RECEIVED, f"no answer: {exc!r}")
            self.silent(f"the device did not answer GET {url}: {exc!r}")
        if exchange.status in (200, 204):
            self.dut.last_accepted = time.monotonic()
        self.evidence.add(
            Kind.RECEIVED,
            f"{exchange.status} {len(body)} bytes of body",
            "\n".join(f"{k}: {v}" for k, v in exchange.headers)
            + (f"\n\n{body[:2000]!r}" if body else ""),
        )
        return exchange

    def digest(
        self,
        challenged: HttpExchange,
        username: str,
        password: str,
        *,
        nc: int = 1,
        uri: str | None = None,
    ) -> str:
        """The Authorization answering *challenged*'s Digest challenge for a GET of its URL
        (or of *uri*); fails the case when the device offered no usable Digest challenge."""
        try:
            challenge = select_challenge(challenged.challenges)
        except AuthError as exc:
            self.fail(f"the device's 401 carries no usable Digest challenge: {exc}")
        if not isinstance(challenge, DigestChallenge):
            self.fail("the device's 401 offers Basic only; TR-069 §3.2.2 requires Digest")
        path = uri or _target(challenged.url)
        return challenge.authorization("GET", path, username, password, cnonce=new_cnonce(), nc=nc)

    @staticmethod
    def basic(username: str, password: str) -> str:
        return basic_authorization(username, password)

    async def challenge(self, url: str | None = None) -> HttpExchange:
        """A GET without credentials, which a device must answer 401 with a challenge: fails the
        case, saying that no challenge was made, when the device answers otherwise (a Digest
        case cannot exchange credentials with a device that never asks for them)."""
        first = await self.http_get(url)
        if first.status != 401:
            self.fail(
                f"the device made no challenge: a CR without credentials was answered "
                f"{first.status}, not 401, so no Digest credentials were exchanged (TR-069 "
                "§3.2.2 requires HTTP Digest authentication)"
            )
        return first

    async def digest_cr(self, username: str, password: str, url: str | None = None) -> HttpExchange:
        """A Digest-authenticated connection request: the `challenge`, then a GET answering it
        with *username*/*password*. Returns the answer to that GET."""
        first = await self.challenge(url)
        return await self.http_get(first.url, self.digest(first, username, password))

    async def http_cr(
        self, username: str | None = None, password: str | None = None, url: str | None = None
    ) -> HttpExchange:
        """A connection request as an ACS makes it: GET, and on a 401 GET again answering the
        Digest challenge with *username*/*password* (the stored credentials by default).
        Returns the last answer. For the cases that need a session, not those that judge
        authentication: those use `digest_cr`."""
        if username is None or password is None:
            username, password = await self.credentials()
        first = await self.http_get(url)
        if first.status != 401:
            return first
        return await self.http_get(first.url, self.digest(first, username, password))

    # --- watching sessions ---------------------------------------------------------------------

    @contextlib.contextmanager
    def watch(self) -> Iterator[Watch]:
        """Listen for the device's sessions; enter it before sending what should cause one."""
        with self.acs.hub.subscribe(self.device_id) as subscription:
            yield Watch(self, subscription)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Keep the device's sessions that begin meanwhile open (the ACS delays its
        InformResponse) until the block ends: a device in a session, on demand."""
        self.acs.acs.hold(self.device_id)
        self.note("the ACS holds the device's next session open")
        try:
            yield
        finally:
            self.acs.acs.release(self.device_id)
            self.note("the ACS lets the session go on")

    def record_arrival(self, arrival: Arrival) -> None:
        # A task and a watch may both hear one Inform.
        if arrival.session_id in self._recorded:
            return
        self._recorded.add(arrival.session_id)
        self.evidence.add(
            Kind.INFORM,
            f"Inform [{', '.join(arrival.events)}] session {arrival.session_id}"
            f"{over(arrival.peer)}",
            "\n".join(f"{name} = {value}" for name, value in arrival.parameters),
        )


class Watch:
    """The device's sessions from the moment `CheckContext.watch` was entered."""

    def __init__(self, ctx: CheckContext, subscription: Subscription) -> None:
        self._ctx = ctx
        self._subscription = subscription
        self.arrivals: list[Arrival] = []
        self.ended: list[int] = []
        self.endings: dict[int, SessionEnded] = {}  # how each of them ended, by session id
        self._uncounted: set[int] = set()  # sessions of the device's own, noted as such

    async def _next(self) -> Arrival | SessionEnded | None:
        item = await self._subscription.next()
        if isinstance(item, Arrival):
            self._ctx.record_arrival(item)
            self.arrivals.append(item)
            return item
        if isinstance(item, SessionEnded):
            self.ended.append(item.session_id)
            self.endings[item.session_id] = item
            return item
        return None

    async def inform(
        self,
        event: str | None = Event.CONNECTION_REQUEST,
        within: float | None = None,
        nth: int = 1,
    ) -> Arrival:
        """The *nth* Inform carrying *event* (any Inform when None) since the watch began; fails
        the case when none comes within the options' `inform_within`."""
        wait = within if within is not None else self._ctx.options.inform_within

        def matching() -> list[Arrival]:
            return [a for a in self.arrivals if event is None or event in a.events]

        try:
            async with asyncio.timeout(wait):
                while len(matching()) < nth:
                    await self._next()
        except TimeoutError:
            what = "Inform" if event is None else f"Inform with {event}"
            if not self.arrivals:
                self._ctx.silent(f"no {what} within {wait:g} s")
            others = "; ".join(", ".join(a.events) for a in self.arrivals)
            self._ctx.fail(f"no {what} within {wait:g} s (the device informed with [{others}])")
        return matching()[nth - 1]

    async def first(self, matches: Callable[[Arrival], bool], within: float) -> Arrival | None:
        """The first Inform since the watch began for which *matches* holds, or None when none
        comes within *within* seconds: for what a case waits on without judging it."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                while True:
                    found = next((a for a in self.arrivals if matches(a)), None)
                    if found is not None:
                        return found
                    await self._next()
        return None

    def answering(self, besides: Arrival | None = None) -> list[Arrival]:
        """The sessions seen that answer a connection request (6 CONNECTION REQUEST), but for
        *besides*; each of the device's own (a periodic Inform, a value change) is noted as not
        counted, once."""
        answering = []
        for arrival in self.arrivals:
            if besides is not None and arrival.session_id == besides.session_id:
                continue
            if Event.CONNECTION_REQUEST in arrival.events:
                answering.append(arrival)
            elif arrival.session_id not in self._uncounted:
                self._uncounted.add(arrival.session_id)
                events = ", ".join(arrival.events)
                self._ctx.note(f"a session of the device's own (Inform [{events}]), not counted")
        return answering

    async def no_session(self, within: float | None = None) -> None:
        """Fail the case if the device opens a session with 6 CONNECTION REQUEST within *within*
        seconds. Sessions of the device's own (a periodic Inform, a value change) are noted and
        not counted: a real device's periodic Inform may well fall into the watch."""
        wait = within if within is not None else self._ctx.options.quiet_for
        self._ctx.note(f"watching {wait:g} s for a session that should not come")
        before = {arrival.session_id for arrival in self.arrivals}
        await self.collect(wait)
        for arrival in self.answering():
            if arrival.session_id not in before:
                events = ", ".join(arrival.events)
                self._ctx.fail(
                    f"the device opened a session (Inform [{events}]) that should not come"
                )

    async def collect(self, within: float) -> list[Arrival]:
        """Every session that begins within *within* seconds (and those seen before)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                while True:
                    await self._next()
        return self.arrivals

    async def session_end(
        self, session: int | None = None, within: float | None = None
    ) -> SessionEnded:
        """Wait until *session* (by default that of the last Inform seen) ended; how it did."""
        wait = within if within is not None else self._ctx.options.inform_within
        if session is None:
            if not self.arrivals:
                raise RuntimeError("session_end() before any Inform was seen")
            session = self.arrivals[-1].session_id
        try:
            async with asyncio.timeout(wait):
                while session not in self.ended:
                    await self._next()
        except TimeoutError:
            self._ctx.silent(f"session {session} did not end within {wait:g} s")
        return self.endings[session]


def gpv(*names: str) -> dict[str, Any]:
    """The task reading *names* (full paths, or partial ones ending in a dot)."""
    return {"name": "getParameterValues", "parameterNames": list(names)}


def _spv(values: Mapping[str, str]) -> dict[str, Any]:
    return {"name": "setParameterValues", "parameterValues": [[k, v] for k, v in values.items()]}


def _values(done: TaskRow) -> dict[str, str]:
    return {str(name): str(value) for name, value, _type in done.result}


def _target(url: str) -> str:
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _show(value: object) -> str:
    return json.dumps(value, default=str)
