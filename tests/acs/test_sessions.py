"""Whole CWMP sessions between a scripted CPE and `knock serve`, over real sockets."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from scripted_cpe import NS_12, ScriptedCpe

from knock.acs.service import CpeRequestSeen, Failure
from knock.cpe.acs_client import AcsRefused
from knock.cwmp.breaches import Breach, Rule
from knock.cwmp.envelope import build_envelope
from knock.cwmp.faults import cpe_fault
from knock.cwmp.rpcs import (
    AddObject,
    AddObjectResponse,
    DeleteObject,
    DeleteObjectResponse,
    DeviceIdStruct,
    Download,
    DownloadResponse,
    EventStruct,
    GetParameterNamesResponse,
    GetParameterValues,
    GetParameterValuesResponse,
    GetRPCMethods,
    GetRPCMethodsResponse,
    Inform,
    ParameterInfoStruct,
    ParameterValueStruct,
    Reboot,
    RebootResponse,
    SetParameterValues,
    SetParameterValuesResponse,
    TransferComplete,
    TransferCompleteFaultStruct,
    TransferCompleteResponse,
    Upload,
    UploadResponse,
)
from knock.notify import SessionEnded, TaskFinished
from knock.server import Running

UPTIME = "Device.DeviceInfo.UpTime"
UNKNOWN = "0001-01-01T00:00:00Z"
INTERVAL = "Device.ManagementServer.PeriodicInformInterval"


def nbi_url(acs: Running, path: str) -> str:
    return f"http://127.0.0.1:{acs.nbi_port}{path}"


async def queue(acs: Running, device_id: str, task: dict[str, Any]) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(nbi_url(acs, f"/devices/{device_id}/tasks"), json=task) as r,
    ):
        assert r.status == 202, await r.text()
        result: dict[str, Any] = await r.json()
        return result


async def test_inform_then_empty_post_ends_with_204_and_stores_the_device(acs: Running) -> None:
    async with ScriptedCpe(acs.acs_url) as cpe:
        await cpe.inform("0 BOOTSTRAP", "1 BOOT")
        assert (await cpe.empty()).status == 204
    device = await acs.store.get_device(cpe.device_id)
    assert device is not None and device.serial_number == "SN0001"
    assert device.last_bootstrap is not None and device.last_boot is not None
    params = {p.path: p for p in (await acs.store.get_parameters([cpe.device_id]))[cpe.device_id]}
    assert params[INTERVAL].value == "300" and params[INTERVAL].type == "xsd:unsignedInt"
    [session] = await acs.store.list_sessions(cpe.device_id)
    assert session.events == ["0 BOOTSTRAP", "1 BOOT"]
    assert session.outcome == "ok" and session.ended is not None
    assert acs.acs.live_sessions == 0


async def test_the_session_cookie_is_set_as_an_http_only_cookie_for_the_whole_site(
    acs: Running,
) -> None:
    """The Inform's answer carries the session in one Set-Cookie header, exactly as aiohttp's
    set_cookie(httponly=True) writes it, and the empty POST that sends it back ends the
    session."""
    inform = Inform(
        DeviceIdStruct("Knock", "00D09E", "ScriptBox", "SN0042"),
        [EventStruct("2 PERIODIC")],
        1,
        "2026-11-26T12:00:00Z",
        0,
        [],
    )
    body = build_envelope(inform, cwmp_ns="urn:dslforum-org:cwmp-1-0", id="1")
    jar = aiohttp.DummyCookieJar()
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        async with http.post(acs.acs_url, data=body, headers={"Content-Type": "text/xml"}) as r:
            assert r.status == 200
            [cookie] = r.headers.getall("Set-Cookie")
        token = cookie.removeprefix("knock_session=").removesuffix("; HttpOnly; Path=/")
        assert cookie == f"knock_session={token}; HttpOnly; Path=/"
        assert len(token) == 24 and token.replace("-", "").replace("_", "").isalnum()
        async with http.post(acs.acs_url, headers={"Cookie": f"knock_session={token}"}) as r:
            assert r.status == 204
    [session] = await acs.store.list_sessions("00D09E-ScriptBox-SN0042")
    assert session.outcome == "ok"


async def test_nbi_task_with_connection_request_runs_in_the_next_session(start_acs: Any) -> None:
    """The end-to-end path: NBI POST stores the task and asks for a connection request; the CPE's
    session runs the GPV; the NBI answers 200 with the result."""
    asked: asyncio.Queue[str] = asyncio.Queue()

    async def connection_request(device_id: str, _seconds: float) -> None:
        asked.put_nowait(device_id)

    acs: Running = await start_acs(connection_request)
    async with ScriptedCpe(acs.acs_url) as cpe:
        await cpe.inform("0 BOOTSTRAP")
        await cpe.empty()

        async def nbi_call() -> tuple[int, dict[str, Any]]:
            async with (
                aiohttp.ClientSession() as http,
                http.post(
                    nbi_url(acs, f"/devices/{cpe.device_id}/tasks?connection_request&timeout=5000"),
                    json={"name": "getParameterValues", "parameterNames": [UPTIME]},
                ) as r,
            ):
                return r.status, await r.json()

        call = asyncio.create_task(nbi_call())
        assert await asyncio.wait_for(asked.get(), 5) == cpe.device_id
        await cpe.inform("6 CONNECTION REQUEST")
        request = await cpe.empty()
        assert request.envelope is not None
        assert request.envelope.body == GetParameterValues([UPTIME])
        done = await cpe.answer(
            request,
            GetParameterValuesResponse([ParameterValueStruct(UPTIME, "4242", "xsd:unsignedInt")]),
        )
        assert done.status == 204
        status, task = await call
    assert status == 200, task
    assert task["name"] == "getParameterValues" and task["status"] == "done"
    params = await acs.store.get_parameters([cpe.device_id], [UPTIME])
    assert [(p.path, p.value) for p in params[cpe.device_id]] == [(UPTIME, "4242")]


async def test_tasks_run_in_order_and_a_cpe_fault_does_not_stop_the_session(acs: Running) -> None:
    async with ScriptedCpe(acs.acs_url) as cpe:
        await cpe.inform("0 BOOTSTRAP")
        await cpe.empty()
        spv = await queue(
            acs,
            cpe.device_id,
            {"name": "setParameterValues", "parameterValues": [[INTERVAL, 60]]},
        )
        bad = await queue(
            acs, cpe.device_id, {"name": "getParameterValues", "parameterNames": ["Device.Nope"]}
        )
        add = await queue(
            acs, cpe.device_id, {"name": "addObject", "objectName": "Device.Hosts.Host"}
        )
        delete = await queue(
            acs, cpe.device_id, {"name": "deleteObject", "objectName": "Device.Hosts.Host.1."}
        )
        reboot = await queue(acs, cpe.device_id, {"name": "reboot"})

        await cpe.inform("2 PERIODIC")
        step = await cpe.empty()
        assert step.envelope is not None
        assert step.envelope.body == SetParameterValues(
            [ParameterValueStruct(INTERVAL, "60", "xsd:unsignedInt")]
        )
        step = await cpe.answer(step, SetParameterValuesResponse(0))
        assert step.envelope is not None and step.envelope.body == GetParameterValues(
            ["Device.Nope"]
        )
        step = await cpe.answer(step, cpe_fault(9005, "Invalid parameter name"))
        assert step.envelope is not None and step.envelope.body == AddObject("Device.Hosts.Host.")
        step = await cpe.answer(step, AddObjectResponse(7, 0))
        assert step.envelope is not None
        assert step.envelope.body == DeleteObject("Device.Hosts.Host.1.")
        step = await cpe.answer(step, DeleteObjectResponse(0))
        assert step.envelope is not None and step.envelope.body == Reboot("")
        step = await cpe.answer(step, RebootResponse())
        assert step.status == 204

    tasks = {t.public_id: t for t in await acs.store.find_tasks(None)}
    assert tasks[spv["_id"]].status == "done"
    assert tasks[bad["_id"]].status == "faulted"
    assert tasks[bad["_id"]].fault_code == "9005"
    assert tasks[add["_id"]].result == {"instanceNumber": 7}
    assert tasks[delete["_id"]].status == "done"
    assert tasks[reboot["_id"]].status == "done"
    stored = {p.path: p for p in (await acs.store.get_parameters([cpe.device_id]))[cpe.device_id]}
    assert stored[INTERVAL].value == "60"
    assert "Device.Hosts.Host.7." in stored


async def test_cwmp_1_2_is_answered_in_1_2_and_cpe_requests_are_served(acs: Running) -> None:
    async with ScriptedCpe(acs.acs_url, cwmp_ns=NS_12) as cpe:
        reply = await cpe.inform("1 BOOT")
        assert reply.envelope is not None and reply.envelope.cwmp_ns == NS_12
        methods = await cpe.send(GetRPCMethods())
        assert methods.envelope is not None and methods.envelope.cwmp_ns == NS_12
        assert isinstance(methods.envelope.body, GetRPCMethodsResponse)
        assert "Inform" in methods.envelope.body.method_list
        done = await cpe.send(TransferComplete(command_key="fw"))
        assert done.envelope is not None and done.envelope.body == TransferCompleteResponse()
        assert (await cpe.empty()).status == 204


async def test_bootstrap_drops_stale_parameters(acs: Running) -> None:
    async with ScriptedCpe(acs.acs_url) as cpe:
        cpe.params["Device.Old.Thing"] = ("x", "xsd:string")
        await cpe.inform("1 BOOT")
        await cpe.empty()
        del cpe.params["Device.Old.Thing"]
        await cpe.inform("0 BOOTSTRAP")
        await cpe.empty()
    stored = (await acs.store.get_parameters([cpe.device_id]))[cpe.device_id]
    assert "Device.Old.Thing" not in {p.path for p in stored}
    assert INTERVAL in {p.path for p in stored}


async def next_session_end(announcements: Any, within: float = 30) -> SessionEnded:
    """The next session end announced; generous, as a loaded machine is slow, yet it fails."""
    while not isinstance(
        ended := await asyncio.wait_for(announcements.next(), within), SessionEnded
    ):
        pass
    return ended


async def queue_uptime(acs: Running, device_id: str) -> str:
    task = await queue(acs, device_id, {"name": "getParameterValues", "parameterNames": [UPTIME]})
    return str(task["_id"])


async def test_a_silent_session_times_out_and_its_task_is_requeued(start_acs: Any) -> None:
    acs = await start_acs(cwmp_session_timeout=0.3)
    async with ScriptedCpe(acs.acs_url) as cpe:
        await cpe.inform("0 BOOTSTRAP")
        await cpe.empty()
        task = await queue_uptime(acs, cpe.device_id)
        with acs.hub.subscribe(cpe.device_id) as announcements:
            await cpe.inform("2 PERIODIC")
            request = await cpe.empty()
            assert request.envelope is not None  # the GPV, which the CPE never answers
            await next_session_end(announcements)
        assert acs.acs.live_sessions == 0
    stored = await acs.store.get_task(task)
    assert stored is not None and stored.status == "queued"
    sessions = await acs.store.list_sessions(cpe.device_id)
    assert sessions[0].outcome == "timeout"


async def test_a_new_inform_supersedes_a_dead_session(acs: Running) -> None:
    async with ScriptedCpe(acs.acs_url) as cpe:
        await cpe.inform("1 BOOT")
        await cpe.inform("1 BOOT")  # the CPE rebooted mid-session and starts over
        assert acs.acs.live_sessions == 1
        assert (await cpe.empty()).status == 204
    outcomes = [s.outcome for s in await acs.store.list_sessions(cpe.device_id)]
    assert sorted(outcomes) == ["ok", "superseded"]


async def test_a_connection_closed_mid_task_ends_the_session_at_once(start_acs: Any) -> None:
    """With an hour's session timeout, only the closed connection can end the session; its
    task is queued again (the first retry is at once) with the attempt counted."""
    acs = await start_acs(cwmp_session_timeout=3600)
    async with ScriptedCpe(acs.acs_url) as cpe:
        await cpe.inform("0 BOOTSTRAP")
        await cpe.empty()
    task = await queue_uptime(acs, cpe.device_id)
    with acs.hub.subscribe(cpe.device_id) as announcements:
        async with ScriptedCpe(acs.acs_url) as cpe:
            await cpe.inform("2 PERIODIC")
            request = await cpe.empty()
            assert isinstance(request.envelope and request.envelope.body, GetParameterValues)
        # The client closed: its TCP connection with it.
        ended = await next_session_end(announcements)
    [last, _] = await acs.store.list_sessions(cpe.device_id)
    assert (ended.session_id, last.outcome) == (last.id, "closed")
    assert acs.acs.live_sessions == 0
    stored = await acs.store.get_task(task)
    assert stored is not None
    assert (stored.status, stored.attempts, stored.not_before) == ("queued", 1, None)


async def test_a_reboot_whose_connection_closes_ends_unknown_and_its_waiting_post_hears_it(
    start_acs: Any,
) -> None:
    """A task the device must not run twice is final when its session dies: never retried, and
    a POST waiting on it answers as for a fault (202 "Task faulted", code "unknown") at once,
    not at its timeout."""
    asked: asyncio.Queue[str] = asyncio.Queue()

    async def connection_request(device_id: str, _seconds: float) -> None:
        asked.put_nowait(device_id)

    acs: Running = await start_acs(connection_request, cwmp_session_timeout=3600)
    async with ScriptedCpe(acs.acs_url) as cpe:
        await cpe.inform("0 BOOTSTRAP")
        await cpe.empty()

    async def nbi_call() -> tuple[int, str | None, dict[str, Any]]:
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                nbi_url(acs, f"/devices/{cpe.device_id}/tasks?connection_request&timeout=60000"),
                json={"name": "reboot"},
            ) as r,
        ):
            return r.status, r.reason, await r.json()

    call = asyncio.create_task(nbi_call())
    assert await asyncio.wait_for(asked.get(), 30) == cpe.device_id
    with acs.hub.subscribe(cpe.device_id) as announcements:
        async with ScriptedCpe(acs.acs_url) as cpe:
            await cpe.inform("6 CONNECTION REQUEST")
            request = await cpe.empty()
            assert isinstance(request.envelope and request.envelope.body, Reboot)
        # The device closed the connection unanswered: it may have rebooted, or not.
        status, reason, task = await call
        assert (status, reason) == (202, "Task faulted"), task
        assert (task["status"], task["fault"]["code"]) == ("unknown", "unknown")
        assert "retries" not in task
        # The task is final (and the POST answered) before the session's end is stored.
        ended = await next_session_end(announcements)
    [last, _] = await acs.store.list_sessions(cpe.device_id)
    stored = await acs.store.get_task(task["_id"])
    assert stored is not None and (ended.session_id, last.outcome) == (last.id, "closed")
    assert (stored.status, stored.attempts, stored.session_id) == ("unknown", 0, last.id)


async def test_a_response_with_an_id_no_request_had_is_no_success(acs: Running) -> None:
    async with ScriptedCpe(acs.acs_url) as cpe:
        await cpe.inform("0 BOOTSTRAP")
        await cpe.empty()
        task = await queue_uptime(acs, cpe.device_id)
        await cpe.inform("2 PERIODIC")
        request = await cpe.empty()
        assert request.envelope is not None and request.envelope.id == "knock-1"
        # Neither its ID nor its method answers the GetParameterValues outstanding.
        answer = GetParameterNamesResponse([ParameterInfoStruct(UPTIME, False)])
        reply = await cpe.send(answer, id="knock-99")
        assert reply.status == 500 and reply.envelope is not None
        assert "matches no request sent" in reply.envelope.body.fault_string  # type: ignore[union-attr]
    stored = await acs.store.get_task(task)
    assert stored is not None and (stored.status, stored.attempts) == ("queued", 1)
    [last, _] = await acs.store.list_sessions(cpe.device_id)
    assert last.outcome == "error"


async def test_a_transfer_complete_with_a_fault_is_recorded_on_its_download_task(
    acs: Running,
) -> None:
    async with ScriptedCpe(acs.acs_url) as cpe:
        await cpe.inform("0 BOOTSTRAP")
        await cpe.empty()
        spec = {
            "name": "download",
            "fileType": "1 Firmware Upgrade Image",
            "url": "http://127.0.0.1:1/fw.bin",
        }
        tasks = [await queue(acs, cpe.device_id, spec) for _ in range(2)]
        await cpe.inform("2 PERIODIC")
        reply = await cpe.empty()
        keys = []
        for _ in tasks:
            assert reply.envelope is not None and isinstance(reply.envelope.body, Download)
            keys.append(reply.envelope.body.command_key)
            reply = await cpe.answer(reply, DownloadResponse(1))  # not done yet
        assert reply.status == 204
        assert keys == [f"knock-{task['_id']}" for task in tasks]  # one key per task
        first, second = (str(task["_id"]) for task in tasks)
        stored = await acs.store.get_task(second)
        assert stored is not None and (stored.status, stored.result) == ("done", {"status": 1})
        # Announcements name tasks by the store's number.
        number = {t.public_id: t.id for t in await acs.store.find_tasks(None)}

        await cpe.inform("7 TRANSFER COMPLETE", "M Download")
        with acs.hub.subscribe(cpe.device_id) as announcements:
            failed = TransferComplete(
                keys[1],
                TransferCompleteFaultStruct(9010, "download failed: HTTP 404"),
                "2026-11-26T12:00:01Z",
                "2026-11-26T12:00:02Z",
            )
            answer = await cpe.send(failed)
            assert answer.envelope is not None
            assert answer.envelope.body == TransferCompleteResponse()
            finished = await asyncio.wait_for(announcements.next(), 5)
            assert finished == TaskFinished(number[second], cpe.device_id, "faulted")
            worked = TransferComplete(keys[0], start_time="2026-11-26T12:00:03Z")
            answer = await cpe.send(worked)
            assert answer.envelope is not None
            assert answer.envelope.body == TransferCompleteResponse()
            finished = await asyncio.wait_for(announcements.next(), 5)
            assert finished == TaskFinished(number[first], cpe.device_id, "done")
        assert (await cpe.empty()).status == 204
    stored = await acs.store.get_task(second)
    assert stored is not None
    assert (stored.status, stored.fault_code, stored.fault_string) == (
        "faulted",
        "9010",
        "download failed: HTTP 404",
    )
    assert stored.fault_detail == {
        "transferComplete": {
            "startTime": "2026-11-26T12:00:01Z",
            "completeTime": "2026-11-26T12:00:02Z",
        }
    }
    done = await acs.store.get_task(first)
    assert done is not None and done.status == "done"
    assert done.result == {
        "status": 1,
        "transferComplete": {
            "startTime": "2026-11-26T12:00:03Z",
            "completeTime": "0001-01-01T00:00:00Z",
        },
    }


async def test_a_device_that_drops_the_cookie_and_the_id_is_coped_with_and_recorded(
    acs: Running, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "knock.acs")
    async with ScriptedCpe(acs.acs_url) as cpe:
        await cpe.inform("0 BOOTSTRAP")
        await cpe.empty()
        task = await queue_uptime(acs, cpe.device_id)
        with acs.hub.subscribe(cpe.device_id) as announcements:
            await cpe.inform("6 CONNECTION REQUEST")
            cpe.client.new_session()  # every later POST of the session goes without the cookie
            request = await cpe.empty()
            assert request.envelope is not None and request.envelope.id == "knock-1"
            answer = GetParameterValuesResponse(
                [ParameterValueStruct(UPTIME, "5", "xsd:unsignedInt")]
            )
            done = await cpe.send(answer, id="cpe-own-7")
            assert done.status == 204
            ended = await next_session_end(announcements)
        # Without the cookie, a POST over another connection belongs to no session.
        async with ScriptedCpe(acs.acs_url) as stranger:
            refused = await stranger.client.post_raw(b"")
            assert refused[0] == 400
    assert ended.outcome == "ok"
    assert ended.breaches == (
        Breach(
            Rule.COOKIE, "a POST without the session cookie, taken by the connection it came over"
        ),
        Breach(
            Rule.CWMP_ID,
            "GetParameterValuesResponse to GetParameterValues 'knock-1' carried "
            "cwmp:ID 'cpe-own-7'",
        ),
    )
    stored = await acs.store.get_task(task)
    assert stored is not None and stored.status == "done"
    logged = [r.getMessage() for r in caplog.records if "session rules" in r.getMessage()]
    assert logged == [
        "a device broke CWMP session rules the ACS coped with: device "
        f"{cpe.device_id}, session {ended.session_id}: {'; '.join(map(str, ended.breaches))}"
    ]


async def test_the_sessions_the_checker_fails_on_purpose_fail_in_turn(acs: Running) -> None:
    async with ScriptedCpe(acs.acs_url) as cpe:
        await cpe.inform("0 BOOTSTRAP")
        await cpe.empty()
        acs.acs.fail_sessions(cpe.device_id, [Failure.HTTP_503, Failure.DROP])
        with acs.hub.subscribe(cpe.device_id) as announcements:
            with pytest.raises(AcsRefused) as refused:
                await cpe.inform("6 CONNECTION REQUEST")
            assert refused.value.status == 503
            first = await next_session_end(announcements)
            with pytest.raises(aiohttp.ServerDisconnectedError):
                await cpe.inform("6 CONNECTION REQUEST")
            second = await next_session_end(announcements)
            await cpe.inform("6 CONNECTION REQUEST")
            assert (await cpe.empty()).status == 204
            third = await next_session_end(announcements)
    assert [first.outcome, second.outcome, third.outcome] == [
        "failed-on-purpose",
        "failed-on-purpose",
        "ok",
    ]
    sessions = await acs.store.list_sessions(cpe.device_id)
    assert [s.outcome for s in sessions[:3]] == ["ok", "failed-on-purpose", "failed-on-purpose"]


async def test_held_requests_are_said_in_every_message_and_the_cpe_s_requests_are_tapped(
    acs: Running,
) -> None:
    """HoldRequests only on demand, in the InformResponse and each request; the tap hears a
    TransferComplete with whether it came held, and an upload task records it."""
    async with ScriptedCpe(acs.acs_url) as cpe:
        await cpe.inform("0 BOOTSTRAP")
        await cpe.empty()
        # Not an NBI task (GenieACS has none): knock check queues it in the store.
        spec = {"name": "upload", "fileType": "1 Vendor Configuration File", "url": "http://u/"}
        row = await acs.store.add_task(cpe.device_id, "upload", spec, datetime.now(UTC))
        task = {"_id": row.public_id}
        acs.acs.hold_requests(cpe.device_id, True)
        held = await cpe.inform("2 PERIODIC")
        assert held.envelope is not None and held.envelope.hold_requests is True
        reply = await cpe.empty()
        assert reply.envelope is not None and isinstance(reply.envelope.body, Upload)
        assert reply.envelope.hold_requests is True
        assert reply.envelope.body.command_key == f"knock-{task['_id']}"
        assert (await cpe.answer(reply, UploadResponse(1))).status == 204
        seen: list[CpeRequestSeen] = []
        with acs.acs.tap(seen.append):
            await cpe.inform("7 TRANSFER COMPLETE", "M Upload")
            done = TransferComplete(f"knock-{task['_id']}", start_time="2026-12-03T10:00:00Z")
            await cpe.send(done)
            assert (await cpe.empty()).status == 204
            acs.acs.hold_requests(cpe.device_id, False)
            free = await cpe.inform("2 PERIODIC")
            assert free.envelope is not None and free.envelope.hold_requests is None
            await cpe.send(done)
            await cpe.empty()
    assert [(s.rpc, s.held) for s in seen] == [(done, True), (done, False)]
    stored = await acs.store.get_task(str(task["_id"]))
    assert stored is not None and stored.result == {
        "status": 1,
        "transferComplete": {"startTime": "2026-12-03T10:00:00Z", "completeTime": UNKNOWN},
    }


async def test_a_kept_session_waits_for_more_tasks_and_ends_once_let_go(acs: Running) -> None:
    # knock check's sharing cases: the session stays open once its tasks are done, runs what
    # is queued next when told to go on, and ends (204) once let go.
    async with ScriptedCpe(acs.acs_url) as cpe:
        await cpe.inform("0 BOOTSTRAP")
        await cpe.empty()
        first = await queue(acs, cpe.device_id, {"name": "reboot"})
        acs.acs.keep_open(cpe.device_id)
        await cpe.inform("6 CONNECTION REQUEST")
        step = await cpe.empty()
        assert step.envelope is not None and step.envelope.body == Reboot("")
        waiting = asyncio.create_task(cpe.answer(step, RebootResponse()))
        with acs.hub.subscribe(cpe.device_id) as announcements:
            while not isinstance(item := await announcements.next(), TaskFinished):
                pass
        assert item.task_id == (await acs.store.find_tasks(None))[0].id
        assert not waiting.done() and acs.acs.in_session(cpe.device_id)
        spv = {"name": "setParameterValues", "parameterValues": [[INTERVAL, 60]]}
        second = await queue(acs, cpe.device_id, spv)
        acs.acs.go_on(cpe.device_id)
        step = await waiting
        assert step.envelope is not None
        assert step.envelope.body == SetParameterValues(
            [ParameterValueStruct(INTERVAL, "60", "xsd:unsignedInt")]
        )
        waiting = asyncio.create_task(cpe.answer(step, SetParameterValuesResponse(0)))
        await asyncio.sleep(0)
        acs.acs.let_go(cpe.device_id)
        assert (await waiting).status == 204
    tasks = {t.public_id: t for t in await acs.store.find_tasks(None)}
    assert tasks[first["_id"]].status == tasks[second["_id"]].status == "done"
    assert tasks[first["_id"]].session_id == tasks[second["_id"]].session_id
    [latest, *_] = await acs.store.list_sessions(cpe.device_id)
    assert latest.outcome == "ok" and latest.id == tasks[second["_id"]].session_id
