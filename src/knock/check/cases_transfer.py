"""File transfers and HoldRequests (TR-069 Annex A.3.2.8 Download, A.4.1.5 Upload, A.3.3.2
TransferComplete, §3.5 cwmp:HoldRequests), each asked for in a session a connection request by
each method the device offers opened. The Download's file is one the check's own file server
serves; an Upload goes to a listener of the check's own (`upload_sink`). What the device reports
is watched on the ACS: every request it sends in a session (`AcsService.tap`) and the Inform of
the session that carries it."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from knock.acs.service import CpeRequestSeen
from knock.acs.taskplan import transfer_command_key
from knock.check.cases_rpc import ok, rpc
from knock.check.cases_rpc_lifecycle import keyed
from knock.check.context import CheckContext, Watch
from knock.check.evidence import Kind
from knock.check.memo import memo
from knock.check.upload_sink import upload_sink
from knock.cwmp.rpcs import TransferComplete
from knock.cwmp.values import UNKNOWN_TIME, InvalidValue, parse_datetime
from knock.store.files import FileMeta
from knock.store.rows import TaskRow
from knock.vocab import Event, TaskStatus

FILE_NAME: Final = "knock-check-download.bin"
RANDOM_SIZE: Final = 4096  # bytes served without --download-file
CHUNK: Final = 64 * 1024
MISSING_FILE: Final = "knock-check-no-such-file.bin"
UPLOAD_TYPE: Final = "1 Vendor Configuration File"
TRANSFER_TIME: Final = 30.0  # seconds a small transfer may take, beyond --inform-within
CLOCK_SKEW: Final = 300.0  # the device's clock may be this far off (as inform.current-time)
# TR-069 Annex A.5.1: a file the server answers 404 for is 9016, or 9010 (Download failure)
# from a device that reports no detail; a size other than FileSize said, 9010, 9017 or 9018.
MISSING_FAULTS: Final = ("9016", "9010")
SIZE_FAULTS: Final = ("9018", "9017", "9010")
M_UPLOAD: Final = "M Upload"


@dataclass(frozen=True, slots=True)
class Transfer:
    """A transfer task and what the device reported of it."""

    task: TaskRow  # as it was once the device answered the Download or Upload
    command_key: str
    report: CpeRequestSeen | None = None  # None: answered Status 0, or faulted at once

    @property
    def complete(self) -> TransferComplete:
        assert self.report is not None and isinstance(self.report.rpc, TransferComplete)
        return self.report.rpc


class Reports:
    """The TransferCompletes the device sends while the block of `reports` runs."""

    def __init__(self, ctx: CheckContext) -> None:
        self._ctx = ctx
        self.seen: list[CpeRequestSeen] = []
        self._queue: asyncio.Queue[CpeRequestSeen] = asyncio.Queue()

    def _take(self, seen: CpeRequestSeen) -> None:
        if seen.device_id == self._ctx.device_id and isinstance(seen.rpc, TransferComplete):
            self._queue.put_nowait(seen)

    async def next(self, within: float) -> CpeRequestSeen | None:
        """The next TransferComplete, recorded in the evidence; None after *within* seconds."""
        try:
            if within <= 0:  # wait_for would time out before even a queued one is taken
                seen = self._queue.get_nowait()
            else:
                seen = await asyncio.wait_for(self._queue.get(), within)
        except (TimeoutError, asyncio.QueueEmpty):
            return None
        assert isinstance(seen.rpc, TransferComplete)
        fault = seen.rpc.fault_struct
        self._ctx.evidence.add(
            Kind.RECEIVED,
            f"TransferComplete in session {seen.session_id}"
            + (" while the ACS held requests" if seen.held else ""),
            f"CommandKey {seen.rpc.command_key!r}, FaultCode {fault.fault_code} "
            f"{fault.fault_string!r}, StartTime {seen.rpc.start_time}, "
            f"CompleteTime {seen.rpc.complete_time}",
        )
        self.seen.append(seen)
        return seen


@contextlib.contextmanager
def reports(ctx: CheckContext) -> Iterator[Reports]:
    found = Reports(ctx)
    with ctx.acs.acs.tap(found._take):
        yield found


async def offers(ctx: CheckContext, method: str) -> None:
    """Skip the case unless GetRPCMethods (asked once per run) lists *method*, an RPC Annex A
    leaves optional."""
    known = memo(ctx).rpc_methods
    if ctx.device_id not in known:
        listed = ok(ctx, await ctx.run_task({"name": "getRPCMethods"})).result
        known[ctx.device_id] = frozenset(str(m) for m in listed)
    if method not in known[ctx.device_id]:
        ctx.skip(f"GetRPCMethods does not list {method}, which TR-069 Annex A leaves optional")


async def served(ctx: CheckContext) -> tuple[str, int]:
    """The URL of the download file on the check's file server and its size: --download-file,
    or RANDOM_SIZE random bytes, stored there once per run."""
    base = ctx.acs.files_url
    if base is None:
        ctx.skip("the check's file server is off (files_enable false in the configuration)")
    row = await ctx.acs.store.get_file(FILE_NAME)
    if row is None:
        meta = FileMeta(file_type=ctx.options.download_type)
        content = _read(ctx.options.download_file)
        row = await ctx.acs.store.put_file(FILE_NAME, meta, content, datetime.now(UTC))
    return base + FILE_NAME, row.length


async def _read(path: str) -> AsyncIterator[bytes]:
    if not path:
        yield secrets.token_bytes(RANDOM_SIZE)
        return
    with open(path, "rb") as source:  # noqa: ASYNC230 (a local file, read a chunk at a time)
        while chunk := source.read(CHUNK):
            yield chunk


def download(ctx: CheckContext, url: str, size: int) -> dict[str, Any]:
    return {"name": "download", "url": url, "fileType": ctx.options.download_type, "fileSize": size}


async def downloaded(
    ctx: CheckContext, missing: bool = False, extra: int = 0
) -> tuple[Transfer, Watch]:
    """`transfer` of a Download from the check's file server: of the download file (or, when
    *missing*, of one it does not have), saying its size plus *extra* bytes."""
    url, size = await served(ctx)
    if missing:
        url, size = url.removesuffix(FILE_NAME) + MISSING_FILE, 0
    with reports(ctx) as found, ctx.watch() as sessions:
        return await transfer(ctx, download(ctx, url, size + extra), found, sessions), sessions


async def transfer(
    ctx: CheckContext, spec: Mapping[str, Any], found: Reports, sessions: Watch
) -> Transfer:
    """Run the transfer task *spec* in a session the case's method opened, then wait for the
    device's TransferComplete with the task's CommandKey (unless it answered Status 0 or
    faulted) and for the end of the session that carried it."""
    (task,) = await ctx.run_tasks([spec])
    command_key = transfer_command_key(str(task.public_id))
    if task.status == TaskStatus.FAULTED or (task.result or {}).get("status") == 0:
        return Transfer(task, command_key)
    within = ctx.options.inform_within + TRANSFER_TIME
    deadline = time.monotonic() + within
    while (seen := await found.next(deadline - time.monotonic())) is not None:
        if isinstance(seen.rpc, TransferComplete) and seen.rpc.command_key == command_key:
            await sessions.session_end(seen.session_id)
            return Transfer(task, command_key, seen)
    keys = [s.rpc.command_key for s in found.seen if isinstance(s.rpc, TransferComplete)]
    missing = f"no TransferComplete echoing CommandKey {command_key!r} within {within:g} s"
    if keys:  # the device answered, with another key: no need to ask whether it responds
        ctx.fail(f"{missing}: the device sent CommandKeys {', '.join(map(repr, keys))}")
    ctx.silent(missing)


def reported_in(ctx: CheckContext, sessions: Watch, done: Transfer, m_event: str) -> None:
    """Fail unless the Inform of the session that carried the TransferComplete has
    7 TRANSFER COMPLETE and *m_event* echoing the CommandKey (TR-069 §3.7.1.5, Table 7); a
    TransferComplete in the session of the request itself comes without an Inform of its own."""
    assert done.report is not None
    if done.report.session_id == done.task.session_id:
        ctx.note("the TransferComplete came in the session of the request itself")
        return
    arrival = next(a for a in sessions.arrivals if a.session_id == done.report.session_id)
    ctx.expect(
        Event.TRANSFER_COMPLETE in arrival.events,
        f"the Inform of session {arrival.session_id}, which carried the TransferComplete, lacks "
        f"{Event.TRANSFER_COMPLETE} (events {', '.join(arrival.events)})",
    )
    keyed(ctx, arrival, m_event, done.command_key)


def fault_in(ctx: CheckContext, done: Transfer, codes: tuple[str, ...], why: str) -> None:
    """Fail unless the transfer failed with one of *codes*: the Download's own fault, or the
    FaultCode of its TransferComplete."""
    if done.report is None:
        code = done.task.fault_code if done.task.status == TaskStatus.FAULTED else "0"
        where = "the Download was answered with"
    else:
        code, where = str(done.complete.fault_struct.fault_code), "the TransferComplete says"
    if code == "0":
        ctx.fail(f"a Download {why} was reported done: {where} no fault, not {codes[0]}")
    ctx.expect(
        code in codes,
        f"a Download {why}: {where} fault {code}, not one of {', '.join(codes)} (Annex A.5.1)",
    )
    ctx.note(f"{where} fault {code}")


def times_sane(ctx: CheckContext, done: Transfer, asked: datetime) -> None:
    """StartTime and CompleteTime: dateTimes, the start not after the completion, both within
    CLOCK_SKEW of the ACS's clock from the request to the report. The CPE SHOULD know them:
    the Unknown Time warns."""
    if done.report is None:
        result = done.task.result or {}
        start, end = str(result.get("startTime", "")), str(result.get("completeTime", ""))
    else:
        start, end = done.complete.start_time, done.complete.complete_time
    if UNKNOWN_TIME in (start, end):
        ctx.warn(
            f"StartTime {start}, CompleteTime {end}: the Unknown Time, which TR-069 Annex A.3.3.2 "
            "allows only when the device does not know them (it SHOULD)"
        )
    try:
        began, ended = (_utc(parse_datetime(t)) for t in (start, end))
    except InvalidValue as exc:
        ctx.fail(f"StartTime/CompleteTime are not dateTimes: {exc}")
    ctx.expect(began <= ended, f"StartTime {start} is after CompleteTime {end}")
    now = datetime.now(UTC)
    for name, moment in (("StartTime", began), ("CompleteTime", ended)):
        early = (asked - moment).total_seconds()
        late = (moment - now).total_seconds()
        if early > CLOCK_SKEW or late > CLOCK_SKEW:
            ctx.warn(
                f"{name} {moment.isoformat()} lies outside the transfer ({asked.isoformat()} to "
                f"{now.isoformat()} on the ACS's clock) by more than {CLOCK_SKEW:g} s"
            )
    ctx.note(f"StartTime {start}, CompleteTime {end}")


def _utc(moment: datetime) -> datetime:
    # A dateTime without a zone is the device's local time; taken as UTC, the skew covers it.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@rpc(
    "download",
    "TR-069 Annex A.3.2.8, A.3.3.2, §3.7.1.5 (Table 7)",
    "Download of a file from the check's file server (--download-file) is reported by a "
    "TransferComplete echoing the CommandKey with FaultCode 0 and sane StartTime/CompleteTime, "
    "in a session whose Inform carries 7 TRANSFER COMPLETE and M Download with the CommandKey",
)
async def download_done(ctx: CheckContext) -> None:
    asked = datetime.now(UTC)
    done, sessions = await downloaded(ctx)
    ok(ctx, done.task)
    if done.report is not None:
        fault = done.complete.fault_struct
        ctx.expect(
            fault.fault_code == 0,
            f"the download of {FILE_NAME} failed: FaultCode {fault.fault_code} "
            f"{fault.fault_string!r}",
        )
        reported_in(ctx, sessions, done, Event.M_DOWNLOAD)
    else:
        ctx.note("DownloadResponse Status 0: done and applied, no TransferComplete to follow")
    times_sane(ctx, done, asked)


@rpc(
    "download-bad-url",
    "TR-069 Annex A.3.2.8, A.3.3.2, A.5.1",
    "Download of a file the check's file server does not have (404) fails with 9016 (or the "
    "general 9010), in the Download's fault or its TransferComplete, reported as the "
    "download is (7 TRANSFER COMPLETE, M Download with the CommandKey)",
)
async def download_bad_url(ctx: CheckContext) -> None:
    done, sessions = await downloaded(ctx, missing=True)
    url = done.task.spec["url"]
    fault_in(ctx, done, MISSING_FAULTS, f"of {url}, which the file server answers 404")
    if done.report is not None:
        reported_in(ctx, sessions, done, Event.M_DOWNLOAD)


@rpc(
    "download-wrong-size",
    "TR-069 Annex A.3.2.8 (FileSize), A.3.3.2, A.5.1 (SHOULD)",
    "Download with a FileSize one byte more than the file served fails with 9018, "
    "9017 or 9010. FileSize is the ACS's word on the file, not a MUST to compare: a device "
    "that takes the file warns",
)
async def download_wrong_size(ctx: CheckContext) -> None:
    done, sessions = await downloaded(ctx, extra=1)
    said = int(done.task.spec["fileSize"])
    if done.report is not None:
        reported_in(ctx, sessions, done, Event.M_DOWNLOAD)
    code = done.task.fault_code if done.report is None else done.complete.fault_struct.fault_code
    if done.task.status != TaskStatus.FAULTED and not code:
        ctx.warn(
            f"the device took a file of {said - 1} bytes for a Download that said FileSize "
            f"{said}: reported done, without a fault"
        )
    fault_in(ctx, done, SIZE_FAULTS, f"whose FileSize says {said} of {said - 1} bytes")


@rpc(
    "upload",
    "TR-069 Annex A.4.1.5, A.3.3.2, §3.7.1.5 (Table 7)",
    "Upload of a configuration file to a URL of the check's sends the file there (PUT or "
    "POST) and reports it by a TransferComplete echoing the CommandKey with FaultCode 0, in a "
    "session with 7 TRANSFER COMPLETE and M Upload; skipped when GetRPCMethods lacks Upload",
)
async def upload(ctx: CheckContext) -> None:
    await offers(ctx, "Upload")
    base = ctx.acs.files_url or ctx.acs.acs_url
    async with upload_sink(base, f"knock-check-{ctx.via}.cfg") as sink:
        ctx.note(f"the check takes the file at {sink.url}")
        spec = {"name": "upload", "url": sink.url, "fileType": UPLOAD_TYPE}
        asked = datetime.now(UTC)
        with reports(ctx) as found, ctx.watch() as sessions:
            done = await transfer(ctx, spec, found, sessions)
        ok(ctx, done.task)
        arrived = await sink.first(within=1.0)
    if done.report is not None:
        fault = done.complete.fault_struct
        ctx.expect(
            fault.fault_code == 0,
            f"the upload failed: FaultCode {fault.fault_code} {fault.fault_string!r}",
        )
        reported_in(ctx, sessions, done, M_UPLOAD)
    if arrived is None:
        ctx.fail(f"the device reported the Upload done, but nothing arrived at {sink.url}")
    ctx.evidence.add(
        Kind.RECEIVED,
        f"{arrived.method} {arrived.path}: {arrived.size} bytes ({arrived.content_type})",
    )
    times_sane(ctx, done, asked)


@rpc(
    "hold-requests",
    "TR-069 §3.5 (cwmp:HoldRequests)",
    "While every ACS message says HoldRequests true, the device sends no TransferComplete (an "
    "empty POST instead); once the ACS stops holding, the TransferComplete comes, at the latest "
    "in the session a connection request by the method opens",
)
async def hold_requests(ctx: CheckContext) -> None:
    url, size = await served(ctx)
    service = ctx.acs.acs
    with reports(ctx) as found, ctx.watch() as sessions:
        service.hold_requests(ctx.device_id, True)
        ctx.note("the ACS says HoldRequests true in every message from now on")
        try:
            (task,) = await ctx.run_tasks([download(ctx, url, size)])
            ok(ctx, task)
            if (task.result or {}).get("status") == 0:
                ctx.skip("the device answered the Download Status 0: no TransferComplete to hold")
            within = ctx.options.inform_within + TRANSFER_TIME
            held = await sessions.first(
                lambda a: Event.TRANSFER_COMPLETE in a.events, within=within
            )
            if held is None:
                ctx.silent(f"no Inform with {Event.TRANSFER_COMPLETE} within {within:g} s")
            await sessions.session_end(held.session_id)
            ended = next(
                r
                for r in await ctx.acs.store.list_sessions(ctx.device_id)
                if r.id == held.session_id
            )
        finally:
            service.hold_requests(ctx.device_id, False)
            ctx.note("the ACS no longer holds requests")
        while (seen := await found.next(0)) is not None:
            ctx.expect(
                not seen.held,
                f"the device sent TransferComplete in session {seen.session_id}, after the ACS "
                "had said HoldRequests true",
            )
        # "ok": the device's empty POST let the ACS end it; not dropped, not left to time out.
        ctx.expect(
            ended.outcome == "ok",
            f"held session {held.session_id} ended {ended.outcome}, not by the device's empty POST",
        )
        ctx.note(f"held session {held.session_id} ended by the device's empty POST")
        command_key = transfer_command_key(str(task.public_id))

        def delivered() -> bool:
            return any(
                isinstance(s.rpc, TransferComplete) and s.rpc.command_key == command_key
                for s in found.seen
            )

        if not delivered():
            # The device may keep it for its next session: one a request by the method opens.
            await ctx.read(ctx.ms("ParameterKey"))
            deadline = time.monotonic() + ctx.options.inform_within
            while not delivered() and await found.next(deadline - time.monotonic()) is not None:
                pass
    ctx.expect(
        delivered(),
        f"no TransferComplete with CommandKey {command_key!r} once the ACS stopped holding",
    )
