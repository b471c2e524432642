"""Every database keeps the same lengths: text longer than a column is refused before the write
with TooLongError naming the field (PostgreSQL used to fail the statement, SQLite kept it all)."""

from __future__ import annotations

from datetime import datetime

import pytest

from knock.store import Store
from knock.store.limits import TooLongError
from knock.store.rows import ParamValue

from .helpers import DEVICE, Record


async def test_the_longest_serial_number_is_kept(store: Store, record: Record) -> None:
    await record(DEVICE, serial_number="S" * 256, product_class="P" * 256)
    device = await store.get_device(DEVICE)
    assert device is not None and device.serial_number == "S" * 256


@pytest.mark.parametrize(
    ("field", "named"),
    [
        ({"serial_number": "S" * 257}, "DeviceId/SerialNumber is 257 characters long"),
        ({"product_class": "P" * 300}, "DeviceId/ProductClass is 300 characters long"),
        ({"device_id": "D" * 513}, "the device key (OUI-ProductClass-SerialNumber, escaped)"),
        ({"params": [ParamValue("Device." + "X" * 1100, "1", "xsd:int")]}, "the parameter name"),
        ({"params": [ParamValue("Device.X", "1", "xsd:" + "i" * 40)]}, "the type of Device.X"),
    ],
)
async def test_an_inform_with_text_too_long_is_refused_whole(
    store: Store, record: Record, field: dict[str, object], named: str
) -> None:
    with pytest.raises(TooLongError) as raised:
        await record(**field)
    assert named in str(raised.value)
    assert "Knock stores at most" in str(raised.value)
    assert await store.find_devices(None) == []


async def test_parameters_from_a_session_are_held_to_the_same(
    store: Store, record: Record, now: datetime
) -> None:
    await record(DEVICE)
    with pytest.raises(TooLongError, match=r"the parameter name 'Device\.XXX"):
        await store.put_parameters(DEVICE, [ParamValue("Device." + "X" * 1100, "1", None)], now)
    assert await store.get_parameters([DEVICE]) == {DEVICE: []}
