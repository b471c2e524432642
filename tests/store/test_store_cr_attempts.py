"""Connection-request attempts."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from knock.store import Store
from knock.store.errors import UnknownDeviceError
from knock.store.rows import CrAttemptRow, CrTarget, ParamValue, XmppAccountRow
from knock.vocab import CrMethod, CrOutcome, Lack

from .helpers import DEVICE, Record


async def test_attempt_is_recorded_then_finished(
    store: Store, record: Record, now: datetime
) -> None:
    await record()
    attempt_id = await store.add_cr_attempt(DEVICE, CrMethod.UDP, now)
    assert await store.list_cr_attempts(DEVICE) == [
        CrAttemptRow(attempt_id, DEVICE, "udp", now, None, None, None)
    ]

    ended = now + timedelta(seconds=30)
    await store.finish_cr_attempt(attempt_id, CrOutcome.NO_SESSION, ended, "no Inform in 30 s")
    assert await store.list_cr_attempts(DEVICE) == [
        CrAttemptRow(attempt_id, DEVICE, "udp", now, ended, "no-session", "no Inform in 30 s")
    ]


async def test_attempts_are_listed_newest_first_up_to_the_limit(
    store: Store, record: Record, now: datetime
) -> None:
    await record()
    ids = [
        await store.add_cr_attempt(DEVICE, CrMethod.HTTP, now + timedelta(minutes=n))
        for n in range(4)
    ]
    assert [a.id for a in await store.list_cr_attempts(DEVICE, limit=3)] == ids[:0:-1]
    assert await store.list_cr_attempts("no-such-device") == []


async def test_attempt_for_an_unknown_device_says_which(store: Store, now: datetime) -> None:
    with pytest.raises(UnknownDeviceError, match="no-such-device"):
        await store.add_cr_attempt("no-such-device", CrMethod.XMPP, now)


async def test_cr_target_has_credentials_and_management_leaves(
    store: Store, record: Record
) -> None:
    await record(
        params=[
            ParamValue(
                "Device.ManagementServer.ConnectionRequestURL", "http://h:1/p", "xsd:string"
            ),
            ParamValue("Device.ManagementServer.ManageableDevice.1.OUI", "x", "xsd:string"),
            ParamValue("Device.DeviceInfo.SoftwareVersion", "1", "xsd:string"),
        ]
    )
    target = await store.get_cr_target(DEVICE)
    assert target == CrTarget(DEVICE, None, None, {"ConnectionRequestURL": "http://h:1/p"})
    await store.set_cr_credentials(DEVICE, "knock", "s3cret")
    target = await store.get_cr_target(DEVICE)
    assert target is not None and (target.username, target.password) == ("knock", "s3cret")
    assert await store.get_cr_target("NOPE") is None
    with pytest.raises(UnknownDeviceError):
        await store.set_cr_credentials("NOPE", "a", "b")


async def test_cr_target_carries_what_the_device_lacks(store: Store, record: Record) -> None:
    await record()
    target = await store.get_cr_target(DEVICE)
    assert target is not None and target.lacks == frozenset()
    await store.add_device_lacks(DEVICE, [Lack.PARTIAL_PATH_VALUES, Lack.PARTIAL_PATH_NAMES])
    target = await store.get_cr_target(DEVICE)
    assert target is not None and target.lacks == {"partial-path-values", "partial-path-names"}


async def test_provisioned_parameters_and_credentials_are_stored_together(
    store: Store, record: Record, now: datetime
) -> None:
    url = "Device.ManagementServer.ConnectionRequestURL"
    user = "Device.ManagementServer.ConnectionRequestUsername"
    await record(params=[ParamValue(url, "http://h:1/p", "xsd:string")])
    found = [
        ParamValue(url, None, None, writable=False),  # merged: the stored value stays
        ParamValue(user, "knock", "xsd:string", writable=True),
        ParamValue(user, "knock-2", "xsd:string", writable=True),  # the last of a path wins
    ]
    await store.record_provisioned(DEVICE, found, "knock-2", "s3cret", now)
    target = await store.get_cr_target(DEVICE)
    assert target == CrTarget(
        DEVICE,
        "knock-2",
        "s3cret",
        {"ConnectionRequestURL": "http://h:1/p", "ConnectionRequestUsername": "knock-2"},
    )
    stored = await store.get_parameters([DEVICE], [url, user])
    assert [(p.path, p.value, p.type, p.writable) for p in stored[DEVICE]] == [
        (url, "http://h:1/p", "xsd:string", False),
        (user, "knock-2", "xsd:string", True),
    ]
    await store.record_provisioned(DEVICE, [], "knock-3", "pw-3", now)
    target = await store.get_cr_target(DEVICE)
    assert target is not None and (target.username, target.password) == ("knock-3", "pw-3")
    # An unknown device: nothing stored, whether parameters were given or not.
    for given in ([ParamValue(user, "x", "xsd:string")], []):
        with pytest.raises(UnknownDeviceError, match="NOPE"):
            await store.record_provisioned("NOPE", given, "a", "b", now)
    assert await store.get_cr_target("NOPE") is None


async def test_bootstrap_forgets_the_credentials(store: Store, record: Record) -> None:
    await record()
    await store.set_cr_credentials(DEVICE, "knock", "s3cret")
    await store.set_stun_credentials(DEVICE, "stun-1", "stun-pw")
    await record(events=("1 BOOT",))
    assert (await store.get_cr_target(DEVICE)) == CrTarget(DEVICE, "knock", "s3cret", {}, "stun-1")
    await record(events=("0 BOOTSTRAP",))
    assert (await store.get_cr_target(DEVICE)) == CrTarget(DEVICE, None, None, {})
    assert await store.stun_password("stun-1") is None


async def test_stun_credentials_and_the_binding_they_key(
    store: Store, record: Record, now: datetime
) -> None:
    await record()
    await store.set_stun_credentials(DEVICE, "stun-1", "stun-pw")
    assert await store.stun_passwords() == {"stun-1": "stun-pw"}
    assert await store.stun_password("stun-1") == "stun-pw"
    assert await store.stun_password("stun-2") is None
    target = await store.get_cr_target(DEVICE)
    assert target is not None and target.stun_binding is None
    await store.record_binding("stun-1", "203.0.113.1", 40000, now)
    await store.record_binding("stun-1", "203.0.113.1", 40007, now + timedelta(seconds=30))
    await store.record_binding("someone-else", "203.0.113.9", 1, now)
    target = await store.get_cr_target(DEVICE)
    assert target is not None and target.stun_binding == ("203.0.113.1", 40007)
    with pytest.raises(UnknownDeviceError):
        await store.set_stun_credentials("NOPE", "x", "y")
    await store.record_binding("stun-1", "2001:DB8:0:0:0:0:0:A", 40008, now + timedelta(seconds=60))
    target = await store.get_cr_target(DEVICE)
    assert target is not None and target.stun_binding == ("2001:db8::a", 40008)


async def test_the_last_stun_outcome_is_noted_on_the_device_holding_the_username(
    store: Store, record: Record, now: datetime
) -> None:
    await record()
    await store.set_stun_credentials(DEVICE, "stun-1", "stun-pw")
    assert await store.record_stun_outcome("stun-1", "bad-integrity", "[2001:db8::1]:9", now) == (
        DEVICE
    )
    assert await store.record_stun_outcome("stun-2", "ok", "192.0.2.1:9", now) is None
    device = await store.get_device(DEVICE)
    assert device is not None
    assert (device.stun_outcome, device.stun_source, device.stun_since) == (
        "bad-integrity",
        "[2001:db8::1]:9",
        now,
    )


async def test_bootstrap_forgets_stun_credentials_too(store: Store, record: Record) -> None:
    await record()
    await store.set_stun_credentials(DEVICE, "stun-1", "stun-pw")
    await record(events=("0 BOOTSTRAP",))
    assert await store.stun_passwords() == {}


async def test_the_first_process_makes_a_shared_secret_the_others_read_it(
    store: Store, db_url: str
) -> None:
    other = await Store.open(db_url)
    try:
        made = await store.shared_secret("acs_xmpp_password", lambda: "first")
        read = await other.shared_secret("acs_xmpp_password", lambda: "second")
        assert (made, read) == ("first", "first")
        assert await other.shared_secret("another", lambda: "third") == "third"
    finally:
        await other.close()


async def test_xmpp_accounts_are_created_and_replaced(store: Store) -> None:
    first = XmppAccountRow("cpe-1", b"salt", 4096, b"s" * 20, b"k" * 20)
    await store.put_xmpp_account(first)
    assert await store.get_xmpp_account("cpe-1") == first
    second = XmppAccountRow("cpe-1", b"pepper", 8192, b"t" * 20, b"l" * 20)
    await store.put_xmpp_account(second)
    assert await store.get_xmpp_account("cpe-1") == second
    assert await store.get_xmpp_account("cpe-2") is None
