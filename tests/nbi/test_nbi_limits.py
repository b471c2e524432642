"""What one NBI request may ask of the database is bounded, and input no database can hold is
refused: 400 naming the limit or the character, never a 500 with the SQL in the log. Over real
SQLite and PostgreSQL stores."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from nbi_support import AddDevice, Nbi
from yarl import URL

from knock.nbi.openapi import OPENAPI
from knock.nbi.query import MAX_CONDITIONS, MAX_SORT_KEYS, MAX_TEXT, MAX_VALUES
from knock.store import Store
from knock.store.rows import ParamValue

SW = "InternetGatewayDevice.DeviceInfo.SoftwareVersion"


@pytest.fixture
def store(store_on_each_database: Store) -> Store:
    """Every test here runs on SQLite and on PostgreSQL."""
    return store_on_each_database


async def _get(nbi: Nbi, path: str, **query: Any) -> tuple[int, Any]:
    # Compact, so that long lists still fit in the request line (8,190 bytes).
    params = {
        k: v if isinstance(v, str) else json.dumps(v, separators=(",", ":"))
        for k, v in query.items()
    }
    url = URL(nbi.url + path, encoded=True).update_query(params)
    async with nbi.http.get(url) as response:
        return response.status, await response.json()


async def test_an_in_list_of_900_values_is_answered(nbi: Nbi, add_device: AddDevice) -> None:
    await add_device("001122-Router-SN1", [ParamValue(SW, "1.7", "xsd:string")])
    await add_device("001122-Router-SN2", [ParamValue(SW, "7", "xsd:unsignedInt")])
    await add_device("001122-Router-SN3", [ParamValue(SW, "8", "xsd:string")])
    values: list[Any] = ["1.7", *range(1000, 1898), 7]
    status, docs = await _get(nbi, "/devices/", query={SW: {"$in": values}}, projection="_id")
    assert status == 200
    assert [d["_id"] for d in docs] == ["001122-Router-SN1", "001122-Router-SN2"]


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ({SW: {"$in": list(range(1250))}}, f"more than {MAX_VALUES} values"),
        (
            {"$or": [{"_id": {"$in": ["a"] * 600}}, {SW: {"$nin": [1] * 600}}]},
            f"more than {MAX_VALUES} values",
        ),
        ({"$or": [{"_id": f"d{i}"} for i in range(150)]}, f"more than {MAX_CONDITIONS} conditions"),
        ({"_id": "x" * (MAX_TEXT + 1)}, f"the limit is {MAX_TEXT}"),
        ({"_id": "a\u0000b"}, 'a NUL character ("\\u0000")'),
        ({"_deviceId._SerialNumber": "SN\ud800"}, 'a lone surrogate ("\\ud800")'),
        ({"Device.\u0000": 1}, "a NUL character"),
    ],
)
async def test_a_query_past_a_bound_gets_400_naming_it(
    nbi: Nbi, add_device: AddDevice, caplog: pytest.LogCaptureFixture, query: Any, named: str
) -> None:
    caplog.set_level(logging.WARNING)
    await add_device()
    status, body = await _get(nbi, "/devices/", query=query)
    assert status == 400
    assert named in body["error"]
    assert "SELECT" not in caplog.text


async def test_sort_projection_and_task_queries_are_bounded(nbi: Nbi) -> None:
    sort = {f"Device.P{i}": 1 for i in range(MAX_SORT_KEYS + 1)}
    status, body = await _get(nbi, "/devices/", sort=sort)
    assert status == 400 and f"at most {MAX_SORT_KEYS} keys" in body["error"]
    status, body = await _get(nbi, "/devices/", projection="_id,Device.\u0000")
    assert status == 400 and "NUL character" in body["error"]
    status, body = await _get(nbi, "/tasks/", query={"device": "\udfff"})
    assert status == 400 and "lone surrogate" in body["error"]


async def test_a_nul_in_a_device_id_gets_400(nbi: Nbi, add_device: AddDevice) -> None:
    await add_device()
    for method, path in [
        ("DELETE", "/devices/a%00b"),
        ("POST", "/devices/a%00b/tasks"),
        ("GET", "/dashboard/api/devices/a%00b/sessions"),  # the dashboard's
    ]:
        async with nbi.http.request(method, URL(nbi.url + path, encoded=True)) as response:
            body = await response.json()
            assert response.status == 400, (path, body)
            assert "NUL character" in body["error"]


async def test_a_stopped_read_gets_503_naming_why(nbi: Nbi, store: Store) -> None:
    store.stop_reads()  # what `knock serve` does first on SIGTERM
    for path in ("/devices/", "/tasks/", "/presets/", "/dashboard/api/cr-stats"):
        status, body = await _get(nbi, path)
        assert status == 503, path
        assert "shutting down" in body["error"]
        assert "503" in OPENAPI["paths"][path]["get"]["responses"]
