"""Announcements cross between processes' hubs through PostgreSQL LISTEN/NOTIFY (a real server)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from knock.notify import Arrival, Hub, SessionEnded, TaskFinished, decode, encode
from knock.store.engine import driver_url
from knock.store.relay import CHANNEL, Relay

ITEMS = [
    Arrival("dev-1", ("6 CONNECTION REQUEST",), 7),
    TaskFinished(3, "dev-1", "done"),
    SessionEnded("dev-1", 7),
]


def test_announcements_round_trip_through_json() -> None:
    assert decode(encode(ITEMS)) == ITEMS


@pytest.mark.parametrize(
    "rows", ["text", [["arrival", "dev-1"]], [["what", "dev-1", 1]], [["task", "d", "x", "done"]]]
)
def test_unreadable_announcements_are_refused(rows: object) -> None:
    with pytest.raises(ValueError):
        decode(rows)


async def _listening(hub: Hub, device_id: str, count: int) -> asyncio.Task[list[object]]:
    """A task collecting the next *count* announcements for *device_id*, returned once it has
    subscribed (so nothing announced after this returns can be missed)."""
    subscribed = asyncio.Event()

    async def collect() -> list[object]:
        with hub.subscribe(device_id) as sub:
            subscribed.set()
            return [await asyncio.wait_for(sub.next(), 10) for _ in range(count)]

    task = asyncio.create_task(collect())
    await subscribed.wait()
    return task


async def test_a_hub_hears_another_process_and_not_itself_twice(postgres_url: str) -> None:
    here, there = Hub(), Hub()
    relay_here = await Relay.start(postgres_url, here)
    relay_there = await Relay.start(postgres_url, there)
    try:
        heard_there = await _listening(there, "dev-1", 3)
        heard_here = await _listening(here, "dev-1", 4)
        for item in ITEMS:
            here.announce(item)
        assert await heard_there == ITEMS
        there.announce(SessionEnded("dev-1", 8))
        # Its own three once each (not echoed back), then the other process's.
        assert await heard_here == [*ITEMS, SessionEnded("dev-1", 8)]
    finally:
        await relay_here.close()
        await relay_there.close()


async def test_a_batch_larger_than_one_notification_arrives_whole(postgres_url: str) -> None:
    here, there = Hub(), Hub()
    relay_here = await Relay.start(postgres_url, here)
    relay_there = await Relay.start(postgres_url, there)
    try:
        sent = [Arrival("d" * 500, ("2 PERIODIC",), n) for n in range(40)]  # ~22 KB
        heard = await _listening(there, "d" * 500, len(sent))
        for item in sent:
            here.announce(item)
        assert await heard == sent
    finally:
        await relay_here.close()
        await relay_there.close()


async def test_an_unreadable_notification_is_dropped_and_counted(postgres_url: str) -> None:
    hub = Hub()
    relay = await Relay.start(postgres_url, hub)
    dsn = driver_url(postgres_url).set(drivername="postgresql").render_as_string(False)
    other = await asyncpg.connect(dsn)
    try:
        heard = await _listening(hub, "dev-2", 1)
        await other.execute("SELECT pg_notify($1, $2)", CHANNEL, "{not json")
        await other.execute(
            "SELECT pg_notify($1, $2)",
            CHANNEL,
            '{"origin": "x", "items": [["ended", "dev-2", 5]]}',
        )
        assert await heard == [SessionEnded("dev-2", 5)]
        assert relay.dropped == 1
    finally:
        await other.close()
        await relay.close()


def test_a_hub_knows_which_devices_are_in_a_session_elsewhere() -> None:
    hub = Hub()
    hub.deliver(Arrival("dev-1", ("2 PERIODIC",), 7))
    hub.deliver(Arrival("dev-2", ("2 PERIODIC",), 8))
    assert hub.in_remote_session("dev-1") and hub.in_remote_session("dev-2")
    hub.deliver(SessionEnded("dev-1", 6))  # an older session's end, arriving late
    assert hub.in_remote_session("dev-1")
    hub.deliver(SessionEnded("dev-1", 7))
    hub.announce(Arrival("dev-2", ("1 BOOT",), 9))  # the device came to this process
    assert not hub.in_remote_session("dev-1") and not hub.in_remote_session("dev-2")


async def test_the_sessions_of_a_process_that_falls_silent_end_here(postgres_url: str) -> None:
    """A process killed mid-session never announces the session's end: once it misses its
    heartbeats, the others take its sessions for ended and wake whoever waits for that."""
    here, there = Hub(), Hub()
    relay_here = await Relay.start(postgres_url, here, heartbeat=0.1)
    relay_there = await Relay.start(postgres_url, there, heartbeat=0.1)
    try:
        with here.subscribe("dev-9") as sub:
            there.announce(Arrival("dev-9", ("2 PERIODIC",), 41))
            assert await asyncio.wait_for(sub.next(), 10) == Arrival("dev-9", ("2 PERIODIC",), 41)
            assert here.in_remote_session("dev-9")
            await relay_there.close()  # not a word more, as after kill -9
            assert await asyncio.wait_for(sub.next(), 10) == SessionEnded("dev-9", 41)
        assert not here.in_remote_session("dev-9")
    finally:
        await relay_here.close()
