"""GenieACS's /faults/: faulted tasks in its fault document, and DELETE to retry one."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import quote

from nbi_support import AddDevice, Nbi, inform

from knock.vocab import TaskStatus

T1 = datetime(2024, 5, 1, 12, 0, 5, tzinfo=UTC)
DETAIL = [{"parameter": "Device.X", "code": 9005, "message": "no such parameter"}]


async def faulted_task(nbi: Nbi, device: str, code: str, message: str) -> str:
    """A task run in a session and faulted there, as the ACS records one."""
    task = await nbi.store.add_task(device, "reboot", {"name": "reboot"}, T1)
    session_id = await nbi.store.record_inform(inform(device, now=T1))
    claimed = await nbi.store.claim_next_task(device, session_id, T1)
    assert claimed is not None and claimed.id == task.id
    await nbi.store.finish_task(
        task.id,
        TaskStatus.FAULTED,
        session_id,
        T1,
        fault_code=code,
        fault_string=message,
        fault_detail=DETAIL,
    )
    assert task.public_id is not None
    return task.public_id


async def test_faulted_tasks_are_listed_as_genieacs_faults(nbi: Nbi, add_device: AddDevice) -> None:
    first = await add_device("001122-Router-SN1")
    second = await add_device("001122-Router-SN2")
    cwmp = await faulted_task(nbi, first, "9005", "Invalid parameter name")
    own = await faulted_task(nbi, second, "knock", "objectName is required")
    await nbi.store.add_task(first, "reboot", {"name": "reboot"}, T1)  # queued: no fault
    async with nbi.http.get(f"{nbi.url}/faults/") as r:
        assert r.status == 200
        faults = await r.json()
    assert faults == [
        {
            "_id": f"{first}:task_{cwmp}",
            "device": first,
            "channel": f"task_{cwmp}",
            "code": "cwmp.9005",
            "message": "Invalid parameter name",
            "detail": DETAIL,
            "retries": 0,
            "timestamp": "2024-05-01T12:00:05.000Z",
        },
        {
            "_id": f"{second}:task_{own}",
            "device": second,
            "channel": f"task_{own}",
            "code": "knock",
            "message": "objectName is required",
            "detail": DETAIL,
            "retries": 0,
            "timestamp": "2024-05-01T12:00:05.000Z",
        },
    ]
    for query, expected in [
        ({"device": second}, [own]),
        ({"code": "cwmp.9005"}, [cwmp]),
        ({"channel": f"task_{own}"}, [own]),
        ({"_id": f"{first}:task_{cwmp}"}, [cwmp]),
    ]:
        async with nbi.http.get(f"{nbi.url}/faults", params={"query": json.dumps(query)}) as r:
            assert [f["channel"] for f in await r.json()] == [f"task_{i}" for i in expected]
    async with nbi.http.get(f"{nbi.url}/faults", params={"query": '{"status": "x"}'}) as r:
        assert r.status == 400 and "faults are queried by" in (await r.json())["error"]


async def test_deleting_a_fault_queues_its_task_again(nbi: Nbi, add_device: AddDevice) -> None:
    device = await add_device()
    task_id = await faulted_task(nbi, device, "9002", "Internal error")
    fault_id = quote(f"{device}:task_{task_id}", safe="")
    async with nbi.http.delete(f"{nbi.url}/faults/{fault_id}") as r:
        assert r.status == 200
        doc = await r.json()
    assert (doc["_id"], doc["status"], "fault" in doc) == (task_id, "queued", False)
    stored = await nbi.store.get_task(task_id)
    assert stored is not None
    assert (stored.status, stored.fault_code, stored.attempts, stored.finished) == (
        "queued",
        None,
        0,
        None,
    )
    async with nbi.http.get(f"{nbi.url}/faults/") as r:
        assert await r.json() == []
    async with nbi.http.delete(f"{nbi.url}/faults/{fault_id}") as r:
        assert r.status == 404  # no longer faulted
    async with nbi.http.delete(f"{nbi.url}/faults/not-a-fault") as r:
        assert r.status == 404 and "GET /faults/" in (await r.json())["error"]
