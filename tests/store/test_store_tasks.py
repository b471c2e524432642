"""The task queue: the NBI adds, the ACS claims and finishes."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from knock.store import Store
from knock.store.errors import IdempotencyKeyReusedError, UnknownDeviceError
from knock.store.retry import TaskRetry
from knock.store.rows import ParamValue, TaskResult, TransferDone
from knock.store.schema import tasks
from knock.vocab import NOT_RESENT, TaskStatus

from .helpers import DEVICE, OTHER, Record


async def test_add_task_queues_it(store: Store, record: Record, now: datetime) -> None:
    await record()
    spec = {"name": "getParameterValues", "parameterNames": ["Device.DeviceInfo."]}
    task = await store.add_task(DEVICE, "getParameterValues", spec, now)
    assert (task.device_id, task.name, task.spec, task.status, task.created) == (
        DEVICE,
        "getParameterValues",
        spec,
        TaskStatus.QUEUED,
        now,
    )
    assert (task.finished, task.session_id, task.result) == (None, None, None)
    assert await store.get_task(task.id) == task


async def test_add_task_with_an_idempotency_key_adds_it_once(
    store: Store, record: Record, now: datetime
) -> None:
    await record()
    await record(device_id=OTHER)
    spec = {"name": "reboot"}
    first = await store.add_task(DEVICE, "reboot", spec, now, idempotency_key="k-1")
    assert first.idempotency_key == "k-1"
    assert await store.add_task(DEVICE, "reboot", spec, now, idempotency_key="k-1") == first
    theirs = await store.add_task(OTHER, "reboot", spec, now, idempotency_key="k-1")
    assert theirs.id != first.id  # keys are per device
    with pytest.raises(IdempotencyKeyReusedError, match=f"already names task {first.public_id}"):
        await store.add_task(DEVICE, "factoryReset", {"name": "factoryReset"}, now, "k-1")
    unkeyed = [await store.add_task(DEVICE, "reboot", spec, now) for _ in range(2)]
    assert len({t.id for t in unkeyed}) == 2
    assert len(await store.find_tasks(None)) == 4


async def test_add_task_for_an_unknown_device_says_which(store: Store, now: datetime) -> None:
    with pytest.raises(UnknownDeviceError, match=r"'no-such-device'.*first Inform"):
        await store.add_task("no-such-device", "reboot", {}, now)


async def test_get_and_delete_a_missing_task(store: Store) -> None:
    assert await store.get_task(12345) is None
    assert await store.delete_task(12345) is False


async def test_delete_task(store: Store, record: Record, now: datetime) -> None:
    await record()
    task = await store.add_task(DEVICE, "reboot", {}, now)
    assert await store.delete_task(task.id) is True
    assert await store.get_task(task.id) is None


async def test_claim_takes_the_oldest_queued_task_of_the_device(
    store: Store, record: Record, now: datetime
) -> None:
    await record(device_id=OTHER)
    session_id = await record()
    await store.add_task(OTHER, "reboot", {}, now)
    first = await store.add_task(DEVICE, "reboot", {}, now)
    second = await store.add_task(DEVICE, "factoryReset", {}, now)

    claimed = await store.claim_next_task(DEVICE, session_id, now)
    assert claimed is not None
    assert (claimed.id, claimed.status, claimed.session_id) == (
        first.id,
        TaskStatus.RUNNING,
        session_id,
    )
    assert await store.get_task(second.id) == second  # still queued

    claimed = await store.claim_next_task(DEVICE, session_id, now)
    assert claimed is not None and claimed.id == second.id
    assert await store.claim_next_task(DEVICE, session_id, now) is None


async def test_concurrent_claimers_never_share_a_task(
    store: Store, record: Record, now: datetime
) -> None:
    session_id = await record()
    added = {(await store.add_task(DEVICE, "reboot", {}, now)).id for _ in range(5)}
    claims = await asyncio.gather(
        *(store.claim_next_task(DEVICE, session_id, now) for _ in range(12))
    )
    claimed = [task.id for task in claims if task is not None]
    assert sorted(claimed) == sorted(added)


async def test_two_stores_on_one_database_never_share_a_task(
    store: Store, record: Record, db_url: str, now: datetime
) -> None:
    session_id = await record()
    task = await store.add_task(DEVICE, "reboot", {}, now)
    other = await Store.open(db_url)
    try:
        claims = await asyncio.gather(
            store.claim_next_task(DEVICE, session_id, now),
            other.claim_next_task(DEVICE, session_id, now),
        )
    finally:
        await other.close()
    assert sorted(claims, key=lambda t: t is None)[1:] == [None]
    assert [t.id for t in claims if t is not None] == [task.id]


async def test_finish_task_done_keeps_the_result(
    store: Store, record: Record, now: datetime
) -> None:
    session_id = await record()
    task = await store.add_task(DEVICE, "getParameterValues", {}, now)
    await store.claim_next_task(DEVICE, session_id, now)
    result = {"Device.DeviceInfo.UpTime": ["42", "xsd:unsignedInt"]}
    await store.finish_task(
        task.id, TaskStatus.DONE, session_id, now + timedelta(seconds=1), result=result
    )

    done = await store.get_task(task.id)
    assert done is not None
    assert (done.status, done.finished, done.result, done.fault_code) == (
        TaskStatus.DONE,
        now + timedelta(seconds=1),
        result,
        None,
    )


async def test_finish_task_faulted_keeps_the_fault(
    store: Store, record: Record, now: datetime
) -> None:
    session_id = await record()
    task = await store.add_task(DEVICE, "setParameterValues", {}, now)
    await store.claim_next_task(DEVICE, session_id, now)
    detail = [{"ParameterName": "Device.X", "FaultCode": "9007"}]
    await store.finish_task(
        task.id,
        TaskStatus.FAULTED,
        session_id,
        now,
        fault_code="9003",
        fault_string="Invalid arguments",
        fault_detail=detail,
    )
    faulted = await store.get_task(task.id)
    assert faulted is not None
    assert (faulted.status, faulted.fault_code, faulted.fault_string, faulted.fault_detail) == (
        TaskStatus.FAULTED,
        "9003",
        "Invalid arguments",
        detail,
    )


async def test_finish_task_leaves_a_task_that_is_not_running(
    store: Store, record: Record, now: datetime
) -> None:
    session_id = await record()
    task = await store.add_task(DEVICE, "reboot", {}, now)
    await store.finish_task(task.id, TaskStatus.DONE, session_id, now)
    assert await store.get_task(task.id) == task
    await store.finish_task(12345, TaskStatus.DONE, session_id, now)  # deleted: no error


async def test_finish_task_leaves_a_task_another_session_runs(
    store: Store, record: Record, now: datetime
) -> None:
    old = await record()
    task = await store.add_task(DEVICE, "getParameterValues", {}, now)
    await store.claim_next_task(DEVICE, old, now)
    new = await record()  # the device started over, perhaps in another process
    claimed = await store.claim_next_task(DEVICE, new, now)
    assert claimed is not None and claimed.id == task.id
    await store.finish_task(task.id, TaskStatus.DONE, old, now)  # the old session, late
    assert await store.get_task(task.id) == claimed


async def test_finish_task_refuses_a_status_that_is_no_end(store: Store, now: datetime) -> None:
    with pytest.raises(ValueError, match=r"task 7 .*retry_running"):
        await store.finish_task(7, TaskStatus.QUEUED, 1, now)


async def test_retry_running_of_one_session(store: Store, record: Record, now: datetime) -> None:
    mine = await record()
    theirs = await record(device_id=OTHER)
    task = await store.add_task(DEVICE, "getParameterValues", {}, now)
    other_task = await store.add_task(OTHER, "getParameterValues", {}, now)
    await store.claim_next_task(DEVICE, mine, now)
    await store.claim_next_task(OTHER, theirs, now)

    [retried] = await store.retry_running(mine, "closed", now)
    assert retried == replace(task, attempts=1)  # queued again at once, with no session
    assert await store.get_task(task.id) == retried
    requeued = await store.claim_next_task(DEVICE, mine, now)
    assert requeued is not None and requeued.id == task.id

    other = await store.get_task(other_task.id)
    assert other is not None and other.status == TaskStatus.RUNNING


async def test_a_task_whose_sessions_die_backs_off_then_faults_and_the_next_one_runs(
    store: Store, record: Record, now: datetime
) -> None:
    """Defaults: three sessions; the first retry at once, the second after 60 s. A task
    behind the poisoned one runs while that waits."""
    await record()
    poisoned = await store.add_task(DEVICE, "setParameterValues", {}, now)
    behind = await store.add_task(DEVICE, "getParameterValues", {}, now)

    session = await record(at=now)
    assert await claimed_id(store, session, now) == poisoned.id
    [first] = await store.retry_running(session, "closed", now)
    assert (first.status, first.attempts, first.not_before) == (TaskStatus.QUEUED, 1, None)

    later = now + timedelta(seconds=1)
    session = await record(at=later)
    assert await claimed_id(store, session, later) == poisoned.id
    [second] = await store.retry_running(session, "timeout", later)
    retry_at = later + timedelta(seconds=60)
    assert (second.status, second.attempts, second.not_before) == (TaskStatus.QUEUED, 2, retry_at)

    # Inside the back-off the task behind runs; the poisoned one is not claimed.
    session = await record(at=later)
    claimed = await store.claim_next_task(DEVICE, session, later)
    assert claimed is not None and claimed.id == behind.id
    await store.finish_task(behind.id, TaskStatus.DONE, session, later)
    assert await store.claim_next_task(DEVICE, session, retry_at - timedelta(seconds=1)) is None

    # A new Inform supersedes the session it dies in the third time: faulted, with the reason.
    session = await record(at=retry_at)
    assert await claimed_id(store, session, retry_at) == poisoned.id
    end = retry_at + timedelta(seconds=2)
    await record(at=end)
    third = await store.get_task(poisoned.id)
    assert third is not None
    assert (third.status, third.attempts, third.finished, third.session_id) == (
        TaskStatus.FAULTED,
        3,
        end,
        session,
    )
    assert third.fault_code == "superseded"
    assert third.fault_string is not None and "in 3 session(s) of 3 allowed" in third.fault_string


async def claimed_id(store: Store, session_id: int, now: datetime) -> int | None:
    task = await store.claim_next_task(DEVICE, session_id, now)
    return None if task is None else task.id


async def test_the_retry_policy_is_the_stores(db_url: str, record: Record, now: datetime) -> None:
    strict = await Store.open(db_url, TaskRetry(attempts=1))
    try:
        session = await record()
        task = await strict.add_task(DEVICE, "getParameterValues", {}, now)
        await strict.claim_next_task(DEVICE, session, now)
        [faulted] = await strict.retry_running(session, "closed", now)
        assert (faulted.id, faulted.status, faulted.fault_code) == (
            task.id,
            TaskStatus.FAULTED,
            "closed",
        )
    finally:
        await strict.close()
    with pytest.raises(ValueError, match="task_attempts must be 1 or more, not 0"):
        TaskRetry(attempts=0)


async def test_an_inform_ends_the_open_session_and_requeues_its_task(
    store: Store, record: Record, now: datetime
) -> None:
    """What a process killed mid-task leaves behind is picked up by the device's next session,
    in any process: the task runs there, once."""
    dead = await record()
    task = await store.add_task(DEVICE, "getParameterValues", {}, now)
    await store.claim_next_task(DEVICE, dead, now)
    later = now + timedelta(seconds=5)
    alive = await record(at=later)

    [new_session, old_session] = await store.list_sessions(DEVICE)
    assert (old_session.id, old_session.ended, old_session.outcome) == (dead, later, "superseded")
    assert (new_session.id, new_session.ended) == (alive, None)
    assert await store.claim_next_task(DEVICE, dead, now) is None  # an ended session claims nothing
    claimed = await store.claim_next_task(DEVICE, alive, now)
    assert claimed is not None and (claimed.id, claimed.session_id) == (task.id, alive)
    assert await store.claim_next_task(DEVICE, alive, now) is None
    await store.end_session(dead, "timeout", later)  # the old process notices late
    [_, old_session] = await store.list_sessions(DEVICE)
    assert old_session.outcome == "superseded"


async def test_an_inform_settles_a_task_left_running_in_an_ended_session(
    store: Store, record: Record, now: datetime
) -> None:
    """A process that ended a session but died before settling its task (on PostgreSQL, an
    Inform's statement commits before the tasks it found running are settled) leaves the task
    running in a session that has ended: the device's next Inform, in any process, queues it
    again."""
    dead = await record()
    task = await store.add_task(DEVICE, "getParameterValues", {}, now)
    await store.claim_next_task(DEVICE, dead, now)
    await store.end_session(dead, "superseded", now)
    later = now + timedelta(seconds=5)
    alive = await record(at=later)

    settled = await store.get_task(task.id)
    assert settled is not None
    assert (settled.status, settled.attempts, settled.session_id) == (TaskStatus.QUEUED, 1, None)
    assert await store.claim_next_task(DEVICE, alive, later + timedelta(hours=1)) == replace(
        settled, status=TaskStatus.RUNNING, session_id=alive
    )


@pytest.mark.parametrize("name", sorted(NOT_RESENT))
async def test_a_task_the_device_may_have_run_is_never_sent_again(
    store: Store, record: Record, now: datetime, name: str
) -> None:
    """Exactly once: a task that changes the device with each run, whose session died after it
    went out (a process killed mid-task, a timeout), ends `unknown` at once instead of being
    retried (no attempt counted, no back-off), while a read behind it is retried."""
    dead = await record()
    risky = await store.add_task(DEVICE, name, {"name": name}, now)
    await store.claim_next_task(DEVICE, dead, now)
    later = now + timedelta(seconds=5)
    await record(at=later)  # the device's next Inform, in any process
    unknown = await store.get_task(risky.id)
    assert unknown == replace(risky, status=TaskStatus.UNKNOWN, session_id=dead, finished=later)

    timed_out = await record(at=now + timedelta(seconds=10))
    second = await store.add_task(DEVICE, name, {"name": name}, now)
    read = await store.add_task(DEVICE, "getParameterValues", {}, now)
    await store.claim_next_task(DEVICE, timed_out, now)
    [settled] = await store.retry_running(timed_out, "timeout", later)
    assert (settled.id, settled.status, settled.attempts, settled.not_before) == (
        second.id,
        TaskStatus.UNKNOWN,
        0,
        None,
    )
    assert (settled.session_id, settled.fault_code) == (timed_out, None)
    claimed = await store.claim_next_task(DEVICE, timed_out, later)
    assert claimed is not None and claimed.id == read.id
    [retried] = await store.retry_running(timed_out, "timeout", later)
    assert (retried.id, retried.status, retried.attempts) == (read.id, TaskStatus.QUEUED, 1)
    assert [(t.id, t.status) for t in await store.find_tasks(None)] == [
        (risky.id, TaskStatus.UNKNOWN),
        (second.id, TaskStatus.UNKNOWN),
        (read.id, TaskStatus.QUEUED),
    ]


async def test_recovery_after_a_crash_settles_running_tasks_by_the_same_rule(
    store: Store, record: Record, now: datetime
) -> None:
    """SQLite, at start after a crash: open sessions end `aborted`; a task they ran counts the
    crash as an attempt (retried, or faulted after its last), or ends `unknown`
    (knock.vocab.NOT_RESENT); the devices with tasks queued again are returned."""
    mine = await record()
    theirs = await record(device_id=OTHER)
    read = await store.add_task(DEVICE, "getParameterValues", {}, now)
    reboot = await store.add_task(OTHER, "reboot", {"name": "reboot"}, now)
    await store.claim_next_task(DEVICE, mine, now)
    await store.claim_next_task(OTHER, theirs, now)
    later = now + timedelta(seconds=3)
    if store.dialect_name != "sqlite":
        with pytest.raises(ValueError, match="on PostgreSQL other processes"):
            await store.recover_after_crash(later)
        return

    assert await store.recover_after_crash(later) == [DEVICE]
    assert await store.get_task(read.id) == replace(read, attempts=1)
    assert await store.get_task(reboot.id) == replace(
        reboot, status=TaskStatus.UNKNOWN, session_id=theirs, finished=later
    )
    for device in (DEVICE, OTHER):
        [session] = await store.list_sessions(device)
        assert (session.outcome, session.ended) == ("aborted", later)

    # The crash was an attempt: with the default three, two more crashes fault the read.
    for crash in range(2):
        session = await record(at=later)
        await store.claim_next_task(DEVICE, session, later + timedelta(hours=1))
        devices = await store.recover_after_crash(later)
        assert devices == ([DEVICE] if crash == 0 else [])
    faulted = await store.get_task(read.id)
    assert faulted is not None
    assert (faulted.status, faulted.attempts, faulted.fault_code) == (
        TaskStatus.FAULTED,
        3,
        "aborted",
    )


async def test_find_tasks_oldest_first_with_skip_and_limit(
    store: Store, record: Record, now: datetime
) -> None:
    await record()
    await record(device_id=OTHER)
    added = [
        await store.add_task(device, name, {}, now)
        for device, name in [(DEVICE, "a"), (OTHER, "b"), (DEVICE, "c"), (DEVICE, "d")]
    ]
    assert await store.find_tasks(None) == added
    mine = await store.find_tasks(tasks.c.device_id == DEVICE, skip=1, limit=1)
    assert [t.name for t in mine] == ["c"]
    assert [t.name for t in await store.find_tasks(tasks.c.device_id == DEVICE, skip=1)] == [
        "c",
        "d",
    ]


async def test_advance_session_finishes_stores_and_claims_in_one_step(
    store: Store, record: Record, now: datetime
) -> None:
    session_id = await record(params=[ParamValue("Device.Hosts.Host.1.Name", "pc", "xsd:string")])
    first = await store.add_task(DEVICE, "addObject", {}, now)
    second = await store.add_task(DEVICE, "reboot", {}, now)
    assert await store.advance_session(DEVICE, session_id, now) == replace(
        first, status=TaskStatus.RUNNING, session_id=session_id
    )
    done = TaskResult(
        first.id,
        TaskStatus.DONE,
        {"instanceNumber": 2},
        put=[ParamValue("Device.Hosts.Host.2.", None, None)],
        delete_under=["Device.Hosts.Host.1."],
    )
    claimed = await store.advance_session(DEVICE, session_id, now, done)
    assert claimed is not None and claimed.id == second.id
    finished = await store.get_task(first.id)
    assert finished is not None and finished.result == {"instanceNumber": 2}
    paths = [p.path for p in (await store.get_parameters([DEVICE]))[DEVICE]]
    assert "Device.Hosts.Host.2." in paths and "Device.Hosts.Host.1.Name" not in paths
    [session] = await store.list_sessions(DEVICE)
    assert session.ended is None


async def test_advance_session_ends_the_session_when_no_task_is_left(
    store: Store, record: Record, now: datetime
) -> None:
    session_id = await record()
    assert await store.advance_session(DEVICE, session_id, now + timedelta(seconds=2)) is None
    [session] = await store.list_sessions(DEVICE)
    assert (session.outcome, session.ended) == ("ok", now + timedelta(seconds=2))


async def test_a_session_kept_open_claims_a_task_queued_after_it_went_idle(
    store: Store, record: Record, now: datetime
) -> None:
    # The ACS keeps a session open for more tasks (AcsService.keep_open): finding none, the
    # store must not end it, so that a task queued afterwards is claimed in it.
    session_id = await record()
    first = await store.add_task(DEVICE, "getParameterValues", {}, now)
    await store.advance_session(DEVICE, session_id, now)
    done = TaskResult(first.id, TaskStatus.DONE, [])
    assert await store.advance_session(DEVICE, session_id, now, done, end_when_idle=False) is None
    [session] = await store.list_sessions(DEVICE)
    assert session.ended is None
    later = await store.add_task(DEVICE, "getParameterNames", {}, now)
    claimed = await store.advance_session(DEVICE, session_id, now, end_when_idle=False)
    assert claimed is not None and (claimed.id, claimed.session_id) == (later.id, session_id)
    finished = await store.get_task(first.id)
    assert finished is not None and finished.status == TaskStatus.DONE


async def test_a_transfer_complete_lands_on_its_download_task_only(
    store: Store, record: Record, now: datetime
) -> None:
    session = await record()
    download = await store.add_task(DEVICE, "download", {"name": "download"}, now)
    reboot = await store.add_task(DEVICE, "reboot", {"name": "reboot"}, now)
    failed = TransferDone(9010, "HTTP 404", "2025-03-04T05:06:07Z", "2025-03-04T05:06:08Z")
    # Not accepted by the device yet: nothing to record.
    assert await store.record_transfer_complete(DEVICE, download.id, failed, now) is None
    for task in (download, reboot):
        await store.claim_next_task(DEVICE, session, now)
        await store.finish_task(task.id, TaskStatus.DONE, session, now, result={"status": 1})
    assert await store.record_transfer_complete(DEVICE, reboot.id, failed, now) is None
    assert await store.record_transfer_complete(OTHER, download.id, failed, now) is None
    later = now + timedelta(minutes=5)
    recorded = await store.record_transfer_complete(DEVICE, download.id, failed, later)
    assert recorded is not None
    assert (recorded.status, recorded.fault_code, recorded.fault_string, recorded.finished) == (
        TaskStatus.FAULTED,
        "9010",
        "HTTP 404",
        later,
    )
    assert recorded.fault_detail == {
        "transferComplete": {
            "startTime": "2025-03-04T05:06:07Z",
            "completeTime": "2025-03-04T05:06:08Z",
        }
    }
    assert await store.get_task(download.id) == recorded
