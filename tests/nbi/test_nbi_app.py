"""The NBI over a real socket and a real SQLite store."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from nbi_support import AddDevice, Nbi, StartNbi, play_session
from yarl import URL

from knock.nbi.app import MAX_BODY
from knock.notify import Arrival, TaskFinished
from knock.store.rows import ParamValue

DEVICE = "001122-Router-SN1"
SW = "InternetGatewayDevice.DeviceInfo.SoftwareVersion"
GPV = {"name": "getParameterValues", "parameterNames": [SW]}


def _url(nbi: Nbi, path: str, **query: str) -> URL:
    return URL(nbi.url + path, encoded=True).update_query(query)


def _tasks_url(nbi: Nbi, device_id: str = DEVICE, **query: str) -> URL:
    return _url(nbi, f"/devices/{quote(device_id, safe='')}/tasks", **query)


async def _json(response: aiohttp.ClientResponse) -> Any:
    assert response.content_type == "application/json"
    return await response.json()


# --- GET /devices/ ----------------------------------------------------------------------------


async def test_devices(nbi: Nbi, add_device: AddDevice) -> None:
    await add_device(DEVICE, [ParamValue(SW, "1.2", "xsd:string", False)])
    await add_device("001122-Router-SN2", [ParamValue(SW, "1.3", "xsd:string", False)])

    async with nbi.http.get(_url(nbi, "/devices/")) as response:
        assert response.status == 200
        docs = await _json(response)
    assert [d["_id"] for d in docs] == [DEVICE, "001122-Router-SN2"]
    assert docs[0]["_deviceId"] == {
        "_Manufacturer": "Acme",
        "_OUI": "001122",
        "_ProductClass": "Router",
        "_SerialNumber": "SN1",
    }
    assert docs[0]["_lastInform"] == "2024-05-01T12:00:00.000Z"
    leaf = docs[0]["InternetGatewayDevice"]["DeviceInfo"]["SoftwareVersion"]
    assert leaf == {
        "_object": False,
        "_value": "1.2",
        "_type": "xsd:string",
        "_timestamp": "2024-05-01T12:00:00.000Z",
        "_writable": False,
    }

    query = {"query": json.dumps({SW: "1.3"}), "projection": "_deviceId._SerialNumber"}
    async with nbi.http.get(_url(nbi, "/devices", **query)) as response:
        assert await _json(response) == [
            {"_id": "001122-Router-SN2", "_deviceId": {"_SerialNumber": "SN2"}}
        ]

    paged = {"sort": json.dumps({"_id": -1}), "skip": "1", "limit": "1", "projection": "_id"}
    async with nbi.http.get(_url(nbi, "/devices/", **paged)) as response:
        assert await _json(response) == [{"_id": DEVICE}]


async def test_devices_bad_input(nbi: Nbi) -> None:
    cases = [
        ({"query": "{not json"}, "the query parameter (URL-encoded JSON) is not valid JSON"),
        ({"query": '{"x": NaN}'}, "NaN is not a JSON number"),
        ({"query": '{"_lastInform": {"$gt": "soon"}}'}, "_lastInform compares with a date"),
        ({"sort": '{"_id": 0}'}, "is 1 (ascending) or -1 (descending)"),
        ({"limit": "-1"}, "limit is a whole number"),
        ({"skip": "1e3"}, "skip is a whole number"),
        ({"skip": "\u00b2"}, "skip is a whole number"),
    ]
    for query, message in cases:
        async with nbi.http.get(_url(nbi, "/devices/", **query)) as response:
            assert response.status == 400, query
            assert message in (await _json(response))["error"]


# --- POST /devices/<id>/tasks -----------------------------------------------------------------


async def test_task_queued(nbi: Nbi, add_device: AddDevice) -> None:
    await add_device()
    async with nbi.http.post(_tasks_url(nbi), json=GPV) as response:
        assert response.status == 202
        assert response.reason == "Task queued but not processed"
        task = await _json(response)
    assert task["name"] == "getParameterValues"
    assert task["parameterNames"] == [SW]
    assert task["device"] == DEVICE
    assert task["status"] == "queued"
    assert re.fullmatch("[0-9a-f]{24}", task["_id"])  # an ObjectId, as GenieACS's
    stored = await nbi.store.get_task(task["_id"])
    assert stored is not None and stored.spec == GPV and stored.status == "queued"


async def test_task_for_an_id_with_escapes(nbi: Nbi, add_device: AddDevice) -> None:
    # GenieACS escapes "-" inside the product class as %2D; the URL path encodes "%" once more.
    device_id = "001122-Router%2DX-SN%2F1"
    await add_device(device_id)
    async with nbi.http.post(_tasks_url(nbi, device_id) / "", json={"name": "reboot"}) as resp:
        assert resp.status == 202
        assert (await _json(resp))["device"] == device_id
    async with nbi.http.delete(_url(nbi, f"/devices/{quote(device_id, safe='')}")) as resp:
        assert resp.status == 200
    assert await nbi.store.get_device(device_id) is None


async def test_task_refused(nbi: Nbi, add_device: AddDevice) -> None:
    await add_device()
    cases: list[tuple[URL, bytes, int, str]] = [
        (_tasks_url(nbi, "001122-Router-NOPE"), b'{"name": "reboot"}', 404, "no device"),
        (_tasks_url(nbi), b'{"name": ', 400, "the task is not valid JSON"),
        (_tasks_url(nbi), b"\xff\xfe", 400, "the task is not valid JSON"),
        (_tasks_url(nbi), b'{"name": "fly"}', 400, "task name is one of"),
        (_tasks_url(nbi), b'{"name": "getParameterValues"}', 400, "needs parameterNames"),
        (_tasks_url(nbi), b"", 400, "add ?connection_request to only ask"),
        (_tasks_url(nbi, timeout="soon"), b'{"name": "reboot"}', 400, "timeout is a whole"),
        (_tasks_url(nbi), b" " * (MAX_BODY + 1), 413, "over 1048576 bytes"),
    ]
    for url, body, status, message in cases:
        async with nbi.http.post(url, data=body) as response:
            assert response.status == status, (url, body[:20])
            assert message in (await _json(response))["error"]
    assert await nbi.store.find_tasks(None) == []


async def test_task_done_after_connection_request(
    start_nbi: StartNbi, add_device: AddDevice
) -> None:
    await add_device()
    asked: list[tuple[str, float]] = []
    sessions: list[asyncio.Task[None]] = []

    async def connection_request(device_id: str, timeout_s: float) -> str | None:
        asked.append((device_id, timeout_s))
        sessions.append(asyncio.create_task(play_session(nbi.store, nbi.hub, device_id)))
        return None

    nbi = await start_nbi(connection_request=connection_request)
    async with nbi.http.post(_tasks_url(nbi, connection_request=""), json=GPV) as response:
        assert response.status == 200
        task = await _json(response)
    assert task["status"] == "done" and "fault" not in task
    assert asked == [(DEVICE, asked[0][1])] and 3.5 < asked[0][1] <= 4.0  # GenieACS: 4000 ms
    await asyncio.gather(*sessions)


async def test_task_faulted(start_nbi: StartNbi, add_device: AddDevice) -> None:
    await add_device()
    sessions: list[asyncio.Task[None]] = []

    async def connection_request(device_id: str, timeout_s: float) -> str | None:
        sessions.append(
            asyncio.create_task(play_session(nbi.store, nbi.hub, device_id, fault=True))
        )
        return None

    nbi = await start_nbi(connection_request=connection_request)
    async with nbi.http.post(_tasks_url(nbi, connection_request=""), json=GPV) as response:
        # As GenieACS answers: a script that takes 200 for success must not see one.
        assert response.status == 202
        assert response.reason == "Task faulted"
        task = await _json(response)
    assert task["status"] == "faulted"
    assert task["fault"] == {
        "code": "cwmp.9005",
        "message": "Invalid parameter name",
        "detail": None,
    }
    assert task["retries"] == 0
    await asyncio.gather(*sessions)


async def test_task_waits_for_the_next_session_without_a_dispatcher(
    nbi: Nbi, add_device: AddDevice
) -> None:
    await add_device()

    async def device_calls_in_on_its_own() -> None:
        for _ in range(500):
            if await nbi.store.find_tasks(None):
                break
            await asyncio.sleep(0.01)
        # Another task's end is no answer to this request.
        nbi.hub.announce(TaskFinished(999, DEVICE, "done"))
        await play_session(nbi.store, nbi.hub, DEVICE)

    session = asyncio.create_task(device_calls_in_on_its_own())
    url = _tasks_url(nbi, connection_request="", timeout="5000")
    async with nbi.http.post(url, json={"name": "reboot"}) as response:
        assert response.status == 200
        assert (await _json(response))["status"] == "done"
    await session


async def test_task_not_processed_in_time(nbi: Nbi, add_device: AddDevice) -> None:
    await add_device()
    url = _tasks_url(nbi, connection_request="", timeout="100")
    async with nbi.http.post(url, json={"name": "reboot"}) as response:
        assert response.status == 202
        assert response.reason == "Task queued but not processed"
        task = await _json(response)
    assert task["status"] == "queued"
    assert [t.public_id for t in await nbi.store.find_tasks(None)] == [task["_id"]]


async def test_a_retried_post_with_its_idempotency_key_adds_no_second_task(
    start_nbi: StartNbi, add_device: AddDevice
) -> None:
    """The client gives up on a POST (its answer lost) after the task was stored; its retry
    carries the same Idempotency-Key and gets that task back, not a duplicate."""
    await add_device()
    asked, stuck = asyncio.Event(), asyncio.Event()

    async def never_answers(device_id: str, timeout_s: float) -> str | None:
        asked.set()  # the task is stored by now
        await stuck.wait()
        return None

    nbi = await start_nbi(connection_request=never_answers)
    key = {"Idempotency-Key": "7f0e3c1a-add-lan-object"}
    add = {"name": "addObject", "objectName": "InternetGatewayDevice.LANDevice."}

    async def first_post() -> None:
        url = _tasks_url(nbi, connection_request="")
        async with nbi.http.post(url, json=add, headers=key) as response:
            await response.read()

    try:
        posting = asyncio.create_task(first_post())
        await asked.wait()
        posting.cancel()  # the client gives up: the answer is lost
        with pytest.raises(asyncio.CancelledError):
            await posting
        [first] = await nbi.store.find_tasks(None)
        async with nbi.http.post(_tasks_url(nbi), json=add, headers=key) as response:
            assert response.status == 202
            again = await _json(response)
        assert again["_id"] == first.public_id
        assert [t.id for t in await nbi.store.find_tasks(None)] == [first.id]

        async with nbi.http.post(_tasks_url(nbi), json={"name": "reboot"}, headers=key) as response:
            assert response.status == 409
            assert f"already names task {first.public_id}" in (await _json(response))["error"]
        async with nbi.http.post(
            _tasks_url(nbi), json=add, headers={"Idempotency-Key": "with space"}
        ) as response:
            assert response.status == 400
        assert [t.id for t in await nbi.store.find_tasks(None)] == [first.id]
    finally:
        stuck.set()  # the first request's handler ends, and the server can stop


async def test_connection_request_failed(start_nbi: StartNbi, add_device: AddDevice) -> None:
    await add_device()

    async def refused(device_id: str, timeout_s: float) -> str | None:
        return "bad-credentials: 401 after\r\ndigest"

    nbi = await start_nbi(connection_request=refused)
    async with nbi.http.post(_tasks_url(nbi, connection_request=""), json=GPV) as response:
        assert response.status == 202
        assert response.reason == "bad-credentials: 401 after digest"
        body = await _json(response)
    assert body["connectionRequestError"] == "bad-credentials: 401 after\r\ndigest"
    assert body["task"]["status"] == "queued"


async def test_empty_body_only_wakes_the_device(start_nbi: StartNbi, add_device: AddDevice) -> None:
    await add_device()

    async def connection_request(device_id: str, timeout_s: float) -> str | None:
        nbi.hub.announce(TaskFinished(1, device_id, "done"))  # not an arrival
        nbi.hub.announce(Arrival(device_id, ("6 CONNECTION REQUEST",), 42))
        return None

    nbi = await start_nbi(connection_request=connection_request)
    async with nbi.http.post(_tasks_url(nbi, connection_request="")) as response:
        assert response.status == 200
        assert await _json(response) == {"device": DEVICE, "events": ["6 CONNECTION REQUEST"]}
    assert await nbi.store.find_tasks(None) == []


async def test_empty_body_and_no_session(nbi: Nbi, add_device: AddDevice) -> None:
    await add_device()
    url = _tasks_url(nbi, connection_request="", timeout="50")
    async with nbi.http.post(url) as response:
        assert response.status == 504
        assert "opened no session within 50 ms" in (await _json(response))["error"]


async def test_empty_body_and_connection_request_failed(
    start_nbi: StartNbi, add_device: AddDevice
) -> None:
    await add_device()

    async def unreachable(device_id: str, timeout_s: float) -> str | None:
        return "unreachable: connection refused"

    nbi = await start_nbi(connection_request=unreachable)
    async with nbi.http.post(_tasks_url(nbi, connection_request="")) as response:
        assert response.status == 504
        assert response.reason == "unreachable: connection refused"
        assert "failed: unreachable" in (await _json(response))["error"]


# --- tasks and deletions ----------------------------------------------------------------------


async def test_tasks_listed_and_deleted(nbi: Nbi, add_device: AddDevice) -> None:
    await add_device()
    await add_device("001122-Router-SN2")
    for device_id, task in [(DEVICE, GPV), ("001122-Router-SN2", {"name": "reboot"})]:
        async with nbi.http.post(_tasks_url(nbi, device_id), json=task) as response:
            assert response.status == 202

    async with nbi.http.get(_url(nbi, "/tasks/")) as response:
        assert [t["name"] for t in await _json(response)] == ["getParameterValues", "reboot"]
    query = json.dumps({"device": "001122-Router-SN2"})
    async with nbi.http.get(_url(nbi, "/tasks", query=query)) as response:
        (task,) = await _json(response)
    assert task["name"] == "reboot"
    async with nbi.http.get(_url(nbi, "/tasks/", query='{"status": "lost"}')) as response:
        assert response.status == 400

    for path, status in [
        (f"/tasks/{task['_id']}", 200),
        (f"/tasks/{task['_id']}/", 404),
        ("/tasks/abc", 404),
        ("/tasks/99999999999999999999", 404),
    ]:
        async with nbi.http.delete(_url(nbi, path)) as response:
            assert response.status == status, path
            body = await _json(response)
            if status == 200:
                assert body == {"deleted": task["_id"]}
            else:
                assert "GET /tasks/ lists the tasks and their ids" in body["error"]


async def test_a_deleted_tasks_id_is_never_given_again(nbi: Nbi, add_device: AddDevice) -> None:
    """SQLite hands a deleted last row's number to the next row; the NBI's ids must not follow,
    or a script's stored id would delete another task."""
    await add_device()
    async with nbi.http.post(_tasks_url(nbi), json={"name": "reboot"}) as response:
        first = (await _json(response))["_id"]
    async with nbi.http.delete(_url(nbi, f"/tasks/{first}")) as response:
        assert response.status == 200
    async with nbi.http.post(_tasks_url(nbi), json={"name": "reboot"}) as response:
        second = (await _json(response))["_id"]
    assert second != first
    async with nbi.http.delete(_url(nbi, f"/tasks/{first}")) as response:
        assert response.status == 404
    assert [t.public_id for t in await nbi.store.find_tasks(None)] == [second]


async def test_device_deleted(nbi: Nbi, add_device: AddDevice) -> None:
    await add_device()
    async with nbi.http.delete(_url(nbi, f"/devices/{DEVICE}")) as response:
        assert response.status == 200
        assert await _json(response) == {"deleted": DEVICE}
    assert await nbi.store.get_device(DEVICE) is None
    # Again, and a device never seen: GenieACS answers 200, and scripts delete repeatedly.
    for path in (f"/devices/{DEVICE}/", "/devices/001122-Router-NEVER"):
        async with nbi.http.delete(_url(nbi, path)) as response:
            assert response.status == 200, path


# --- protocol ---------------------------------------------------------------------------------


async def test_token(start_nbi: StartNbi) -> None:
    nbi = await start_nbi(token="s3cret")
    for headers, status in [
        ({}, 401),
        ({"Authorization": "Bearer wrong"}, 401),
        ({"Authorization": "Basic s3cret"}, 401),
        ({"Authorization": "Bearer s3cret"}, 200),
        ({"Authorization": "bearer s3cret"}, 200),
    ]:
        for path in ("/devices/", "/openapi.json", "/nowhere"):
            async with nbi.http.get(_url(nbi, path), headers=headers) as response:
                expected = 404 if status == 200 and path == "/nowhere" else status
                assert response.status == expected, (headers, path)
                if status == 401:
                    assert response.headers["WWW-Authenticate"].startswith("Bearer")
                    assert "--token or KNOCK_NBI_TOKEN" in (await _json(response))["error"]


async def test_unknown_route_and_method(nbi: Nbi) -> None:
    async with nbi.http.get(_url(nbi, "/nothing/")) as response:
        assert response.status == 404
        assert "GET /openapi.json lists the routes" in (await _json(response))["error"]
    async with nbi.http.put(_url(nbi, "/devices/")) as response:
        assert response.status == 405
        assert response.headers["Allow"] == "GET,HEAD"
        assert "use GET,HEAD" in (await _json(response))["error"]
