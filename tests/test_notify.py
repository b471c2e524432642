"""The hub: announcements reach the device's subscribers and those of every device."""

from __future__ import annotations

from knock.notify import ANY_DEVICE, Arrival, Hub, SessionEnded


async def test_a_subscriber_to_any_device_hears_every_device_and_others_only_theirs() -> None:
    hub = Hub()
    with hub.subscribe(ANY_DEVICE) as every, hub.subscribe("dev-a") as only_a:
        first = Arrival("dev-b", ("1 BOOT",), 7, (("Device.ManagementServer.URL", "http://x/"),))
        hub.announce(first)
        hub.announce(SessionEnded("dev-a", 8))
        assert await every.next() == first
        assert await every.next() == SessionEnded("dev-a", 8)
        assert await only_a.next() == SessionEnded("dev-a", 8)
    hub.announce(SessionEnded("dev-a", 9))  # nobody listens any more: dropped, no error
    assert hub._waiters == {}
