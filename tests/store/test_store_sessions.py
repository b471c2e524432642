"""The ACS's path: Informs, sessions, parameters."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from knock.store import Store
from knock.store.errors import UnknownDeviceError
from knock.store.rows import ParamValue
from knock.vocab import Event

from .helpers import DEVICE, Record

SOFTWARE = "InternetGatewayDevice.DeviceInfo.SoftwareVersion"
UPTIME = "InternetGatewayDevice.DeviceInfo.UpTime"


async def test_first_inform_registers_the_device(
    store: Store, record: Record, now: datetime
) -> None:
    await record(events=[Event.BOOTSTRAP, Event.BOOT])
    device = await store.get_device(DEVICE)
    assert device is not None
    assert (device.manufacturer, device.oui, device.product_class, device.serial_number) == (
        "Huawei",
        "00D09E",
        "HG8245",
        "SN0001",
    )
    assert device.registered == device.last_inform == device.last_boot == now
    assert device.last_bootstrap == now


async def test_later_inform_updates_the_device_but_not_its_registration(
    store: Store, record: Record, now: datetime
) -> None:
    later = now + timedelta(hours=1)
    await record(events=[Event.BOOT])
    await record(events=[Event.PERIODIC], at=later, manufacturer="Huawei Technologies")
    device = await store.get_device(DEVICE)
    assert device is not None
    assert device.registered == now
    assert device.last_inform == later
    assert device.last_boot == now  # a periodic Inform is no boot
    assert device.last_bootstrap is None
    assert device.manufacturer == "Huawei Technologies"

    await record(events=[Event.BOOT], at=later)
    device = await store.get_device(DEVICE)
    assert device is not None and device.last_boot == later


async def test_inform_opens_a_session_with_its_events(
    store: Store, record: Record, now: datetime
) -> None:
    first = await record(events=[Event.BOOT, Event.M_REBOOT])
    second = await record(at=now + timedelta(minutes=5))
    assert first != second
    latest, earlier = await store.list_sessions(DEVICE)
    assert (latest.id, earlier.id) == (second, first)
    assert earlier.events == ["1 BOOT", "M Reboot"]
    assert earlier.cwmp_version == "urn:dslforum-org:cwmp-1-0"
    assert earlier.device_id == DEVICE
    # The device's second Inform ended the first session: one session per device.
    assert (earlier.started, earlier.ended, earlier.outcome) == (
        now,
        now + timedelta(minutes=5),
        "superseded",
    )
    assert (latest.ended, latest.outcome) == (None, None)


async def test_end_session_records_the_outcome(store: Store, record: Record, now: datetime) -> None:
    session_id = await record()
    await store.end_session(session_id, "ok", now + timedelta(seconds=3))
    (session,) = await store.list_sessions(DEVICE)
    assert (session.ended, session.outcome) == (now + timedelta(seconds=3), "ok")


async def test_list_sessions_stops_at_the_limit(
    store: Store, record: Record, now: datetime
) -> None:
    ids = [await record(at=now + timedelta(minutes=i)) for i in range(5)]
    assert [s.id for s in await store.list_sessions(DEVICE, limit=2)] == ids[:-3:-1]
    assert await store.list_sessions("no-such-device") == []


async def test_inform_stores_its_parameters(store: Store, record: Record, now: datetime) -> None:
    await record(
        params=[
            ParamValue(SOFTWARE, "1.0", "xsd:string"),
            ParamValue(UPTIME, "10", "xsd:unsignedInt"),
            ParamValue(UPTIME, "11", "xsd:unsignedInt"),  # the last one given wins
        ]
    )
    params = (await store.get_parameters([DEVICE]))[DEVICE]
    assert [(p.path, p.value, p.type, p.timestamp) for p in params] == [
        (SOFTWARE, "1.0", "xsd:string", now),
        (UPTIME, "11", "xsd:unsignedInt", now),
    ]


async def test_bootstrap_drops_parameters_but_keeps_tasks(
    store: Store, record: Record, now: datetime
) -> None:
    await record(params=[ParamValue(SOFTWARE, "1.0", "xsd:string")])
    await store.put_parameters(
        DEVICE, [ParamValue("InternetGatewayDevice.X_Vendor.", None, None)], now
    )
    task = await store.add_task(DEVICE, "reboot", {"name": "reboot"}, now)

    await record(events=[Event.BOOTSTRAP], params=[ParamValue(UPTIME, "1", "xsd:unsignedInt")])

    params = (await store.get_parameters([DEVICE]))[DEVICE]
    assert [p.path for p in params] == [UPTIME]
    assert await store.get_task(task.id) == task


async def test_bootstrap_replaces_what_the_device_reports_again(
    store: Store, record: Record, now: datetime
) -> None:
    """A factory-reset device's parameters are as its Inform says, as if none were stored:
    nothing merged from before (writability, the type of an untyped value)."""
    later = now + timedelta(minutes=1)
    await record(params=[ParamValue(SOFTWARE, "1.0", "xsd:string")])
    await store.put_parameters(DEVICE, [ParamValue(SOFTWARE, None, None, writable=False)], now)

    await record(events=[Event.BOOTSTRAP], params=[ParamValue(SOFTWARE, "2.0", None)], at=later)
    (param,) = (await store.get_parameters([DEVICE]))[DEVICE]
    assert (param.path, param.value, param.type, param.writable, param.timestamp) == (
        SOFTWARE,
        "2.0",
        None,
        None,
        later,
    )
    await record(events=[Event.BOOTSTRAP], at=later)
    assert (await store.get_parameters([DEVICE]))[DEVICE] == []


async def test_put_parameters_merges_what_is_given(
    store: Store, record: Record, now: datetime
) -> None:
    later = now + timedelta(minutes=1)
    await record(params=[ParamValue(SOFTWARE, "1.0", "xsd:string")])

    # GetParameterNames: writability only; the value stays.
    await store.put_parameters(DEVICE, [ParamValue(SOFTWARE, None, None, writable=False)], later)
    (param,) = (await store.get_parameters([DEVICE]))[DEVICE]
    assert (param.value, param.type, param.writable, param.timestamp) == (
        "1.0",
        "xsd:string",
        False,
        later,
    )

    # A value without a type keeps the type.
    await store.put_parameters(DEVICE, [ParamValue(SOFTWARE, "2.0", None)], later)
    (param,) = (await store.get_parameters([DEVICE]))[DEVICE]
    assert (param.value, param.type, param.writable) == ("2.0", "xsd:string", False)

    # A typed value is written whole, even when the value is NULL.
    await store.put_parameters(DEVICE, [ParamValue(SOFTWARE, None, "xsd:int")], later)
    (param,) = (await store.get_parameters([DEVICE]))[DEVICE]
    assert (param.value, param.type, param.writable) == (None, "xsd:int", False)


async def test_put_parameters_for_an_unknown_device_says_which(store: Store, now: datetime) -> None:
    with pytest.raises(UnknownDeviceError, match="no-such-device") as caught:
        await store.put_parameters("no-such-device", [ParamValue(SOFTWARE, "1", "xsd:string")], now)
    assert caught.value.device_id == "no-such-device"


async def test_put_no_parameters_is_a_no_op(store: Store, record: Record, now: datetime) -> None:
    await record(params=[ParamValue(SOFTWARE, "1.0", "xsd:string")])
    before = (
        await store.get_device(DEVICE),
        await store.get_parameters([DEVICE, "no-such-device"]),
    )
    later = now + timedelta(hours=1)
    await store.put_parameters(DEVICE, [], later)
    await store.put_parameters("no-such-device", [], later)  # no row to check, so no error
    after = (await store.get_device(DEVICE), await store.get_parameters([DEVICE, "no-such-device"]))
    assert after == before
    assert await store.get_device("no-such-device") is None
    assert [p.path for p in before[1][DEVICE]] == [SOFTWARE]


async def test_delete_parameters_under_takes_the_prefix_literally(
    store: Store, record: Record
) -> None:
    paths = [
        "Device.WiFi.SSID.1.SSID",
        "Device.WiFi.SSID.1.Enable",
        "Device.WiFi.SSID.10.SSID",
        "Device.WiFi.SSIDX1.SSID",  # "_" is no wildcard here
        "Device.wifi.SSID.1.SSID",  # paths are case-sensitive
        "Device.X_A%B.Y",
        "Device.X_AxB.Y",  # nor is "%"
    ]
    await record(params=[ParamValue(p, "v", "xsd:string") for p in paths])
    assert await store.delete_parameters_under(DEVICE, "Device.WiFi.SSID.1.") == 2
    assert await store.delete_parameters_under(DEVICE, "Device.X_A%B.") == 1
    assert await store.delete_parameters_under(DEVICE, "Device.WiFi.SSID_1.") == 0
    remaining = [p.path for p in (await store.get_parameters([DEVICE]))[DEVICE]]
    assert remaining == sorted(set(paths) - {paths[0], paths[1], paths[5]})


async def test_digest_nonce_counts_only_go_up_and_expire(store: Store) -> None:
    """What keeps a replayed Digest answer out when several processes share the nonce key."""
    assert await store.advance_digest_nonce("n1", 1000, 1)
    assert not await store.advance_digest_nonce("n1", 1000, 1)  # a replay
    assert await store.advance_digest_nonce("n1", 1000, 2)
    assert not await store.advance_digest_nonce("n1", 1000, 2)
    assert await store.advance_digest_nonce("n2", 2000, 1)
    # Nonces issued before 1500 are forgotten (they are stale anyway); n2 keeps its count.
    assert await store.advance_digest_nonce("n3", 2000, 1, forget_before=1500)
    assert await store.advance_digest_nonce("n1", 1000, 1)
    assert not await store.advance_digest_nonce("n2", 2000, 1)
