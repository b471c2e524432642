"""The simulated CPE: an asyncio task per device that opens CWMP sessions as a real one does.

`SimulatedCpe.run` powers the device on and lives until cancelled. It opens a session whenever an
event is pending (boot, periodic inform, connection request, active value change, scheduled
inform, finished transfer), answers the ACS through `rpc_handler`, carries out what the session
asked for afterwards (reboot, factory reset, transfers), and retries failed sessions with the
back-off of TR-069 §3.2.1.1. Time comes from an injectable `Clock`; nothing blocks a thread, so
thousands of devices share one event loop.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import secrets
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import count
from pathlib import Path
from typing import Final, Protocol

import aiohttp

from knock.cpe.acs_client import AcsClient, AcsRefused
from knock.cpe.datamodel import (
    ActiveNotify,
    DataModel,
    ModelFault,
    ModelSchema,
    load_model,
    template_of,
)
from knock.cpe.defects import NONE, SILENCED, Defect, Defects
from knock.cpe.quirks import Quirks, shaped
from knock.cpe.rpc_handler import (
    FIRMWARE_IMAGE,
    CancelQueuedTransfer,
    Dropped,
    Effect,
    FactoryResetAfterSession,
    Handled,
    InformAt,
    QueuedTransfer,
    QueueTransfer,
    RebootAfterSession,
    handle,
)
from knock.cpe.session_failures import SessionFailures
from knock.cpe.state import DeviceState
from knock.cpe.transfer import Received, perform
from knock.cwmp.envelope import CwmpError, Envelope, UnknownMethod
from knock.cwmp.faults import CpeFault, cpe_fault
from knock.cwmp.namespaces import CWMP_1_2, SOAP_ENV
from knock.cwmp.rpcs import (
    EventStruct,
    Fault,
    Inform,
    InformResponse,
    Rpc,
    TransferCompleteResponse,
)
from knock.cwmp.values import (
    UNKNOWN_TIME,
    InvalidValue,
    format_datetime,
    parse_boolean,
    parse_datetime,
)
from knock.vocab import Event
from knock.xmlsafe import XmlError

# TR-069 §3.2.1.1 defaults, used when the model lacks the parameters.
DEFAULT_RETRY_MINIMUM_WAIT: Final = 5
DEFAULT_RETRY_MULTIPLIER: Final = 2000
_RETRY_STEPS: Final = 10  # from the tenth retry on, the range stops growing


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    """Where a device reads the time and sets its one timer; tests drive a fake one."""

    def time(self) -> float:
        """Unix time, seconds."""
        ...

    def call_later(self, delay: float, callback: Callable[[], None]) -> Cancellable: ...


class LoopClock:
    """Wall-clock time, timers on the running event loop."""

    def time(self) -> float:
        return time.time()

    def call_later(self, delay: float, callback: Callable[[], None]) -> Cancellable:
        return asyncio.get_running_loop().call_later(delay, callback)


@dataclass(frozen=True, slots=True)
class AcsEndpoint:
    """Where and as whom a session reaches the ACS, read from ManagementServer."""

    url: str
    username: str
    password: str


ClientFactory = Callable[[AcsEndpoint], AcsClient]


def default_client(endpoint: AcsEndpoint) -> AcsClient:
    """A client with its own HTTP connection pool, opened for one session and closed after.

    Passing another factory to `SimulatedCpe` is how a fleet would share one pool.
    """
    return AcsClient(endpoint.url, username=endpoint.username, password=endpoint.password)


def trusting_client(tls: ssl.SSLContext) -> ClientFactory:
    """`default_client` checking an HTTPS ACS's certificate with *tls* (`knock.cpe.trust`)."""

    def client(endpoint: AcsEndpoint) -> AcsClient:
        return AcsClient(
            endpoint.url, username=endpoint.username, password=endpoint.password, ssl_context=tls
        )

    return client


def retry_wait_range(
    failures: int,
    minimum_wait: int = DEFAULT_RETRY_MINIMUM_WAIT,
    multiplier: int = DEFAULT_RETRY_MULTIPLIER,
) -> tuple[float, float]:
    """Seconds to wait, (low, high), after *failures* consecutive failed sessions (1 or more).

    With the defaults: 5-10 s after the first failure, 10-20, 20-40, ... and 2560-5120 from the
    tenth on (TR-069 Table 3, from CWMPRetryMinimumWaitInterval and CWMPRetryIntervalMultiplier).
    """
    step = min(max(failures, 1), _RETRY_STEPS) - 1
    ratio = multiplier / 1000
    return minimum_wait * ratio**step, minimum_wait * ratio ** (step + 1)


@dataclass(slots=True)
class SessionCounts:
    """What a device did since this process started it, for a fleet's live view."""

    started: int = 0  # sessions opened, failed ones included
    informed: int = 0  # Informs the ACS accepted
    done: int = 0  # sessions that ended with the ACS's empty reply
    failed: int = 0


class CpeError(ValueError):
    """A device given a parameter or value it cannot take; the message names the device."""


class SessionFailed(RuntimeError):
    """The ACS answered something a session cannot go on from."""


class SimulatedCpe:
    """One simulated device. Its state lives in ``state_dir/<serial>.json`` across restarts.

    *values* sets factory values (by full parameter name) for a device seen for the first time;
    the connection-request credentials default to the serial and a random password, kept in the
    state so the device answers with the same ones after a restart.
    """

    def __init__(
        self,
        serial: str,
        model: ModelSchema | str,
        state_dir: Path | str,
        acs_url: str,
        *,
        acs_username: str = "",
        acs_password: str = "",
        values: Mapping[str, str] | None = None,
        cwmp_ns: str = CWMP_1_2,
        clock: Clock | None = None,
        uniform: Callable[[float, float], float] = random.uniform,
        client_factory: ClientFactory = default_client,
        defects: Defects = NONE,
        quirks: Quirks = frozenset(),
        failures: SessionFailures | None = None,
        transfer_tls: ssl.SSLContext | None = None,
    ) -> None:
        """*failures*: where failed sessions are counted and logged, shared by a fleet's
        devices so that one reason makes one line, not one per device."""
        schema = shaped(model if isinstance(model, ModelSchema) else load_model(model), quirks)
        self.serial = serial
        self.defects = defects  # requirements this device breaks on purpose (knock check)
        self.quirks = quirks  # readings of the spec it makes where the standard leaves freedom
        self._transfer_tls = transfer_tls  # checks HTTPS file servers; None: the system's CAs
        self._ms = schema.management
        self._silenced = {schema.management(leaf) for d, leaf in SILENCED.items() if d in defects}
        defaults = {
            schema.device_info("SerialNumber"): serial,
            self._ms("URL"): acs_url,
            self._ms("Username"): acs_username,
            self._ms("Password"): acs_password,
            self._ms("ConnectionRequestUsername"): serial,
            self._ms("ConnectionRequestPassword"): secrets.token_urlsafe(12),
        }
        factory = {k: v for k, v in defaults.items() if template_of(k) in schema.params}
        try:
            self.state = DeviceState.open(
                Path(state_dir), serial, schema, {**factory, **(values or {})}
            )
            self._follow_configured_acs(acs_url)
        except (ModelFault, InvalidValue) as exc:
            raise CpeError(
                f"device {serial}: bad factory value ({exc}); give parameters of model "
                f"{schema.name} values of their types"
            ) from None
        self._ns = cwmp_ns
        self._clock: Clock = clock or LoopClock()
        self._uniform = uniform
        self._client_factory = client_factory
        self._wake = asyncio.Event()
        self._in_session = False
        self._after_session: list[str] = []  # session requests that came during a session
        # The events pending when the ACS last held the device's requests (HoldRequests): they
        # alone open no new session; the next session for another reason carries them.
        self._held_events: list[EventStruct] = []
        self.counts = SessionCounts()
        self._failure_log = failures or SessionFailures()
        self._failures = 0  # consecutive failed sessions: the Inform's RetryCount
        self._retry_at = 0.0
        self._last_done = -math.inf  # when the last session that succeeded ended
        self._boot_time = 0.0
        self._boot_interval = 0  # PeriodicInformInterval at boot (periodic-interval-ignored)
        self._schedule: tuple[str, ...] = ()  # the periodic settings the cadence follows
        self._periodic_checked = 0.0  # periodic informs up to this time are accounted for
        self._scheduled: list[InformAt] = []
        self._ids = count(1)
        self._on_settled: list[Callable[[], None]] = []
        self.received: list[Received] = []  # files Downloads brought, since this process started

    @property
    def model(self) -> DataModel:
        return self.state.model

    @property
    def in_session(self) -> bool:
        return self._in_session

    def request_session(self, event: str = Event.CONNECTION_REQUEST) -> None:
        """Open a session soon with *event* in its Inform; during a session, right after it.

        Requests while one is pending make no extra session. An explicit request skips the
        wait of a session retry: whoever asked shows the ACS is there.
        """
        if event == Event.CONNECTION_REQUEST and Defect.NO_CR_EVENT in self.defects:
            event = Event.PERIODIC  # a session, but not one the ACS can tell it asked for
        self._add_event(event)
        self._retry_at = 0.0

    def _add_event(self, event: str) -> None:
        if self._in_session:
            # The current Inform may carry the same event: its acknowledgement would swallow
            # this one, which asks for a session after the one it interrupted.
            if event not in self._after_session:
                self._after_session.append(event)
        else:
            self.state.add_event(event)
        self._wake.set()

    def set_fact(self, name: str, value: str) -> None:
        """`set_value` for what the device's own services give it (its ConnectionRequestURL,
        the methods it takes requests by): a factory reset keeps it, as a real device comes
        back with the same listeners."""
        self.set_value(name, value)
        self.state.factory[name] = value

    def set_value(self, name: str, value: str) -> None:
        """Change a parameter as the device itself would, notifying the ACS as set by it.

        Raises `CpeError` for a name the model lacks or a value that does not fit.
        """
        try:
            level = self.model.set_value(name, value)
        except (ModelFault, InvalidValue) as exc:
            raise CpeError(
                f"device {self.serial}: cannot set {name} to {value!r} ({exc}); name a parameter"
                f" of model {self.model.schema.name} and give a value of its type"
            ) from None
        if level == 2 and self._notifies_actively(name):
            self._add_event(Event.VALUE_CHANGE)
        self.state.save()

    def _notifies_actively(self, name: str) -> bool:
        """Whether a change of *name*, actively notified, opens a session of its own (unless a
        defect makes it wait for the next session)."""
        if name in self._silenced:
            return False
        set_by_acs = self.model.definition(name).active_notify in (
            ActiveNotify.NORMAL,
            ActiveNotify.CAN_DENY,
        )
        return not (set_by_acs and Defect.NO_ACTIVE_NOTIFY in self.defects)

    def on_settled(self, callback: Callable[[], None]) -> None:
        """Call *callback* at power-on and after every session: when what the ACS set takes
        effect, as on a real CPE, which applies a session's changes once it ends."""
        self._on_settled.append(callback)

    async def run(self) -> None:
        """Power on, then live until cancelled."""
        self._boot()
        self._settled()
        while True:
            now = self._clock.time()
            self._collect_due_events(now)
            for transfer in [t for t in self.state.transfers if t.due <= now]:
                await self._perform(transfer)
            if self.state.events not in ([], self._held_events) and now >= self._due(now):
                await self._session()
                continue
            await self._sleep_until(self._next_deadline(now))

    # --- the device's life ----------------------------------------------------------------

    def _follow_configured_acs(self, acs_url: str) -> None:
        # An operator pointing the device at another ACS is a new ACS URL: bootstrap again.
        url = self._ms("URL")
        if self.state.factory.get(url) != acs_url:
            self.state.factory[url] = acs_url
            self.model.set_value(url, acs_url)
            self.state.bootstrapped = False
            self.state.save()

    def _boot(self) -> None:
        now = self._clock.time()
        self._boot_time = self._periodic_checked = now
        self._boot_interval = self._setting("PeriodicInformInterval", 0)
        self._schedule = self._periodic_schedule()
        self._scheduled.clear()  # a reboot forgets ScheduleInform requests, as RAM does
        if not self.state.bootstrapped:
            self.state.add_event(Event.BOOTSTRAP)
        self.state.add_event(Event.BOOT)

    def _due(self, now: float) -> float:
        """When the pending events may open a session: after a failed session's retry wait;
        one for active notifications alone also waits DefaultActiveNotificationThrottle
        seconds since the last session that succeeded ended (TR-181)."""
        if any(event.event_code != Event.VALUE_CHANGE for event in self.state.events):
            return self._retry_at
        throttle = self._setting("DefaultActiveNotificationThrottle", 0)
        return max(self._retry_at, self._last_done + throttle)

    def _collect_due_events(self, now: float) -> None:
        self._tick_uptime(now)
        schedule = self._periodic_schedule()
        if schedule != self._schedule:
            # A new schedule counts from when it was set: its moments before then were not
            # missed, as TR-069 names the moments at which Informs occur.
            self._schedule, self._periodic_checked = schedule, max(self._periodic_checked, now)
        due = self._next_periodic(self._periodic_checked)
        if due is not None and due <= now:
            self.state.add_event(Event.PERIODIC)
            self._periodic_checked = now
        for request in [r for r in self._scheduled if r.due <= now]:
            self._scheduled.remove(request)
            self.state.add_event(Event.SCHEDULED)
            self.state.add_event(Event.M_SCHEDULE_INFORM, self._command_key(request.command_key))

    def _next_deadline(self, now: float) -> float | None:
        deadlines = [request.due for request in self._scheduled]
        deadlines += [transfer.due for transfer in self.state.transfers]
        periodic = self._next_periodic(self._periodic_checked)
        if periodic is not None:
            deadlines.append(periodic)
        if self.state.events and self._due(now) > now:
            deadlines.append(self._due(now))
        uptime = self.model.schema.device_info("UpTime")
        if self.model.has(uptime) and self.model.notification(uptime) == 2:
            # UpTime changes each second: an active notification of it is due at the next.
            deadlines.append(self._boot_time + math.floor(now - self._boot_time) + 1)
        return min(deadlines, default=None)

    async def _sleep_until(self, deadline: float | None) -> None:
        self._wake.clear()
        timer = None
        if deadline is not None:
            timer = self._clock.call_later(max(0.0, deadline - self._clock.time()), self._wake.set)
        try:
            await self._wake.wait()
        finally:
            if timer is not None:
                timer.cancel()

    def _periodic_schedule(self) -> tuple[str, ...]:
        return tuple(
            self._read(self._ms(leaf), "")
            for leaf in ("PeriodicInformEnable", "PeriodicInformInterval", "PeriodicInformTime")
        )

    def _next_periodic(self, after: float) -> float | None:
        """When the first periodic inform after *after* is due, or None when they are off."""
        enabled = parse_boolean(self._read(self._ms("PeriodicInformEnable"), "false"))
        interval = self._setting("PeriodicInformInterval", 0)
        if Defect.PERIODIC_INTERVAL_IGNORED in self.defects:
            interval = self._boot_interval
        if not enabled or interval <= 0:
            return None
        # A PeriodicInformTime sets the phase; without one, the cadence counts from boot.
        base = self._boot_time
        reference = self._read(self._ms("PeriodicInformTime"), UNKNOWN_TIME)
        if reference != UNKNOWN_TIME:
            moment = parse_datetime(reference)
            base = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
        return base + (math.floor((after - base) / interval) + 1) * interval

    def _read(self, name: str, default: str) -> str:
        return self.model.get(name) if self.model.has(name) else default

    def _setting(self, leaf: str, default: int) -> int:
        """An integer ManagementServer parameter, or *default* when the model lacks it."""
        return int(self._read(self._ms(leaf), str(default)))

    async def _perform(self, transfer: QueuedTransfer) -> None:
        """A transfer: a download is fetched for real, an upload sent; a firmware image that
        arrived whole reboots the device."""
        # What an Upload sends: the device's configuration, as a real one sends its own.
        upload = b"" if transfer.is_download else json.dumps(self.model.to_json()).encode()
        result, received = await perform(
            transfer, self._clock.time, self._transfer_tls, upload, self.defects
        )
        if received is not None:
            self.received.append(received)
        self.state.transfer_done(transfer, result)
        if received is not None and transfer.file_type == FIRMWARE_IMAGE:
            self._boot()

    def _command_key(self, asked: str) -> str:
        """The CommandKey an M event carries: the one asked for, unless a defect drops it."""
        return "" if Defect.COMMAND_KEY_DROPPED in self.defects else asked

    def _apply(self, effect: Effect) -> None:
        if isinstance(effect, RebootAfterSession):
            self.state.add_event(Event.M_REBOOT, self._command_key(effect.command_key))
            self._boot()
        elif isinstance(effect, FactoryResetAfterSession):
            if Defect.FACTORY_RESET_NO_BOOTSTRAP not in self.defects:
                self.state.factory_reset()
            self._boot()
        elif isinstance(effect, InformAt):
            self._scheduled.append(effect)
        elif isinstance(effect, QueueTransfer):
            self.state.queue_transfer(effect.transfer)
        elif isinstance(effect, CancelQueuedTransfer):
            self.state.cancel_transfer(effect.command_key)

    # --- one session ----------------------------------------------------------------------

    async def _session(self) -> None:
        url_before = self._read(self._ms("URL"), "")
        after_session: list[Effect] = []
        self._in_session = True
        self.counts.started += 1
        try:
            await self._converse(after_session)
        except (
            aiohttp.ClientError,
            OSError,
            AcsRefused,
            CwmpError,
            XmlError,
            SessionFailed,
        ) as exc:
            self._session_failed(exc)
        else:
            self.counts.done += 1
            self._failures = 0
            self._retry_at = 0.0
            self._last_done = self._clock.time()
        finally:
            self._in_session = False
        self.state.save()  # what the ACS changed in the data model
        for effect in after_session:
            self._apply(effect)
        if self._read(self._ms("URL"), "") != url_before:
            self.state.bootstrapped = False
            self.state.add_event(Event.BOOTSTRAP)
        if self._after_session:
            for event in self._after_session:
                self.state.add_event(event)
            self._after_session.clear()
            self._retry_at = 0.0
        self._settled()

    def _settled(self) -> None:
        for callback in self._on_settled:
            callback()

    def _session_failed(self, exc: BaseException) -> None:
        self._failures += 1
        self.counts.failed += 1
        self.state.session_failed()
        low, high = retry_wait_range(
            self._failures,
            self._setting("CWMPRetryMinimumWaitInterval", DEFAULT_RETRY_MINIMUM_WAIT),
            self._setting("CWMPRetryIntervalMultiplier", DEFAULT_RETRY_MULTIPLIER),
        )
        wait = 0.0 if Defect.RETRY_AT_ONCE in self.defects else self._uniform(low, high)
        self._retry_at = self._clock.time() + wait
        self._failure_log.failed(self.serial, self._failures, exc, wait)

    def _endpoint(self) -> AcsEndpoint:
        return AcsEndpoint(
            self._read(self._ms("URL"), ""),
            self._read(self._ms("Username"), ""),
            self._read(self._ms("Password"), ""),
        )

    def _inform(self, now: float) -> tuple[Inform, dict[str, str]]:
        """The Inform to send, and the value changes it reports."""
        self._refresh_uptime()
        if Defect.NO_PASSIVE_NOTIFY in self.defects:
            changes = self.model.changes()
            self.model.clear_changes(
                {n: v for n, v in changes.items() if self.model.notification(n) == 1}
            )
        changes = self.model.changes()
        events = list(self.state.events)
        if changes and EventStruct(Event.VALUE_CHANGE) not in events:
            events.append(EventStruct(Event.VALUE_CHANGE))
        inform = Inform(
            device_id=self.model.device_id(),
            events=events,
            max_envelopes=0 if Defect.MAX_ENVELOPES_0 in self.defects else 1,
            current_time=format_datetime(datetime.fromtimestamp(now, UTC)),
            # A device with the defect counts one failed attempt more than it made.
            retry_count=self._failures + (Defect.RETRY_COUNT_STUCK in self.defects),
            parameter_list=self.model.inform_parameters(),
        )
        return inform, changes

    def _refresh_uptime(self) -> None:
        """UpTime as of now, for what the device sends: an Inform carries its change."""
        name = self.model.schema.device_info("UpTime")
        if self.model.has(name):
            self.model.set_value(name, str(int(self._clock.time() - self._boot_time)))

    def _tick_uptime(self, now: float) -> None:
        """UpTime as of *now* between sessions, notified as the ACS set it: actively, a
        session of its own (TR-069 §3.7.1.5, 4 VALUE CHANGE)."""
        name = self.model.schema.device_info("UpTime")
        if self.model.has(name) and self.model.notification(name) == 2:
            self.set_value(name, str(int(now - self._boot_time)))

    async def _converse(self, after_session: list[Effect]) -> None:
        async with self._client_factory(self._endpoint()) as client:
            inform, changes = self._inform(self._clock.time())
            reply = await client.send(inform, cwmp_ns=self._ns, id=self._next_id())
            _expect(reply.envelope, InformResponse, "Inform")
            self.counts.informed += 1
            if Defect.COOKIE_DROPPED in self.defects:
                client.new_session()  # the ACS set its cookie on this reply alone
            self.model.clear_changes(changes)
            self.state.inform_accepted(inform.events)
            held = bool(reply.envelope and reply.envelope.hold_requests)
            if Defect.HOLD_REQUESTS_IGNORED in self.defects:
                held = False
            # Held, the device sends none of its own requests (TR-069 §3.5, cwmp:HoldRequests):
            # its transfer results wait for a session in which the ACS does not hold them.
            self._held_events = list(self.state.events) if held else []
            for result in [] if held else list(self.state.completions):
                reply = await client.send(result, cwmp_ns=self._ns, id=self._next_id())
                _expect(reply.envelope, TransferCompleteResponse, "TransferComplete")
                self.state.transfer_acknowledged(result)
            incoming = await self._receive(client, None, self._ns, None)
            while incoming is not None:
                if isinstance(incoming, Envelope) and isinstance(incoming.body, Fault):
                    # The ACS refused what the CPE sent (an overloaded ACS that lost the session
                    # answers 8001). Answering its Fault with a Fault would bounce between the
                    # two for ever: end the session, and retry after the usual back-off.
                    fault = incoming.body
                    raise SessionFailed(
                        f"the ACS answered with fault {fault.fault_code} ({fault.fault_string})"
                    )
                handled = self._answer(incoming)
                if isinstance(handled, Dropped):
                    # Leaving the client's context closes its TCP connection unanswered; the
                    # crashed CWMP client starts again, and says so in its next Inform.
                    self.state.add_event(Event.BOOT)
                    raise SessionFailed(f"dropped the connection on {handled.reason}")
                if isinstance(incoming, Envelope):
                    ns, id_ = incoming.cwmp_ns, incoming.id
                else:
                    ns, id_ = incoming.cwmp_ns or self._ns, incoming.envelope_id
                incoming = await self._receive(client, handled.response, ns, id_)
                # Only now has the ACS surely seen the response the effects belong to.
                for effect in handled.effects:
                    if isinstance(effect, RebootAfterSession | FactoryResetAfterSession):
                        after_session.append(effect)
                    else:
                        self._apply(effect)

    def _answer(self, incoming: Envelope | CwmpError) -> Handled | Dropped:
        if isinstance(incoming, CwmpError):
            return Handled(_fault_for(incoming))
        self._refresh_uptime()
        clock = self._clock.time()
        return handle(
            incoming.body, self.model, clock, self.state.transfers, self.quirks, self.defects
        )

    def _next_id(self) -> str:
        return f"{self.serial}-{next(self._ids)}"

    async def _receive(
        self, client: AcsClient, rpc: Rpc | None, cwmp_ns: str, id_: str | None
    ) -> Envelope | CwmpError | None:
        """Send *rpc* (None: the empty POST), the response to the request whose cwmp:ID is
        *id_*; the ACS's next request, a message it sent that the CPE must refuse, or None
        when the ACS ends the session."""
        if rpc is not None and Defect.CWMP_ID_NOT_ECHOED in self.defects:
            id_ = self._next_id()
        try:
            if rpc is None and Defect.EMPTY_POST_ENVELOPE in self.defects:
                reply = await client.send_bytes(_empty_body(cwmp_ns))
            else:
                reply = await client.send(rpc, cwmp_ns=cwmp_ns, id=id_)
        except CwmpError as exc:
            return exc
        return reply.envelope


def _empty_body(cwmp_ns: str) -> bytes:
    """An envelope with an empty SOAP Body: what the defect empty-post-envelope sends for the
    empty POST."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<soap-env:Envelope xmlns:soap-env="{SOAP_ENV}" xmlns:cwmp="{cwmp_ns}">'
        "<soap-env:Header/><soap-env:Body/></soap-env:Envelope>"
    ).encode()


def _fault_for(error: CwmpError) -> Rpc:
    code = (
        CpeFault.METHOD_NOT_SUPPORTED
        if isinstance(error, UnknownMethod)
        else CpeFault.INVALID_ARGUMENTS
    )
    return cpe_fault(code, str(error))


def _expect(envelope: Envelope | None, expected: type[Rpc], request: str) -> None:
    if envelope is None or not isinstance(envelope.body, expected):
        got = "nothing" if envelope is None else type(envelope.body).__name__
        raise SessionFailed(f"the ACS answered {request} with {got}, not {expected.__name__}")
