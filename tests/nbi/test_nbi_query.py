"""GenieACS queries, sorts and projections, run as SQL against real databases."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, create_engine, delete, event, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from knock.nbi.query import (
    QueryError,
    device_filter,
    device_order,
    parse_projection,
    task_filter,
)
from knock.store import regex
from knock.store.engine import configure_sqlite
from knock.store.schema import devices, metadata, parameters, tasks

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
T1 = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
SW = "InternetGatewayDevice.DeviceInfo.SoftwareVersion"
UP = "InternetGatewayDevice.DeviceInfo.UpTime"
ON = "InternetGatewayDevice.WANDevice.1.Enable"
BAD = "InternetGatewayDevice.X_Vendor.Count"


def _device(
    device_id: str, manufacturer: str, last_inform: datetime | None, stun: str | None = None
) -> dict[str, Any]:
    return {
        "id": device_id,
        "manufacturer": manufacturer,
        "oui": "001122",
        "product_class": "Router",
        "serial_number": device_id.upper(),
        "registered": T0 - timedelta(days=30),
        "last_inform": last_inform,
        "stun_outcome": stun,
    }


def _param(device_id: str, path: str, value: str | None, xsd: str | None) -> dict[str, Any]:
    return {"device_id": device_id, "path": path, "value": value, "type": xsd, "timestamp": T0}


DEVICES = [
    _device("d1", "Acme", T0, "ok"),
    _device("d2", "Bcme", T1, "bad-integrity"),
    _device("d3", "Acme", None),
]
PARAMETERS = [
    _param("d1", SW, "1.2", "xsd:string"),
    _param("d1", UP, "100", "xsd:unsignedInt"),
    _param("d1", ON, "true", "xsd:boolean"),
    _param("d1", "InternetGatewayDevice.WANDevice.", None, None),
    _param("d2", SW, "1.10", "xsd:string"),
    _param("d2", UP, "99", "xsd:unsignedInt"),
    _param("d2", ON, "0", "xsd:boolean"),
    # A CPE that sent junk for an integer: PostgreSQL must not fail the query on its cast.
    _param("d2", BAD, "n/a", "xsd:int"),
    _param("d3", BAD, "-5", "xsd:int"),
]


@pytest.fixture
async def db(engine: AsyncEngine) -> AsyncEngine:
    async with engine.begin() as conn:
        await conn.execute(insert(devices), DEVICES)
        await conn.execute(insert(parameters), PARAMETERS)
    return engine


async def _ids(db: AsyncEngine, query: Any, sort: Any = None) -> list[str]:
    statement = select(devices.c.id).order_by(*device_order(sort), devices.c.id)
    where = device_filter(query)
    if where is not None:
        statement = statement.where(where)
    async with db.connect() as conn:
        return list((await conn.execute(statement)).scalars())


def _nested(levels: int) -> dict[str, Any]:
    query: dict[str, Any] = {"_id": "d1"}
    for _ in range(levels):
        query = {"$and": [query]}
    return query


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (None, ["d1", "d2", "d3"]),
        ({}, ["d1", "d2", "d3"]),
        ({"_id": "d2"}, ["d2"]),
        ({"_deviceId._Manufacturer": "Acme"}, ["d1", "d3"]),
        ({"_deviceId._SerialNumber": "D3", "_deviceId._OUI": "001122"}, ["d3"]),
        # Devices whose STUN keep-alives are refused, for an operator to look into.
        ({"_stun.outcome": "bad-integrity"}, ["d2"]),
        ({"_deviceId._ProductClass": {"$ne": "Router"}}, []),
        # Dates, as ISO text and as epoch milliseconds
        ({"_lastInform": "2024-05-01T12:00:00.000Z"}, ["d1"]),
        ({"_lastInform": _ms(T0)}, ["d1"]),
        ({"_lastInform": {"$gt": "2024-05-15T00:00:00Z"}}, ["d2"]),
        ({"_lastInform": {"$lt": _ms(T0 + timedelta(days=14))}}, ["d1"]),
        ({"_lastInform": {"$gte": _ms(T0), "$lte": "2024-06-01T12:00:00+00:00"}}, ["d1", "d2"]),
        ({"_lastInform": {"$ne": "2024-05-01T12:00:00Z"}}, ["d2", "d3"]),
        ({"_lastInform": None}, ["d3"]),
        ({"_lastInform": {"$exists": True}}, ["d1", "d2"]),
        ({"_lastInform": {"$in": [_ms(T1), None]}}, ["d2", "d3"]),
        ({"_registered": {"$lt": "2024-04-15"}}, ["d1", "d2", "d3"]),
        # Parameters compared as text
        ({SW: "1.2"}, ["d1"]),
        ({SW + "._value": "1.10"}, ["d2"]),
        ({SW: {"$gt": "1.10"}}, ["d1"]),
        ({SW: {"$in": ["1.2", "1.10"]}}, ["d1", "d2"]),
        ({SW: {"$nin": ["1.2"]}}, ["d2", "d3"]),
        ({SW: {"$ne": "1.2"}}, ["d2", "d3"]),
        ({SW: None}, ["d3"]),
        ({SW: {"$exists": False}}, ["d3"]),
        # Integer parameters compare as numbers: as text "100" < "99"
        ({UP: {"$gt": 99}}, ["d1"]),
        ({UP: {"$gt": "99"}}, ["d1"]),
        ({UP: {"$lte": 99}}, ["d2"]),
        ({UP: {"$gte": 99.5}}, ["d1"]),
        ({UP: {"$gt": 50, "$lt": 100}}, ["d2"]),
        ({UP: 100}, ["d1"]),
        ({UP: "100"}, ["d1"]),
        ({UP: {"$in": [99, 5]}}, ["d2"]),
        ({UP: {"$ne": 100}}, ["d2", "d3"]),
        ({BAD: {"$lt": 0}}, ["d3"]),
        ({BAD: {"$gt": -10}}, ["d3"]),
        ({BAD: "n/a"}, []),
        # A number never equals a string parameter, as in MongoDB
        ({SW: 1.2}, []),
        # Booleans, whichever way the CPE wrote them
        ({ON: True}, ["d1"]),
        ({ON: False}, ["d2"]),
        ({ON: {"$ne": True}}, ["d2", "d3"]),
        # Object nodes exist without a value
        ({"InternetGatewayDevice.WANDevice.": {"$exists": True}}, ["d1"]),
        # $and / $or, nested
        ({"$or": [{"_id": "d1"}, {UP: 99}]}, ["d1", "d2"]),
        (
            {"$and": [{"_deviceId._Manufacturer": "Acme"}, {"$or": [{SW: "1.2"}, {SW: None}]}]},
            ["d1", "d3"],
        ),
        ({"$or": [{}]}, ["d1", "d2", "d3"]),
        (_nested(20), ["d1"]),
        ({"_deviceId._Manufacturer": "Acme", "$or": [{"_id": "d2"}, {"_id": "d3"}]}, ["d3"]),
        # $regex: columns, parameters of string type (not numbers, booleans), ignore case
        ({"_id": {"$regex": "^d[23]$"}}, ["d2", "d3"]),
        ({"_deviceId._Manufacturer": {"$regex": "^ac", "$options": "i"}}, ["d1", "d3"]),
        ({"_deviceId._Manufacturer": {"$regex": "^ac"}}, []),
        ({SW: {"$regex": "^1\\.1"}}, ["d2"]),
        ({SW: {"$regex": "\\d+\\.\\d{1,2}$"}}, ["d1", "d2"]),
        ({UP: {"$regex": "9"}}, []),  # an integer parameter is a number, never text
        ({ON: {"$regex": "^t"}}, []),
        ({SW: {"$regex": "^1", "$ne": "1.2"}}, ["d2"]),
        ({"$or": [{SW: {"$regex": "^1\\.2$"}}, {"_id": "d3"}]}, ["d1", "d3"]),
    ],
)
async def test_device_query(db: AsyncEngine, query: Any, expected: list[str]) -> None:
    assert await _ids(db, query) == expected


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ({"_lastInform": -1}, ["d2", "d1", "d3"]),
        ({"_lastInform": 1}, ["d3", "d1", "d2"]),
        ({"_id": -1}, ["d3", "d2", "d1"]),
        ({"_deviceId._Manufacturer": 1, "_id": -1}, ["d3", "d1", "d2"]),
        # By number for integer parameters, missing ones first when ascending as in MongoDB
        ({UP: 1}, ["d3", "d2", "d1"]),
        ({UP + "._value": -1}, ["d1", "d2", "d3"]),
        ({SW: 1}, ["d3", "d2", "d1"]),
    ],
)
async def test_device_sort(db: AsyncEngine, sort: Any, expected: list[str]) -> None:
    assert await _ids(db, None, sort) == expected


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ([], "a query is a JSON object"),
        ("_id", "a query is a JSON object"),
        ({"$nor": [{}]}, "$nor is not supported at the top of a query"),
        ({"$or": []}, "$or takes a non-empty list"),
        ({"$and": {"_id": "x"}}, "$and takes a non-empty list"),
        ({"_tags": {"$gt": "x"}}, "_tags matches a tag by name"),
        ({"Device..X": 1}, "is neither a parameter path"),
        ({"Device.X._writable": True}, "is neither a parameter path"),
        ({"_lastInform": {"$gt": "yesterday"}}, "_lastInform compares with a date"),
        ({"_lastInform": True}, "_lastInform compares with a date"),
        ({"_lastInform": 10**15}, "_lastInform compares with a date"),
        ({"_id": 5}, "_id compares with a string, not 5"),
        ({SW: {"$where": "1"}}, "unsupported operator $where"),
        ({SW: {"$regex": 1}}, "$regex takes a pattern as a string"),
        ({SW: {"$options": "i"}}, "$options goes with $regex"),
        ({SW: {"$regex": "a", "$options": "x"}}, 'takes "$options": "i"'),
        ({SW: {"$regex": "a" * 257}}, "257 characters long; the limit is 256"),
        ({SW: {"$regex": "(a)\\1"}}, "uses \\1, which PostgreSQL and SQLite read differently"),
        ({SW: {"$regex": "\\bx"}}, "uses \\b"),
        ({SW: {"$regex": "(?=a)"}}, "uses a (?...) construct"),
        ({SW: {"$regex": "(?i)a"}}, "uses a (?...) construct"),
        ({SW: {"$regex": "a{1,300}"}}, "repeats {1,300}; at most 255 times"),
        ({SW: {"$regex": "(a"}}, "is not a regular expression Knock can run"),
        ({"_lastInform": {"$regex": "^2024"}}, "_lastInform is not text: $regex does not apply"),
        ({SW: {"$in": "1.2"}}, "$in takes a list"),
        ({SW: {"$exists": 1}}, "$exists takes true or false"),
        ({SW: {"$gt": None}}, "$gt needs a value"),
        ({SW: {"$gt": True}}, "booleans only compare for equality"),
        ({SW: {"version": "1.2"}}, "compare with a string, number or boolean"),
        ({SW: ["1.2"]}, "compare with a string, number or boolean"),
        ({UP: 10**30}, "is out of range"),
        (_nested(21), "nest at most 20 levels deep"),
    ],
)
def test_bad_device_query(query: Any, message: str) -> None:
    with pytest.raises(QueryError) as raised:
        device_filter(query)
    assert message in str(raised.value)


@pytest.mark.parametrize(
    ("sort", "message"),
    [
        ([["_id", 1]], "sort is a JSON object"),
        ({"_id": 2}, "is 1 (ascending) or -1 (descending)"),
        ({"_id": True}, "is 1 (ascending) or -1 (descending)"),
        ({"_tags": 1}, "is neither a parameter path"),
    ],
)
def test_bad_sort(sort: Any, message: str) -> None:
    with pytest.raises(QueryError, match=re.escape(message)):
        device_order(sort)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, None),
        ("", None),
        (" , ", None),
        ("_id,_lastInform", ["_id", "_lastInform"]),
        ("_deviceId._SerialNumber", ["_deviceId._SerialNumber"]),
        (f"{SW}._value, {UP}", [SW, UP]),
        ("InternetGatewayDevice.DeviceInfo.", ["InternetGatewayDevice.DeviceInfo"]),
    ],
)
def test_projection(text: str | None, expected: list[str] | None) -> None:
    assert parse_projection(text) == expected


async def test_task_query(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(insert(devices), DEVICES)
        await conn.execute(
            insert(tasks),
            [
                {
                    "device_id": d,
                    "name": n,
                    "spec": {"name": n},
                    "status": s,
                    "created": c,
                    "public_id": f"{i:024x}",
                }
                for i, (d, n, s, c) in enumerate(
                    [
                        ("d1", "reboot", "done", T0),
                        ("d1", "getParameterValues", "queued", T1),
                        ("d2", "reboot", "faulted", T1),
                        ("d2", "reboot", "unknown", T1),
                        ("d2", "reboot", "running", T1),
                    ],
                    start=1,
                )
            ],
        )

    async def ids(query: Any, history: bool = True) -> list[int]:
        statement = select(tasks.c.id).order_by(tasks.c.id)
        where = task_filter(query, history=history)
        if where is not None:
            statement = statement.where(where)
        async with engine.connect() as conn:
            return list((await conn.execute(statement)).scalars())

    assert await ids(None) == [1, 2, 3, 4, 5]
    # As GenieACS lists tasks: a done one is gone, a faulted one stays.
    assert await ids(None, history=False) == [2, 3, 4, 5]
    assert await ids({"device": "d1"}, history=False) == [2]
    assert await ids({"_id": f"{2:024x}"}) == [2]
    assert await ids({"_id": f"{2:024X}"}) == [2]  # hex digits in either case
    assert await ids({"_id": {"$in": [f"{1:024x}", f"{3:024x}"]}}) == [1, 3]
    assert await ids({"device": "d1", "name": "reboot"}) == [1]
    assert await ids({"status": {"$ne": "done"}}) == [2, 3, 4, 5]
    assert await ids({"$or": [{"device": "d2"}, {"status": "queued"}]}) == [2, 3, 4, 5]
    assert await ids({"timestamp": {"$gt": _ms(T0)}}) == [2, 3, 4, 5]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"_id": "abc"}, "is a task id, 24 hex digits"),
        ({"_id": "2"}, "is a task id, 24 hex digits"),
        ({"_id": 2}, "is a task id, 24 hex digits"),
        ({"_id": "0" * 23 + "g"}, "is a task id, 24 hex digits"),
        ({"status": "lost"}, "status is one of queued, running, done, faulted"),
        ({"parameterNames": "x"}, "tasks are queried by _id, device, name, status, timestamp"),
    ],
)
def test_bad_task_query(query: Any, message: str) -> None:
    with pytest.raises(QueryError) as raised:
        task_filter(query)
    assert message in str(raised.value)


# --- numeric comparison, as a property --------------------------------------------------------

_OPS = {"$gt": float.__gt__, "$gte": float.__ge__, "$lt": float.__lt__, "$lte": float.__le__}


@pytest.fixture(scope="module")
def sync_db() -> Iterator[Engine]:
    """A blocking engine, because hypothesis runs examples in a plain loop."""
    eng = create_engine("sqlite:///:memory:")
    event.listen(eng, "connect", configure_sqlite)
    metadata.create_all(eng)
    yield eng
    eng.dispose()


def _matching(eng: Engine, values: Sequence[int], query: Any) -> set[str]:
    with eng.begin() as conn:
        conn.execute(delete(parameters))
        conn.execute(delete(devices))
        names = [f"d{i}" for i in range(len(values))]
        if names:
            conn.execute(insert(devices), [_device(n, "Acme", T0) for n in names])
            conn.execute(
                insert(parameters),
                [_param(n, UP, str(v), "xsd:long") for n, v in zip(names, values, strict=True)],
            )
        where = device_filter(query)
        assert where is not None
        return set(conn.execute(select(devices.c.id).where(where)).scalars())


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(
    values=st.lists(st.integers(-(2**40), 2**40), max_size=6),
    op=st.sampled_from(sorted(_OPS)),
    operand=st.integers(-(2**40), 2**40) | st.floats(-1e12, 1e12),
    as_text=st.booleans(),
)
def test_integer_parameters_compare_as_numbers(
    sync_db: Engine, values: list[int], op: str, operand: float, as_text: bool
) -> None:
    query_value: Any = repr(operand) if as_text and isinstance(operand, int) else operand
    expected = {f"d{i}" for i, v in enumerate(values) if _OPS[op](float(v), float(operand))}
    assert _matching(sync_db, values, {UP: {op: query_value}}) == expected


# --- any JSON is either translated to SQL that runs, or refused with a QueryError -------------

_KEYS = st.sampled_from(
    [
        "$regex",
        "$options",
        "$and",
        "$or",
        "$nor",
        "$gt",
        "$lte",
        "$ne",
        "$in",
        "$nin",
        "$exists",
        "$eq",
        "_id",
        "_lastInform",
        "_deviceId._OUI",
        UP,
        SW + "._value",
        "_tags",
        "A..B",
    ]
) | st.text(max_size=8)
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(query=_JSON, sort=_JSON)
def test_any_json_translates_or_is_refused(sync_db: Engine, query: Any, sort: Any) -> None:
    try:
        where = device_filter(query)
        order = device_order(sort)
    except QueryError:
        return
    statement = select(devices.c.id).order_by(*order)
    if where is not None:
        statement = statement.where(where)
    with sync_db.connect() as conn:
        conn.execute(statement).all()


async def test_a_pattern_that_backtracks_exponentially_in_python_answers_at_once(
    db: AsyncEngine,
) -> None:
    """(a+)+b against a's alone takes Python's re 2**n steps; SQLite matches with RE2, linear,
    and PostgreSQL with its own engine. Were it re, this test would hang until its timeout."""
    async with db.begin() as conn:
        await conn.execute(insert(parameters), [_param("d3", SW, "a" * 5000, "xsd:string")])
    assert await _ids(db, {SW: {"$regex": "(a+)+b"}}) == []
    assert await _ids(db, {SW: {"$regex": "(a+)+$"}}) == ["d3"]
    assert regex.sqlite_match("(a+)+b", "a" * 100_000) == 0
