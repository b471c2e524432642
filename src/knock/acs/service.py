"""The CWMP service: the HTTP adapter between CPEs, the session core, the store and the hub.

Protocol decisions live in `knock.cwmp.session` (whose turn, which fault) and in
`knock.acs.taskplan` (which RPCs a task needs); this module reads requests, calls them and writes
what they decide.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from aiohttp import hdrs, web

from knock.acs.auth import CpeAuthenticator
from knock.acs.cpe_requests import answer_cpe_request
from knock.acs.preset_source import PresetSource
from knock.acs.presets import (
    PresetOutcome,
    PresetPlan,
    parameter_paths,
    relevant,
    tag_changes,
)
from knock.acs.provisioning import (
    Credentials,
    CrPolicy,
    Provisioned,
    Provisioning,
    StunOffer,
    XmppOffer,
    data_model_root,
    provisioning_for,
)
from knock.acs.taskplan import (
    TaskOutcome,
    TaskPlan,
    TaskSpecError,
    transfer_command_key,
    transfer_task_id,
    untyped_paths,
)
from knock.acs.xmpp_accounts import put_account
from knock.cwmp.breaches import Breach, Rule
from knock.cwmp.deviceid import device_key
from knock.cwmp.faults import AcsFault
from knock.cwmp.rpcs import Fault, Rpc, TransferComplete
from knock.cwmp.session import (
    AcsSession,
    CpeDone,
    CpeRequest,
    CpeResponse,
    InformReceived,
    ProtocolViolation,
    State,
)
from knock.files.links import FileLinks, resolve_download, stored_file_name
from knock.logs import fields
from knock.metrics import Metrics
from knock.notify import Arrival, Hub, SessionEnded, TaskFinished
from knock.ratelog import ReasonLog
from knock.store import Store
from knock.store.limits import TooLongError
from knock.store.rows import InformRecord, ParamValue, TaskResult, TaskRow, TransferDone
from knock.vocab import Event, TaskStatus, XmppSetup

log = logging.getLogger("knock.acs")

COOKIE = "knock_session"
_XML_TYPES = frozenset({"text/xml", "application/xml", "application/soap+xml"})
COOKIELESS = Breach(
    Rule.COOKIE, "a POST without the session cookie, taken by the connection it came over"
)


class Failure(StrEnum):
    """How `AcsService.fail_sessions` fails a session on purpose."""

    HTTP_503 = "http-503"  # the Inform is answered 503 Service Unavailable
    DROP = "drop"  # the connection is closed with the Inform unanswered


@dataclass(eq=False)
class LiveSession:
    token: str
    core: AcsSession
    last_activity: float
    device_id: str = ""
    session_id: int = 0
    task: TaskRow | None = None
    plan: TaskPlan | None = None
    root: str = "Device."  # the data model's root object, from the Inform's parameter names
    provisioning: Provisioning | None = None  # under way in this session
    presets: PresetPlan | None = None  # under way, after provisioning
    events: tuple[str, ...] = ()  # the Inform's event codes
    cwmp_user: str | None = None  # the username its Inform authenticated with
    rpcs: int = 0  # RPCs of this session either way, for its log line
    opened: float = 0.0  # on the service's clock, at the Inform
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # The task serving the HTTP connection of the session's latest POST: it ends when that
    # connection closes (aiohttp's `Request.task`).
    connection: asyncio.Task[None] | None = None
    held: bool = False  # the ACS's last message told the CPE HoldRequests true


@dataclass(frozen=True, slots=True)
class CpeRequestSeen:
    """A request the CPE sent in a session (TransferComplete, ...), for `AcsService.tap`."""

    device_id: str
    session_id: int
    rpc: Rpc
    held: bool  # the ACS's last message before it had said HoldRequests true


class AcsService:
    def __init__(
        self,
        store: Store,
        hub: Hub,
        *,
        authenticator: CpeAuthenticator,
        cr_policy: CrPolicy,
        cr_fixed: Credentials,
        stun_offer: StunOffer | None = None,
        xmpp_offer: XmppOffer | None = None,
        stun_accounts: dict[str, str] | None = None,
        session_timeout: float = 30.0,
        max_body: int = 2 * 1024 * 1024,
        clock: Callable[[], float] = time.monotonic,
        metrics: Metrics | None = None,
        seen_at: Callable[[str, str], None] | None = None,
        file_links: FileLinks | None = None,
    ) -> None:
        """*seen_at*: told each Inform's device id and source address. *file_links*: where
        CPEs fetch stored files, for download tasks that name one."""
        self._store = store
        self._seen_at = seen_at
        self._file_links = file_links
        self._presets = PresetSource(store)
        self._metrics = metrics or Metrics()
        # The counters every session moves, looked up once (labels() takes a lock each call).
        self._informs = self._metrics.rpcs.labels("Inform", "cpe")
        self._ended_ok = self._metrics.sessions_ended.labels("ok")
        self._hub = hub
        self._auth = authenticator
        self._cr_policy = cr_policy
        self._cr_fixed = cr_fixed
        self._stun_offer = stun_offer
        self._xmpp_offer = xmpp_offer
        # STUN username -> password, shared with the STUN server, which checks requests with it.
        self._stun_accounts = stun_accounts if stun_accounts is not None else {}
        # Devices known to hold the credentials Knock set: a cache that spares a store read per
        # session; a bootstrap removes the device again.
        self._provisioned: set[str] = set()
        self._timeout = session_timeout
        self._max_body = max_body
        self._clock = clock
        self._by_token: dict[str, LiveSession] = {}
        self._by_device: dict[str, LiveSession] = {}
        self._reaper: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()  # sessions whose connection closed
        self._holds: dict[str, asyncio.Event] = {}
        self._failing: dict[str, list[Failure]] = {}  # sessions to fail on purpose, by device
        # The live session each keep-alive connection carries (aiohttp's `Request.task`).
        self._by_connection: dict[asyncio.Task[None], LiveSession] = {}
        self._breach_log = ReasonLog(log)
        self._holding_requests: set[str] = set()
        self._taps: list[Callable[[CpeRequestSeen], None]] = []
        self._kept: dict[str, asyncio.Event] = {}  # devices whose sessions wait for more tasks

    def app(self) -> web.Application:
        # aiohttp refuses larger bodies with 413 before our handler reads them.
        app = web.Application(client_max_size=self._max_body)
        app.router.add_post("/{tail:.*}", self.handle)
        app.on_startup.append(self._start)
        app.on_cleanup.append(self._stop)
        return app

    def in_session(self, device_id: str) -> bool:
        return device_id in self._by_device

    @property
    def session_timeout(self) -> float:
        """Seconds of silence after which a session is dropped."""
        return self._timeout

    def hold(self, device_id: str) -> asyncio.Event:
        """Keep the device's next sessions waiting for their InformResponse until the returned
        event is set: the checker needs a device that stays in a session while it sends a
        connection request."""
        return self._holds.setdefault(device_id, asyncio.Event())

    def release(self, device_id: str) -> None:
        held = self._holds.pop(device_id, None)
        if held is not None:
            held.set()

    def fail_sessions(self, device_id: str, hows: Sequence[Failure]) -> None:
        """Fail the device's next sessions on purpose, one per item of *hows*, in turn (none:
        stop failing them): each Inform is recorded and announced, then answered as its item
        says and the session ends `failed-on-purpose`. For `knock check`, which times the
        device's retries (TR-069 §3.2.1.1); nothing else calls it."""
        if hows:
            self._failing[device_id] = list(hows)
        else:
            self._failing.pop(device_id, None)

    def hold_requests(self, device_id: str, hold: bool) -> None:
        """Send the device cwmp:HoldRequests true in every message from now on (*hold*), or
        stop: the checker needs a CPE told not to send its own requests. Never on otherwise."""
        if hold:
            self._holding_requests.add(device_id)
        else:
            self._holding_requests.discard(device_id)

    @contextlib.contextmanager
    def tap(self, seen: Callable[[CpeRequestSeen], None]) -> Iterator[None]:
        """Call *seen* with every request a CPE sends in a session while the block runs."""
        self._taps.append(seen)
        try:
            yield
        finally:
            self._taps.remove(seen)

    def _hold(self, live: LiveSession) -> bool | None:
        """The HoldRequests header of the ACS's next message to *live*'s CPE (None: none)."""
        live.held = live.device_id in self._holding_requests
        return True if live.held else None

    def keep_open(self, device_id: str) -> None:
        """Keep the device's sessions open once their tasks are done, waiting for more: the
        checker runs several cases' tasks in one session a connection request opened. Each
        wait lasts half the session timeout at most (then the session ends as usual); `go_on`
        runs what was queued since, `let_go` ends the session."""
        self._kept.setdefault(device_id, asyncio.Event())

    def go_on(self, device_id: str) -> None:
        """Run the tasks queued for the device's kept session, then wait again."""
        kept = self._kept.get(device_id)
        if kept is not None:
            kept.set()

    def let_go(self, device_id: str) -> None:
        """Stop keeping the device's sessions open: a kept one ends once its tasks are done."""
        kept = self._kept.pop(device_id, None)
        if kept is not None:
            kept.set()

    @property
    def live_sessions(self) -> int:
        return len(self._by_token)

    async def _start(self, _app: web.Application) -> None:
        # Tasks a dead process left running are not settled here: other processes may be
        # running them. The device's next Inform settles them (Store.record_inform); on SQLite,
        # the start after a crash does (Store.recover_after_crash, in knock.server.start).
        self._reaper = asyncio.create_task(self._reap_forever())

    async def _stop(self, _app: web.Application) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        for live in list(self._by_token.values()):
            await self._end(live, "aborted")
        await asyncio.gather(*self._closing, return_exceptions=True)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        token = request.cookies.get(COOKIE, "")
        live = self._by_token.get(token)
        if live is None:
            denied = await self._auth.check(request)
            if denied is not None:
                return denied
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            self._metrics.bad_input.labels("too-large").inc()
            raise
        if body.strip() and request.content_type not in _XML_TYPES:
            self._metrics.bad_input.labels("content-type").inc()
            return web.Response(
                status=415,
                text=f"CWMP bodies are text/xml, not {request.content_type}\n",
            )
        if live is None and not token:
            live = self._by_connection_of(request, body)
        if live is None:
            live = LiveSession(secrets.token_urlsafe(18), AcsSession(self._max_body), self._clock())
        async with live.lock:
            live.last_activity = self._clock()
            try:
                response = await self._step(live, body, request)
            except TooLongError as exc:
                # The same input would fail again: the device must send less, not retry.
                log.warning("device %s: %s; answered fault 8003", live.device_id or "?", exc)
                self._metrics.bad_input.labels("cwmp-fault").inc()
                reply = live.core.reply_fault(AcsFault.INVALID_ARGUMENTS, str(exc))
                return _xml(reply, status=400)
            self._watch_connection(live, request)
        return response

    def _by_connection_of(self, request: web.Request, body: bytes) -> LiveSession | None:
        """The session a POST without the session cookie belongs to: the one its keep-alive
        connection carries, when the POST is what that session waits for (the empty POST, or
        the response to the ACS's request). TR-069 §3.4.2 has the CPE return the ACS's
        cookies; the session's POSTs share its keep-alive connection too, which names the
        session as surely: a device that drops the cookie there stays manageable, and the
        breach is recorded. Any other POST (a new Inform above all) starts afresh, as before."""
        live = self._by_connection.get(request.task)
        if live is None or live.core.state in (State.AWAIT_INFORM, State.DONE):
            return None
        if body.strip() and not live.core.awaiting_response:
            return None
        if COOKIELESS not in live.core.breaches:
            live.core.breaches.append(COOKIELESS)
        return live

    def _watch_connection(self, live: LiveSession, request: web.Request) -> None:
        """End the session as soon as the connection carrying it closes: a device that dropped
        it (crashed, gave up) is not coming back to this session, and whatever it was running
        is to be retried rather than held until the timeout. A device that asked to close the
        connection after this POST (Connection: close) may go on over a new one, and is left to
        the timeout."""
        if live.token not in self._by_token or not request.keep_alive:
            return
        connection = request.task
        if live.connection is connection:
            return
        if live.connection is not None:
            self._by_connection.pop(live.connection, None)
        live.connection = connection
        self._by_connection[connection] = live
        connection.add_done_callback(lambda _: self._connection_closed(live, connection))

    def _connection_closed(self, live: LiveSession, connection: asyncio.Task[None]) -> None:
        if self._by_connection.get(connection) is live:
            del self._by_connection[connection]
        if live.connection is connection and live.token in self._by_token:
            ending = asyncio.create_task(self._end_closed(live, connection))
            self._closing.add(ending)
            ending.add_done_callback(self._closing.discard)

    async def _end_closed(self, live: LiveSession, connection: asyncio.Task[None]) -> None:
        async with live.lock:
            # A POST that came over a new connection meanwhile keeps the session.
            if live.connection is connection and live.token in self._by_token:
                await self._end(live, "closed")

    async def _step(self, live: LiveSession, body: bytes, request: web.Request) -> web.Response:
        event = live.core.receive(body)
        metrics = self._metrics
        if isinstance(event, InformReceived):
            live.rpcs += 1
            self._informs.inc()
            return await self._on_inform(live, event, request)
        if isinstance(event, ProtocolViolation):
            log.warning(
                "device %s: %s (fault %d)", live.device_id or "?", event.message, event.fault_code
            )
            metrics.bad_input.labels("cwmp-fault").inc()
            metrics.faults.labels(str(event.fault_code), "acs").inc()
            reply = live.core.reply_fault(event.fault_code, event.message)
            if live.core.awaiting_response and live.session_id:
                # What the device answered to the ACS's request is unusable: whether it ran the
                # request is unknown, so the session ends and its task is retried.
                await self._end(live, "error")
            return _xml(reply, status=event.http_status)
        if isinstance(event, CpeRequest):
            live.rpcs += 1
            metrics.rpcs.labels(type(event.rpc).__name__, "cpe").inc()
            for seen in list(self._taps):
                seen(CpeRequestSeen(live.device_id, live.session_id, event.rpc, live.held))
            if isinstance(event.rpc, TransferComplete):
                await self._on_transfer_complete(live, event.rpc)
            answer = answer_cpe_request(event.rpc)
            if isinstance(answer, Fault):
                metrics.faults.labels(str(answer.fault_code), "acs").inc()
                return _xml(live.core.reply(answer), status=500)
            return _xml(live.core.reply(answer))
        if isinstance(event, CpeResponse) and isinstance(event.rpc, Fault):
            metrics.faults.labels(str(event.rpc.fault_code), "cpe").inc()
        if isinstance(event, CpeResponse) and live.provisioning is not None:
            following = await self._on_provisioning(live, event)
            if following is not None:
                return self._request(live, following)
            return await self._after_provisioning(live)
        if isinstance(event, CpeResponse) and live.presets is not None:
            applied = live.presets.on_response(event.rpc)
            if not isinstance(applied, PresetOutcome):
                return self._request(live, applied)
            live.presets = None
            await self._presets_applied(live, applied)
            return await self._advance(live, None)
        if isinstance(event, CpeResponse):
            step = self._on_response(live, event)
            if not isinstance(step, TaskResult):
                return self._request(live, step)
            return await self._advance(live, step)
        assert isinstance(event, CpeDone)
        if live.task is not None or live.provisioning is not None or live.presets is not None:
            # The CPE answered our request with an empty POST, which no response may be: the
            # task is retried, or ends unknown when running it twice would do harm
            # (knock.store.retry), as for any session that dies with a task sent.
            await self._end(live, "error")
            return web.Response(status=204)
        live.provisioning = await self._provisioning(live)
        if live.provisioning is not None:
            return self._request(live, live.provisioning.first())
        return await self._after_provisioning(live)

    async def _after_provisioning(self, live: LiveSession) -> web.Response:
        """The presets that apply to the device, then its tasks."""
        plan = await self._preset_plan(live)
        first = None if plan is None else plan.first()
        if plan is not None and first is not None:
            live.presets = plan
            return self._request(live, first)
        return await self._advance(live, None)

    async def _preset_plan(self, live: LiveSession) -> PresetPlan | None:
        """Tags the applying presets add or delete are stored at once; what they set on the
        device comes back as a plan (knock.acs.presets)."""
        configurations = await self._presets.configurations(live.device_id, live.events)
        if not configurations:
            return None
        add, remove = tag_changes(configurations)
        if add:
            await self._store.add_tags(live.device_id, add)
        if remove:
            await self._store.delete_tags(live.device_id, remove)
        paths = parameter_paths(configurations)
        if not paths:
            return None
        stored = await self._store.get_parameters([live.device_id], paths)
        known = relevant(configurations, stored.get(live.device_id, []))
        return PresetPlan(configurations, known, _now())

    async def _presets_applied(self, live: LiveSession, outcome: PresetOutcome) -> None:
        for prefix in outcome.delete_under:
            await self._store.delete_parameters_under(live.device_id, prefix)
        if outcome.put:
            await self._store.put_parameters(live.device_id, outcome.put, _now())
        if outcome.fault is not None:
            log.warning(
                "device %s refused what its presets set (%s); they are tried again at its next "
                "session: check their parameter names and values",
                live.device_id,
                outcome.fault,
            )

    async def _on_transfer_complete(self, live: LiveSession, rpc: TransferComplete) -> None:
        """Record the outcome of a transfer on the download task that asked for it."""
        fault = rpc.fault_struct
        task_id = transfer_task_id(rpc.command_key)
        done = TransferDone(fault.fault_code, fault.fault_string, rpc.start_time, rpc.complete_time)
        task = None
        if task_id is not None:
            task = await self._store.record_transfer_complete(live.device_id, task_id, done, _now())
        if task is None:
            log.info(
                "device %s: TransferComplete for CommandKey %r matches no download task; "
                "another ACS or the device itself started it",
                live.device_id,
                rpc.command_key,
            )
            return
        log.info(
            "device %s: download task %d: transfer %s",
            live.device_id,
            task.id,
            f"failed ({fault.fault_code} {fault.fault_string})" if fault.fault_code else "done",
        )
        self._hub.announce(TaskFinished(task.id, live.device_id, task.status))

    def _request(self, live: LiveSession, rpc: Rpc) -> web.Response:
        """Send the CPE the ACS's next request, counted."""
        live.rpcs += 1
        self._metrics.rpcs.labels(type(rpc).__name__, "acs").inc()
        return _xml(live.core.request(rpc, self._hold(live)))

    async def _provisioning(self, live: LiveSession) -> Provisioning | None:
        """What to set first, when Knock holds no connection-request credentials for the device."""
        if live.device_id in self._provisioned:
            return None
        target = await self._store.get_cr_target(live.device_id)
        if target is not None and target.password is not None:
            self._provisioned.add(live.device_id)
            return None
        if self._cr_policy is CrPolicy.OFF:
            return None  # before reading what the device lacks: OFF devices never hold them
        return provisioning_for(
            self._cr_policy,
            live.root,
            self._cr_fixed,
            self._stun_offer,
            self._xmpp_offer,
            lacks=frozenset() if target is None else target.lacks,
        )

    async def _remember_lacks(self, live: LiveSession, outcome: str | None) -> None:
        """Store what provisioning found the device unable to do: what it faulted on, and
        what it was asked when its session died (*outcome*), so that no later session asks
        again. An ACS shutting down ("aborted") says nothing about the device."""
        assert live.provisioning is not None
        lacking = live.provisioning.found_lacking
        probing = live.provisioning.probing
        if outcome not in (None, "aborted") and probing is not None:
            lacking.add(probing)
        if lacking:
            log.warning(
                "device %s cannot do %s%s; Knock reads it by leaf names from now on",
                live.device_id,
                ", ".join(sorted(lacking)),
                f" (its session ended: {outcome})" if outcome else "",
            )
            await self._store.add_device_lacks(live.device_id, lacking)

    async def _on_provisioning(self, live: LiveSession, event: CpeResponse) -> Rpc | None:
        """The next provisioning RPC, or None once the device's answers are stored."""
        assert live.provisioning is not None
        step = live.provisioning.on_response(event.rpc)
        if not isinstance(step, Provisioned):
            return step
        await self._remember_lacks(live, None)
        live.provisioning = None
        device_id = live.device_id
        # What the device accepted is what it holds now: recorded at once, not at a re-read.
        known = list(({p.path: p for p in step.seen} | {p.path: p for p in step.accepted}).values())
        if step.cr is None:
            await self._store.put_parameters(device_id, known, _now())
        else:
            await self._store.record_provisioned(
                device_id, known, step.cr.username, step.cr.password, _now()
            )
        if step.xmpp_setup is not None:
            await self._store.record_xmpp_setup(
                device_id, step.xmpp_setup, step.xmpp_detail or None, _now()
            )
        if step.xmpp_setup is XmppSetup.FAILED:
            log.warning(
                "device %s: no XMPP connection requests: %s. Knock deleted what it added and "
                "reaches the device by HTTP or UDP; see the device's _xmppSetup",
                device_id,
                step.xmpp_detail,
            )
        if step.cr is None:
            log.warning(
                "device %s refused its connection-request credentials (%s); connection requests "
                "to it will fail until it accepts them at a later session",
                device_id,
                getattr(event.rpc, "fault_code", type(event.rpc).__name__),
            )
            return None
        if step.stun is not None:
            await self._store.set_stun_credentials(
                device_id, step.stun.username, step.stun.password
            )
            self._stun_accounts[step.stun.username] = step.stun.password
        if step.xmpp is not None:
            # Before the session ends: the device logs in as soon as it applies the values.
            await put_account(self._store, step.xmpp.username, step.xmpp.password, device_id)
        self._provisioned.add(device_id)
        log.info(
            "device %s: connection-request credentials set%s%s",
            device_id,
            ", STUN enabled" if step.stun is not None else "",
            ", XMPP account created" if step.xmpp is not None else "",
        )
        return None

    async def _on_inform(
        self, live: LiveSession, event: InformReceived, request: web.Request
    ) -> web.Response:
        inform = event.inform
        device_id = device_key(inform.device_id)
        denied = await self._auth.check_device(request, device_id, inform.device_id.serial_number)
        if denied is not None:
            return denied
        live.cwmp_user = self._auth.user(request)
        if request.transport is None or request.transport.is_closing():
            # The device gave up on this POST before the ACS read it (an overloaded ACS reads
            # late) and has retried since, perhaps sessions ago. Acting on it would replay old
            # events: a stale 0 BOOTSTRAP would forget the credentials provisioned since.
            log.warning(
                "device %s: dropped an Inform (events %s) whose connection had closed before it "
                "was read; the device retries it if it still needs to",
                device_id,
                [e.event_code for e in inform.events],
            )
            return web.Response(status=503)
        previous = self._by_device.get(device_id)
        if previous is not None and previous is not live:
            # The device started over (a reboot, a lost connection): its old session is dead.
            await self._end(previous, "superseded")
        events = [e.event_code for e in inform.events]
        live.device_id = device_id
        live.events = tuple(events)
        live.root = data_model_root([p.name for p in inform.parameter_list])
        if Event.BOOTSTRAP in events:
            self._provisioned.discard(device_id)
        live.session_id = await self._store.record_inform(
            InformRecord(
                device_id=device_id,
                manufacturer=inform.device_id.manufacturer,
                oui=inform.device_id.oui,
                product_class=inform.device_id.product_class,
                serial_number=inform.device_id.serial_number,
                events=events,
                parameters=[ParamValue(p.name, p.value, p.type) for p in inform.parameter_list],
                cwmp_version=event.cwmp_ns,
                now=_now(),
            )
        )
        self._by_token[live.token] = live
        self._by_device[device_id] = live
        if self._seen_at is not None and request.remote:
            self._seen_at(device_id, request.remote)
        live.opened = self._clock()
        self._metrics.sessions_started.inc()
        log.debug("device %s: session %d opened, events %s", device_id, live.session_id, events)
        reported = tuple((p.name, p.value) for p in inform.parameter_list)
        self._hub.announce(
            Arrival(
                device_id,
                tuple(events),
                live.session_id,
                reported,
                command_keys=tuple((e.event_code, e.command_key) for e in inform.events),
                types=tuple((p.name, p.type) for p in inform.parameter_list),
                retry_count=inform.retry_count,
                current_time=inform.current_time,
                max_envelopes=inform.max_envelopes,
                peer=request.remote or "",
            )
        )
        failing = self._failing.get(device_id)
        if failing:
            return await self._fail_on_purpose(live, failing, request)
        held = self._holds.get(device_id)
        if held is not None:
            await held.wait()
        response = _xml(live.core.reply_inform(self._hold(live)))
        # What set_cookie(COOKIE, token, httponly=True) writes, without the http.cookies
        # Morsel it builds and renders for each session (the token is URL-safe base64).
        response.headers[hdrs.SET_COOKIE] = f"{COOKIE}={live.token}; HttpOnly; Path=/"
        return response

    async def _fail_on_purpose(
        self, live: LiveSession, failing: list[Failure], request: web.Request
    ) -> web.Response:
        how = failing.pop(0)
        if not failing:
            del self._failing[live.device_id]
        log.info(
            "device %s: session %d failed on purpose (%s)", live.device_id, live.session_id, how
        )
        await self._end(live, "failed-on-purpose")
        if how is Failure.DROP and request.transport is not None:
            request.transport.close()  # aiohttp then writes nothing for the answer below
        return web.Response(status=503, text="Knock fails this session on purpose\n")

    def _on_response(self, live: LiveSession, event: CpeResponse) -> Rpc | TaskResult:
        """The next RPC of the running task, or how the task ended."""
        task, plan = live.task, live.plan
        assert task is not None and plan is not None  # the core only reports awaited responses
        rpc = event.rpc
        if isinstance(rpc, Fault):
            return TaskResult(
                task.id,
                TaskStatus.FAULTED,
                fault_code=str(rpc.fault_code),
                fault_string=rpc.fault_string,
                fault_detail=[
                    {"parameter": f.parameter_name, "code": f.fault_code, "message": f.fault_string}
                    for f in rpc.set_parameter_values_faults
                ]
                or None,
            )
        try:
            step = plan.on_response(rpc)
        except TaskSpecError as exc:
            return TaskResult(
                task.id, TaskStatus.FAULTED, fault_code="knock", fault_string=str(exc)
            )
        if isinstance(step, TaskOutcome):
            return TaskResult(
                task.id, TaskStatus.DONE, step.result, put=step.put, delete_under=step.delete_under
            )
        return step

    async def _advance(self, live: LiveSession, done: TaskResult | None) -> web.Response:
        """Record the task that ended and send the next one's first RPC, or end the session.
        One store transaction per CPE POST keeps the session path short."""
        while True:
            kept = live.device_id in self._kept
            task = await self._store.advance_session(
                live.device_id, live.session_id, _now(), done, end_when_idle=not kept
            )
            if done is not None:
                log.info("device %s: task %d %s", live.device_id, done.task_id, done.status)
                self._hub.announce(TaskFinished(done.task_id, live.device_id, done.status))
            live.task = live.plan = None
            if task is None and kept:
                # Claims what was queued meanwhile; ends the session once no longer kept.
                await self._wait_kept(live)
                done = None
                continue
            if task is None:
                live.core.finish()
                self._forget(live, "ok")
                return web.Response(status=204)
            try:
                spec = await self._resolved(live, task.spec)
                types = await self._stored_types(live.device_id, spec)
                plan = TaskPlan(spec, types, transfer_command_key(str(task.public_id)))
                first = plan.first()
            except TaskSpecError as exc:
                done = TaskResult(
                    task.id, TaskStatus.FAULTED, fault_code="knock", fault_string=str(exc)
                )
                continue
            live.task, live.plan = task, plan
            return self._request(live, first)

    async def _wait_kept(self, live: LiveSession) -> None:
        """Wait, its tasks done, until the device's kept session is told to go on or let go
        (`keep_open`); after half the session timeout it is let go, so that it ends before the
        reaper would take it."""
        kept = self._kept.get(live.device_id)
        if kept is None:
            return
        try:
            async with asyncio.timeout(self._timeout / 2):
                await kept.wait()
        except TimeoutError:
            self.let_go(live.device_id)
        kept.clear()  # set again by the next go_on, which comes after its tasks are queued
        live.last_activity = self._clock()

    async def _resolved(self, live: LiveSession, spec: Mapping[str, Any]) -> Mapping[str, Any]:
        """The task with a stored file it names filled in (URL, type, size, credentials: the
        device's own when the file server asks each device for its CWMP pair)."""
        name = stored_file_name(spec)
        if name is None:
            return spec
        if self._file_links is None:
            raise TaskSpecError(
                f"the task names stored file {name!r} but this ACS runs no file server; "
                "start knock serve with files_port set, or give the task a url"
            )
        row = await self._store.get_file(name)
        if row is None:
            raise TaskSpecError(
                f"file {name!r} is no longer stored: upload it again (PUT /files/{name}) and "
                "queue the task anew"
            )
        return resolve_download(spec, row, self._file_links, self._auth.pair(live.cwmp_user))

    async def _stored_types(self, device_id: str, spec: Mapping[str, Any]) -> dict[str, str]:
        """Types the device reported for the values a task sets without naming one."""
        paths = set(untyped_paths(spec))
        if not paths:
            return {}
        stored = await self._store.get_parameters([device_id], sorted(paths))
        return {p.path: p.type for p in stored.get(device_id, []) if p.path in paths and p.type}

    async def _end(self, live: LiveSession, outcome: str) -> None:
        """End a session that did not finish normally; a task it was running is retried, or
        faulted after its last attempt, or ends `unknown` if the device must not run it twice
        (knock.store.retry)."""
        if live.core.state is not State.DONE:
            live.core.finish()
        if live.task is not None:
            for task in await self._store.retry_running(live.session_id, outcome, _now()):
                log.info(
                    "device %s: task %d %s after its session ended (%s), attempt %d",
                    live.device_id,
                    task.id,
                    task.status,
                    outcome,
                    task.attempts,
                )
                if task.status in (TaskStatus.FAULTED, TaskStatus.UNKNOWN):  # final
                    self._hub.announce(TaskFinished(task.id, live.device_id, task.status))
            live.task = live.plan = None
        if live.provisioning is not None:
            await self._remember_lacks(live, outcome)
            live.provisioning = None
        if live.session_id:
            await self._store.end_session(live.session_id, outcome, _now())
        self._forget(live, outcome)

    def _forget(self, live: LiveSession, outcome: str) -> None:
        self._by_token.pop(live.token, None)
        if live.connection is not None and self._by_connection.get(live.connection) is live:
            del self._by_connection[live.connection]
        if self._by_device.get(live.device_id) is live:
            del self._by_device[live.device_id]
        if live.session_id:
            ok = outcome == "ok"
            (self._ended_ok if ok else self._metrics.sessions_ended.labels(outcome)).inc()
            # The line's fields are built only when it is written, not for every session.
            if log.isEnabledFor(logging.INFO):
                duration = self._clock() - live.opened
                log.info(
                    "device %s: session %d %s after %.0f ms, %d RPCs",
                    live.device_id,
                    live.session_id,
                    outcome,
                    duration * 1000,
                    live.rpcs,
                    extra=fields(
                        event="session",
                        device_id=live.device_id,
                        session_id=live.session_id,
                        outcome=outcome,
                        duration_s=round(duration, 6),
                        rpcs=live.rpcs,
                    ),
                )
            breaches = tuple(live.core.breaches)
            if breaches:
                self._breach_log.hit(
                    "a device broke CWMP session rules the ACS coped with",
                    f"device {live.device_id}, session {live.session_id}: "
                    + "; ".join(map(str, breaches)),
                )
            self._hub.announce(SessionEnded(live.device_id, live.session_id, outcome, breaches))

    async def _reap_forever(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self._timeout / 4))
            deadline = self._clock() - self._timeout
            for live in [s for s in self._by_token.values() if s.last_activity < deadline]:
                async with live.lock:
                    if live.last_activity < deadline:
                        await self._end(live, "timeout")
            # The device opened a later session in another process: this one is dead, and
            # would otherwise keep the device "in session" here until it timed out.
            for live in [s for s in self._by_token.values() if self._moved_on(s)]:
                async with live.lock:
                    if self._moved_on(live):
                        await self._end(live, "superseded")

    def _moved_on(self, live: LiveSession) -> bool:
        later = self._hub.remote_session(live.device_id)
        return later is not None and later > live.session_id


def _now() -> datetime:
    return datetime.now(UTC)


def _xml(body: bytes, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, content_type="text/xml", charset="utf-8")
