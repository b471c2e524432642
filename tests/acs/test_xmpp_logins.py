"""XmppLogins: which device a refusal is pinned on, the log line once a minute with a count,
and each device's last login in a real SQLite store."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from knock.acs.xmpp_accounts import put_account
from knock.acs.xmpp_logins import XmppLogins
from knock.store import Store
from knock.store.rows import InformRecord
from knock.xmpp.server import LoginEvent, LoginOutcome


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(f"sqlite:///{tmp_path / 'k.db'}")
    for device in ("DEV-A", "DEV-B"):
        await opened.record_inform(
            InformRecord(device, "m", "o", "p", device, ["0 BOOTSTRAP"], [], "", datetime.now(UTC))
        )
    yield opened
    await opened.close()


def refused(address: str) -> LoginEvent:
    return LoginEvent(address, LoginOutcome.TLS_REFUSED, detail="unknown-ca")


async def test_a_refusal_is_pinned_on_the_one_device_informing_from_its_address(
    store: Store,
) -> None:
    logins = XmppLogins(store)
    logins.seen_at("DEV-A", "192.0.2.1")
    logins.seen_at("DEV-A", "192.0.2.9")
    logins.seen_at("DEV-B", "192.0.2.9")  # a shared NAT address names no one
    logins.event(refused("192.0.2.1"))
    logins.event(refused("192.0.2.9"))
    await logins.written()
    a, b = await store.get_device("DEV-A"), await store.get_device("DEV-B")
    assert a is not None and b is not None
    assert (a.xmpp_login_outcome, a.xmpp_login_detail, a.xmpp_login_source) == (
        "tls-refused",
        "unknown-ca",
        "192.0.2.1",
    )
    assert b.xmpp_login_since is None


async def test_a_login_is_stored_on_its_accounts_device_when_the_outcome_changes(
    store: Store,
) -> None:
    await put_account(store, "acct-a", "pw", "DEV-A")
    await put_account(store, "acs", "pw")  # the ACS's own: no device
    logins = XmppLogins(store)
    logins.seen_at("DEV-A", "192.0.2.1")
    logins.event(refused("192.0.2.1"))
    await logins.written()
    first = await store.get_device("DEV-A")
    assert first is not None and first.xmpp_login_since is not None
    logins.event(refused("192.0.2.1"))  # the same outcome again: no write
    await logins.written()
    device = await store.get_device("DEV-A")
    assert device is not None and device.xmpp_login_since == first.xmpp_login_since
    logins.event(LoginEvent("192.0.2.1", LoginOutcome.OK, "acct-a"))
    logins.event(LoginEvent("127.0.0.1", LoginOutcome.OK, "acs"))
    await logins.written()
    device = await store.get_device("DEV-A")
    assert device is not None and (device.xmpp_login_outcome, device.xmpp_login_detail) == (
        "ok",
        "",
    )


async def test_refusals_are_logged_once_a_minute_with_a_count_of_the_others(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="knock.xmpp")
    clock = Clock()
    logins = XmppLogins(store, clock=clock)
    logins.seen_at("DEV-A", "192.0.2.1")
    for _ in range(3):
        logins.event(refused("192.0.2.1"))
        clock.now += 10
    logins.event(refused("198.51.100.7"))  # 30 s after the first: not logged
    clock.now += 35
    logins.event(refused("198.51.100.7"))
    await logins.written()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert lines[0].startswith("device DEV-A at 192.0.2.1 refused the XMPP server's certificate")
    assert lines[1].startswith(
        "a client at 198.51.100.7 refused the XMPP server's certificate (TLS alert unknown-ca) "
        "(3 more refusals in the last 65 s): "
    )
