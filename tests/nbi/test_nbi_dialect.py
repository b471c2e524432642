"""GenieACS's dialect beyond the documents: the `total` header, HEAD, tasks echoed as given."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from nbi_support import AddDevice, Nbi

DEVICES = ["001122-Router-SN1", "001122-Router-SN2", "001122-Modem-SN3"]


@pytest.mark.parametrize("slash", ["", "/"])
async def test_head_and_get_count_every_match_whatever_the_page(
    nbi: Nbi, add_device: AddDevice, slash: str
) -> None:
    for device in DEVICES:
        await add_device(device)
    routers = {"query": json.dumps({"_deviceId._ProductClass": "Router"})}
    async with nbi.http.head(f"{nbi.url}/devices{slash}", params=routers) as r:
        assert (r.status, r.headers["total"], await r.read()) == (200, "2", b"")
    async with nbi.http.get(f"{nbi.url}/devices{slash}", params={"limit": "1", "skip": "1"}) as r:
        assert r.headers["total"] == "3"
        assert [d["_id"] for d in await r.json()] == ["001122-Router-SN1"]
    async with nbi.http.head(f"{nbi.url}/devices{slash}", params={"query": "{"}) as r:
        assert r.status == 400  # a bad query is refused whatever the method
    for device in DEVICES[:2]:
        await nbi.store.add_task(device, "reboot", {"name": "reboot"}, datetime.now(UTC))
    mine = {"query": json.dumps({"device": DEVICES[0]})}
    async with nbi.http.head(f"{nbi.url}/tasks{slash}", params=mine) as r:
        assert r.headers["total"] == "1"
    async with nbi.http.get(f"{nbi.url}/tasks{slash}", params={"limit": "0"}) as r:
        assert (r.headers["total"], await r.json()) == ("2", [])
    async with nbi.http.head(f"{nbi.url}/faults{slash}") as r:
        assert r.headers["total"] == "0"
    async with nbi.http.head(f"{nbi.url}/files{slash}") as r:
        assert r.headers["total"] == "0"


@pytest.mark.parametrize(
    "task",
    [
        {"name": "setParameterValues", "parameterValues": [["Device.X.Y", 300, "xsd:unsignedInt"]]},
        {"name": "addObject", "objectName": "Device.NAT.PortMapping"},
        {"name": "refreshObject", "parameterName": "Device.WiFi"},
    ],
)
async def test_a_posted_task_is_echoed_and_listed_as_given(
    nbi: Nbi, add_device: AddDevice, task: dict[str, Any]
) -> None:
    device = await add_device()
    async with nbi.http.post(f"{nbi.url}/devices/{device}/tasks", json=task) as r:
        echoed = await r.json()
    assert {k: echoed[k] for k in task} == task
    async with nbi.http.get(f"{nbi.url}/tasks/") as r:
        [listed] = await r.json()
    assert {k: listed[k] for k in task} == task
