"""The dashboard's routes over a real socket, on SQLite and on a real PostgreSQL: its JSON (the
store queries behind it) and its pages, with and without the NBI's token."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from nbi_support import Nbi, StartNbi, inform

from knock.nbi.dashboard_stats import LATENCY_EDGES_MS
from knock.store import Store
from knock.store.cr_stats import CrCount
from knock.store.rows import ParamValue
from knock.vocab import CrMethod, CrOutcome

DEVICE = "001122-Router-SN1"
OTHER = "001122-Router-SN2"
API = "/dashboard/api"


@pytest.fixture
def store(store_on_each_database: Store) -> Store:
    """Every test here runs on SQLite and on PostgreSQL."""
    return store_on_each_database


async def get(nbi: Nbi, path: str, token: str | None = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with nbi.http.get(nbi.url + path, headers=headers) as response:
        assert response.content_type == "application/json"
        return response.status, await response.json()


async def attempt(
    store: Store,
    device_id: str,
    method: CrMethod,
    started: datetime,
    ms: float | None,
    outcome: CrOutcome = CrOutcome.DELIVERED,
) -> int:
    """Record an attempt that took `ms` (None: still under way)."""
    attempt_id = await store.add_cr_attempt(device_id, method, started)
    if ms is not None:
        ended = started + timedelta(milliseconds=ms)
        await store.finish_cr_attempt(attempt_id, outcome, ended, f"{outcome} ({ms} ms)")
    return attempt_id


async def test_sessions_newest_first(nbi: Nbi) -> None:
    t0 = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    first = await nbi.store.record_inform(inform(DEVICE, now=t0, events=("0 BOOTSTRAP",)))
    await nbi.store.end_session(first, "ok", t0 + timedelta(seconds=2))
    second = await nbi.store.record_inform(
        inform(DEVICE, now=t0 + timedelta(minutes=5), events=("6 CONNECTION REQUEST",))
    )
    await nbi.store.record_inform(inform(OTHER, now=t0))

    status, body = await get(nbi, f"{API}/devices/{quote(DEVICE, safe='')}/sessions")
    assert status == 200
    assert body == [
        {
            "id": second,
            "started": "2025-01-02T03:09:05.000Z",
            "ended": None,
            "events": ["6 CONNECTION REQUEST"],
            "cwmpVersion": "urn:dslforum-org:cwmp-1-0",
            "outcome": None,
        },
        {
            "id": first,
            "started": "2025-01-02T03:04:05.000Z",
            "ended": "2025-01-02T03:04:07.000Z",
            "events": ["0 BOOTSTRAP"],
            "cwmpVersion": "urn:dslforum-org:cwmp-1-0",
            "outcome": "ok",
        },
    ]
    status, body = await get(nbi, f"{API}/devices/{DEVICE}/sessions?limit=1")
    assert [s["id"] for s in body] == [second]


async def test_cr_attempts_newest_first_with_latency(nbi: Nbi) -> None:
    t0 = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    await nbi.store.record_inform(inform(DEVICE, now=t0))
    await nbi.store.record_inform(inform(OTHER, now=t0))
    old = await attempt(nbi.store, DEVICE, CrMethod.HTTP, t0, 1500, CrOutcome.UNREACHABLE)
    new = await attempt(nbi.store, DEVICE, CrMethod.UDP, t0 + timedelta(seconds=2), 123.4)
    under_way = await attempt(nbi.store, DEVICE, CrMethod.XMPP, t0 + timedelta(seconds=3), None)
    await attempt(nbi.store, OTHER, CrMethod.XMPP, t0, 10)

    status, body = await get(nbi, f"{API}/devices/{DEVICE}/cr-attempts")
    assert status == 200
    assert body == [
        {
            "id": under_way,
            "method": "xmpp",
            "started": "2025-01-02T03:04:08.000Z",
            "ended": None,
            "outcome": None,
            "detail": None,
            "latencyMs": None,
        },
        {
            "id": new,
            "method": "udp",
            "started": "2025-01-02T03:04:07.000Z",
            "ended": "2025-01-02T03:04:07.123Z",
            "outcome": "delivered",
            "detail": "delivered (123.4 ms)",
            "latencyMs": 123.4,
        },
        {
            "id": old,
            "method": "http",
            "started": "2025-01-02T03:04:05.000Z",
            "ended": "2025-01-02T03:04:06.500Z",
            "outcome": "unreachable",
            "detail": "unreachable (1500 ms)",
            "latencyMs": None,  # it failed: no latency, only the time it took
        },
    ]
    _, body = await get(nbi, f"{API}/devices/{DEVICE}/cr-attempts?limit=2")
    assert [a["id"] for a in body] == [under_way, new]


async def test_history_of_an_unknown_device_or_with_a_bad_limit(nbi: Nbi) -> None:
    await nbi.store.record_inform(inform(DEVICE))
    for route in ("sessions", "cr-attempts"):
        status, body = await get(nbi, f"{API}/devices/nobody/{route}")
        assert status == 404
        assert "no device 'nobody'" in body["error"]
        for limit in ("0", "-1", "x", "1001"):
            status, body = await get(nbi, f"{API}/devices/{DEVICE}/{route}?limit={limit}")
            assert status == 400
            assert body["error"] == f"limit is a whole number from 1 to 1000, not {limit!r}"


async def test_parameters_say_writable_only_as_the_device_reported(nbi: Nbi) -> None:
    t0 = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    uptime, url = "Device.DeviceInfo.UpTime", "Device.ManagementServer.URL"
    read = [
        ParamValue(uptime, "42", "xsd:unsignedInt"),
        ParamValue(url, "http://acs/", "xsd:string"),
    ]
    await nbi.store.record_inform(inform(DEVICE, read, now=t0))
    # What a getParameterNames task stores: writability, no value (the values stay).
    listed = [
        ParamValue("Device.ManagementServer.", None, None, writable=False),
        ParamValue(url, None, None, writable=True),
        ParamValue("Device.ManagementServer.PeriodicInformEnable", None, None, writable=False),
    ]
    await nbi.store.put_parameters(DEVICE, listed, t0 + timedelta(seconds=1))

    status, body = await get(nbi, f"{API}/devices/{quote(DEVICE, safe='')}/parameters")
    assert status == 200
    found = {p["path"]: (p["value"], p["type"], p["writable"]) for p in body}
    assert found == {
        uptime: ("42", "xsd:unsignedInt", None),  # never listed: not known
        "Device.ManagementServer.": (None, None, False),
        url: ("http://acs/", "xsd:string", True),
        "Device.ManagementServer.PeriodicInformEnable": (None, None, False),
    }
    assert [p["path"] for p in body] == sorted(found)
    status, body = await get(nbi, f"{API}/devices/nobody/parameters")
    assert status == 404
    assert "no device 'nobody'" in body["error"]


async def test_cr_stats_by_method(nbi: Nbi) -> None:
    now = datetime.now(UTC)
    await nbi.store.record_inform(inform(DEVICE, now=now))
    await nbi.store.record_inform(inform(OTHER, now=now))
    recent = now - timedelta(minutes=10)
    delivered = {CrMethod.HTTP: [5, 30, 30, 700], CrMethod.UDP: [40, 60], CrMethod.XMPP: [9]}
    for method, latencies in delivered.items():
        for ms in latencies:
            await attempt(nbi.store, DEVICE, method, recent, ms)
    await attempt(nbi.store, OTHER, CrMethod.HTTP, recent, 2000, CrOutcome.UNREACHABLE)
    await attempt(nbi.store, OTHER, CrMethod.UDP, recent, None)
    # Two hours ago: outside the default window of an hour.
    await attempt(nbi.store, OTHER, CrMethod.XMPP, now - timedelta(hours=2), 20)

    status, stats = await get(nbi, f"{API}/cr-stats?window=3600&slices=12")
    assert status == 200
    assert stats["latencyEdgesMs"] == list(LATENCY_EDGES_MS)
    # Everything began ten minutes ago, in the tenth of twelve five-minute slices of the hour:
    # the slices are cut from that one to now, 75 s each, instead of all sitting in the last.
    spanned = datetime.fromisoformat(stats["until"]) - datetime.fromisoformat(stats["since"])
    assert spanned == timedelta(minutes=15)
    assert stats["sliceSeconds"] == 75
    methods = stats["methods"]
    assert list(methods) == ["http", "udp", "xmpp"]
    counts = {m: (s["attempts"], s["delivered"], s["pending"]) for m, s in methods.items()}
    assert counts == {"http": (5, 4, 0), "udp": (3, 2, 1), "xmpp": (1, 1, 0)}
    bins = len(LATENCY_EDGES_MS) + 1
    # Bins: <10, 10-25, 25-50, 50-100, 100-250, 250-500, 500-1000, ...
    assert methods["http"]["histogram"] == [1, 0, 2, 0, 0, 0, 1] + [0] * (bins - 7)
    assert methods["udp"]["histogram"] == [0, 0, 1, 1] + [0] * (bins - 4)
    assert methods["xmpp"]["histogram"] == [1] + [0] * (bins - 1)
    assert {m: s["failed"] for m, s in methods.items()} == {
        "http": {"unreachable": 1},
        "udp": {},
        "xmpp": {},
    }
    assert methods["http"]["medianMs"] == 30.0
    assert methods["udp"]["medianMs"] == 50.0
    for name, finished, ok in (("http", 5, 4), ("udp", 2, 2), ("xmpp", 1, 1)):
        slices = methods[name]["slices"]
        assert len(slices) == 12
        # Ten minutes before the request is just under five minutes into the quarter of an
        # hour drawn, in its fourth slice of 75 s.
        assert slices[3] == {"finished": finished, "delivered": ok}
        assert sum(s["finished"] for s in slices) == finished

    _, wide = await get(nbi, f"{API}/cr-stats?window=86400")
    assert wide["methods"]["xmpp"]["attempts"] == 2  # the one two hours ago too
    assert len(wide["methods"]["xmpp"]["slices"]) == 30


async def test_counts_put_edges_on_the_same_side_on_every_database(store: Store) -> None:
    """A latency on a bin's edge belongs to the bin above (as bisect_right has it); a start on
    a slice's edge to the slice after it; `until` itself to the last slice."""
    since = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
    until = since + timedelta(minutes=10)  # ten slices of a minute
    await store.record_inform(inform(DEVICE, now=since))
    cases = [
        (0, 9.999),  # slice 0, bin 0
        (0, 10),  # bin 1
        (59.999999, 24.999),  # still slice 0, bin 1
        (60, 25),  # slice 1, bin 2
        (600, 30_000),  # the window's last instant: slice 9; the slowest bin
        (-0.000001, 5),  # before the window
        (600.000001, 5),  # after it
    ]
    for at_s, ms in cases:
        await attempt(store, DEVICE, CrMethod.HTTP, since + timedelta(seconds=at_s), ms)
    await attempt(store, DEVICE, CrMethod.UDP, since + timedelta(seconds=1), None)
    await attempt(store, DEVICE, CrMethod.UDP, since, 50, CrOutcome.TIMEOUT)

    found = await store.cr_attempt_counts(since, until, 10, LATENCY_EDGES_MS)
    last = len(LATENCY_EDGES_MS)
    assert sorted(found.counts, key=repr) == sorted(
        [
            CrCount("http", "delivered", 0, 0, 1),
            CrCount("http", "delivered", 0, 1, 2),
            CrCount("http", "delivered", 1, 2, 1),
            CrCount("http", "delivered", 9, last, 1),
            CrCount("udp", None, 0, None, 1),
            CrCount("udp", "timeout", 0, 3, 1),
        ],
        key=repr,
    )
    # Delivered http latencies 9.999, 10, 24.999, 25, 30000: the middle one.
    assert found.median_ms == {"http": 24.999}


async def test_cr_stats_bad_input(nbi: Nbi) -> None:
    for query, message in (
        ("window=0", "window is a whole number from 1 to 7776000, not '0'"),
        ("slices=501", "slices is a whole number from 1 to 500, not '501'"),
        ("window=1e3", "window is a whole number from 1 to 7776000, not '1e3'"),
    ):
        status, body = await get(nbi, f"{API}/cr-stats?{query}")
        assert (status, body) == (400, {"error": message})


async def test_pages_need_no_token_and_the_data_does(start_nbi: StartNbi) -> None:
    nbi = await start_nbi(token="s3cret")
    await nbi.store.record_inform(inform(DEVICE))
    for path, content_type in (
        ("/", "text/html"),
        ("/dashboard/static/app.js", "text/javascript"),
        ("/dashboard/static/charts.js", "text/javascript"),
        ("/dashboard/static/style.css", "text/css"),
    ):
        async with nbi.http.get(nbi.url + path) as response:
            assert response.status == 200, path
            assert response.content_type == content_type
            assert response.headers["Content-Security-Policy"].startswith("default-src 'self'")
            body = await response.text()
    async with nbi.http.get(nbi.url + "/") as response:
        page = await response.text()
    assert '<script src="/dashboard/static/app.js" defer></script>' in page
    assert "http://" not in page and "https://" not in page  # nothing from elsewhere
    assert body  # the style sheet

    for path in (f"{API}/devices/{DEVICE}/sessions", f"{API}/cr-stats", "/devices/"):
        status, refused = await get(nbi, path)
        assert status == 401
        assert "Authorization: Bearer" in refused["error"]
        status, _ = await get(nbi, path, token="wrong")
        assert status == 401
        status, _ = await get(nbi, path, token="s3cret")
        assert status == 200


async def test_only_the_dashboard_files_are_served(nbi: Nbi) -> None:
    for name in ("nope.js", "..%2Fapp.py", "%2E%2E%2F%2E%2E%2Fdashboard.py", "index.htm"):
        status, body = await get(nbi, f"/dashboard/static/{name}")
        assert status == 404, name
        assert "open / for the dashboard" in body["error"] or "no route" in body["error"]
