"""The NBI's reads: devices, their parameters, and deleting a device."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import Exists, and_, exists

from knock.store import Store
from knock.store.errors import UnknownDeviceError
from knock.store.rows import ParamValue
from knock.store.schema import devices, parameters, tasks
from knock.vocab import CrMethod, Lack

from .helpers import DEVICE, OTHER, Record

SOFTWARE = "Device.DeviceInfo.SoftwareVersion"


def has_parameter(path: str, value: str) -> Exists:
    # As the NBI builds it: correlated to the devices row of the enclosing query.
    return exists().where(
        parameters.c.device_id == devices.c.id,
        parameters.c.path == path,
        parameters.c.value == value,
    )


async def test_get_missing_device(store: Store) -> None:
    assert await store.get_device("no-such-device") is None


async def test_find_devices_by_column_and_parameter_sorted_and_paged(
    store: Store, record: Record
) -> None:
    fleet = [
        ("A-PC-1", "Acme", "1.0"),
        ("A-PC-2", "Acme", "2.0"),
        ("A-PC-3", "Acme", "2.0"),
        ("A-PC-4", "Acme", "2.0"),
        ("B-PC-1", "Other", "2.0"),
    ]
    for device_id, manufacturer, version in fleet:
        await record(
            device_id=device_id,
            manufacturer=manufacturer,
            serial_number=device_id[-1],
            params=[ParamValue(SOFTWARE, version, "xsd:string")],
        )
    acme_on_2 = and_(devices.c.manufacturer == "Acme", has_parameter(SOFTWARE, "2.0"))

    found = await store.find_devices(acme_on_2)
    assert [d.id for d in found] == ["A-PC-2", "A-PC-3", "A-PC-4"]

    newest_serial_first = [devices.c.serial_number.desc()]
    page = await store.find_devices(acme_on_2, order_by=newest_serial_first, skip=1, limit=1)
    assert [d.id for d in page] == ["A-PC-3"]
    rest = await store.find_devices(acme_on_2, order_by=newest_serial_first, skip=1)
    assert [d.id for d in rest] == ["A-PC-3", "A-PC-2"]

    assert [d.id for d in await store.find_devices(None, limit=2)] == ["A-PC-1", "A-PC-2"]
    assert await store.find_devices(has_parameter(SOFTWARE, "3.0")) == []


async def test_equal_sort_keys_page_without_overlap(store: Store, record: Record) -> None:
    for n in range(6):
        await record(device_id=f"dev-{n}", manufacturer="Same")
    by_maker = [devices.c.manufacturer]
    pages = [await store.find_devices(None, by_maker, skip=s, limit=2) for s in (0, 2, 4)]
    assert [d.id for page in pages for d in page] == [f"dev-{n}" for n in range(6)]


async def test_get_parameters_of_several_devices_under_prefixes(
    store: Store, record: Record
) -> None:
    await record(
        params=[
            ParamValue("Device.DeviceInfo.SoftwareVersion", "1.0", "xsd:string"),
            ParamValue("Device.DeviceInfo.UpTime", "5", "xsd:unsignedInt"),
            ParamValue("Device.ManagementServer.URL", "http://acs", "xsd:string"),
            ParamValue("Device.WiFi.SSID.1.SSID", "home", "xsd:string"),
        ]
    )
    await record(device_id=OTHER, params=[ParamValue("Device.WiFi.SSID.1.SSID", "x", "xsd:string")])

    found = await store.get_parameters(
        [DEVICE, OTHER, "no-such-device"], prefixes=["Device.DeviceInfo.", "Device.WiFi."]
    )
    assert {d: [p.path for p in ps] for d, ps in found.items()} == {
        DEVICE: [
            "Device.DeviceInfo.SoftwareVersion",
            "Device.DeviceInfo.UpTime",
            "Device.WiFi.SSID.1.SSID",
        ],
        OTHER: ["Device.WiFi.SSID.1.SSID"],
        "no-such-device": [],
    }
    assert len((await store.get_parameters([DEVICE]))[DEVICE]) == 4
    assert await store.get_parameters([]) == {}


async def test_get_parameters_of_more_devices_than_one_statement_takes(
    store: Store, record: Record
) -> None:
    await record(params=[ParamValue(SOFTWARE, "1.0", "xsd:string")])
    asked = [f"absent-{n}" for n in range(2500)] + [DEVICE]
    found = await store.get_parameters(asked)
    assert len(found) == len(asked)
    assert [p.value for p in found[DEVICE]] == ["1.0"]


async def test_delete_device_takes_everything_of_it_along(
    store: Store, record: Record, now: datetime
) -> None:
    await record(params=[ParamValue(SOFTWARE, "1.0", "xsd:string")])
    await record(device_id=OTHER, params=[ParamValue(SOFTWARE, "1.0", "xsd:string")])
    for device_id in (DEVICE, OTHER):
        await store.add_task(device_id, "reboot", {}, now)
        await store.add_cr_attempt(device_id, CrMethod.HTTP, now)

    assert await store.delete_device(DEVICE) is True

    assert await store.get_device(DEVICE) is None
    assert await store.get_parameters([DEVICE]) == {DEVICE: []}
    assert await store.list_sessions(DEVICE) == []
    assert await store.find_tasks(tasks.c.device_id == DEVICE) == []
    assert await store.list_cr_attempts(DEVICE) == []
    # The other device is untouched.
    assert len((await store.get_parameters([OTHER]))[OTHER]) == 1
    assert len(await store.list_sessions(OTHER)) == 1
    assert len(await store.find_tasks(tasks.c.device_id == OTHER)) == 1
    assert len(await store.list_cr_attempts(OTHER)) == 1

    assert await store.delete_device(DEVICE) is False


async def test_what_a_device_lacks_adds_up_and_outlives_a_factory_reset(
    store: Store, record: Record
) -> None:
    await record()
    assert await store.device_lacks(DEVICE) == frozenset()
    await store.add_device_lacks(DEVICE, [Lack.PARTIAL_PATH_VALUES])
    await store.add_device_lacks(DEVICE, [Lack.PARTIAL_PATH_NAMES, Lack.PARTIAL_PATH_VALUES])
    await record(events=("0 BOOTSTRAP",))  # same firmware, whatever was reset
    assert await store.device_lacks(DEVICE) == {"partial-path-values", "partial-path-names"}
    assert await store.device_lacks("nobody") == frozenset()
    with pytest.raises(UnknownDeviceError, match="nobody"):
        await store.add_device_lacks("nobody", [Lack.PARTIAL_PATH_VALUES])
