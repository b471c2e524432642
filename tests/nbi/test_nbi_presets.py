"""GenieACS's /presets/, /provisions/ and device tags through the NBI."""

from __future__ import annotations

import json
from typing import Any

import pytest
from nbi_support import AddDevice, Nbi

PRESET = {
    "weight": 5,
    "channel": "default",
    "precondition": '{"_deviceId._ProductClass": "Router"}',
    "events": {"0 BOOTSTRAP": True},
    "configurations": [
        {"type": "value", "name": "Device.ManagementServer.PeriodicInformInterval", "value": 300},
        {"type": "age", "name": "Device.DeviceInfo.UpTime", "age": 3600},
        {"type": "add_tag", "tag": "managed"},
        {"type": "delete_tag", "tag": "new"},
        {
            "type": "add_object",
            "name": "Device.NAT.PortMapping",
            "object": {"ExternalPort": 8080, "Protocol": "TCP", "_keys": ["ExternalPort"]},
        },
        {"type": "delete_object", "name": "Device.NAT.PortMapping.", "object": {"Protocol": "UDP"}},
    ],
}


async def test_a_preset_is_stored_listed_by_weight_and_deleted(nbi: Nbi) -> None:
    async with nbi.http.put(f"{nbi.url}/presets/heavy", json=PRESET) as r:
        assert r.status == 200
        assert await r.json() == {"_id": "heavy", **PRESET}
    light = {"weight": -1, "configurations": [{"type": "add_tag", "tag": "x"}]}
    async with nbi.http.put(f"{nbi.url}/presets/light", json=light) as r:
        assert r.status == 200
    async with nbi.http.get(f"{nbi.url}/presets/") as r:
        assert await r.json() == [{"_id": "light", **light}, {"_id": "heavy", **PRESET}]
    async with nbi.http.put(f"{nbi.url}/presets/light", json={**light, "weight": 9}) as r:
        assert r.status == 200  # replaced
    async with nbi.http.get(f"{nbi.url}/presets") as r:
        assert [p["_id"] for p in await r.json()] == ["heavy", "light"]
    async with nbi.http.delete(f"{nbi.url}/presets/heavy") as r:
        assert r.status == 200
    async with nbi.http.delete(f"{nbi.url}/presets/heavy") as r:
        assert r.status == 404


async def test_presets_are_queried_counted_and_paged_as_genieacs_does(nbi: Nbi) -> None:
    for name, weight in [("a", 5), ("b", -1), ("c", 5), ("d", 20)]:
        async with nbi.http.put(f"{nbi.url}/presets/{name}", json={"weight": weight}) as r:
            assert r.status == 200
    query = json.dumps({"weight": {"$gte": 0, "$lt": 20}})
    async with nbi.http.get(f"{nbi.url}/presets/", params={"query": query}) as r:
        assert r.headers["total"] == "2"
        assert await r.json() == [{"_id": "a", "weight": 5}, {"_id": "c", "weight": 5}]
    paged = {"query": json.dumps({"_id": {"$ne": "a"}}), "skip": "1", "limit": "1"}
    async with nbi.http.get(f"{nbi.url}/presets", params=paged) as r:
        assert r.headers["total"] == "3"
        assert await r.json() == [{"_id": "c", "weight": 5}]  # b, then c, then d
    async with nbi.http.head(f"{nbi.url}/presets/", params={"query": '{"_id": "d"}'}) as r:
        assert (r.status, r.headers["total"]) == (200, "1")
    for bad, message in [
        ({"name": "a"}, "presets are queried by _id, weight, not 'name'"),
        ({"weight": "5"}, "weight compares with a whole number"),
    ]:
        async with nbi.http.get(f"{nbi.url}/presets/", params={"query": json.dumps(bad)}) as r:
            assert r.status == 400
            assert message in (await r.json())["error"]


@pytest.mark.parametrize(
    ("preset", "message"),
    [
        ([], "a preset is a JSON object"),
        ({"weight": "1"}, "weight is a whole number"),
        ({"schedule": "0 * * * *"}, "scheduled presets are not supported"),
        ({"precondition": "DeviceID.ID = 'x'"}, "expression language is not supported"),
        ({"precondition": {"size": {"$where": 1}}}, "unsupported operator"),
        ({"events": {"1 BOOT": "yes"}}, "events maps event codes to true or false"),
        ({"configurations": [{"type": "provision", "name": "x"}]}, "JavaScript provisions"),
        ({"configurations": [{"type": "add_object", "name": "x"}]}, "object gives the instance"),
        (
            {"configurations": [{"type": "delete_object", "name": "A.", "object": {"B": [1]}}]},
            "object maps parameter names",
        ),
        (
            {"configurations": [{"type": "add_object", "name": "A.", "object": {"_keys": ["B"]}}]},
            "_keys lists at least one",
        ),
        ({"configurations": [{"type": "value", "name": "a b", "value": 1}]}, "parameter path"),
        ({"configurations": [{"type": "value", "name": "A.B", "value": None}]}, "value sets"),
        ({"configurations": [{"type": "age", "name": "A.B", "age": 0}]}, "age is a number"),
        ({"configurations": [{"type": "add_tag", "tag": "a/b"}]}, "a tag is 1 to 128"),
        ({"configurations": [{"type": "nope"}]}, "type is one of value, age"),
    ],
)
async def test_a_preset_knock_cannot_apply_is_refused(nbi: Nbi, preset: Any, message: str) -> None:
    async with nbi.http.put(f"{nbi.url}/presets/p", json=preset) as r:
        assert r.status == 400
        assert message in (await r.json())["error"]
    assert await nbi.store.list_presets() == []


async def test_provisions_answer_501_with_what_to_use_instead(nbi: Nbi) -> None:
    async with nbi.http.put(f"{nbi.url}/provisions/p", data="declare('X', null, {value: 1})") as r:
        assert r.status == 501
        error = (await r.json())["error"]
    assert "JavaScript provisions" in error and "PUT /presets/<name>" in error


async def test_tags_are_added_shown_queried_and_removed(nbi: Nbi, add_device: AddDevice) -> None:
    tagged = await add_device("001122-Router-SN1")
    other = await add_device("001122-Router-SN2")
    for tag in ("blue", "green", "blue"):
        async with nbi.http.post(f"{nbi.url}/devices/{tagged}/tags/{tag}") as r:
            assert r.status == 200
    async with nbi.http.post(f"{nbi.url}/devices/nobody/tags/blue") as r:
        assert r.status == 404

    async def ids(query: Any, projection: str = "_id") -> list[Any]:
        params = {"query": json.dumps(query), "projection": projection}
        async with nbi.http.get(f"{nbi.url}/devices/", params=params) as r:
            assert r.status == 200, await r.text()
            return list(await r.json())

    assert await ids({"_tags": "blue"}, "_tags") == [{"_id": tagged, "_tags": ["blue", "green"]}]
    assert [d["_id"] for d in await ids({"_tags": {"$ne": "blue"}})] == [other]
    assert [d["_id"] for d in await ids({"_tags": {"$exists": False}})] == [other]
    assert [d["_id"] for d in await ids({"_tags": {"$in": ["red", "green"]}})] == [tagged]
    async with nbi.http.get(f"{nbi.url}/devices/", params={"query": '{"_tags": 1}'}) as r:
        assert r.status == 400
    async with nbi.http.delete(f"{nbi.url}/devices/{tagged}/tags/blue") as r:
        assert r.status == 200
    async with nbi.http.delete(f"{nbi.url}/devices/{tagged}/tags/blue") as r:
        assert r.status == 404
    assert await ids({"_id": tagged}, "_tags") == [{"_id": tagged, "_tags": ["green"]}]
