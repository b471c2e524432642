"""A device's STUN outcome reaches its stored row when it changes, and refusals reach the log
once per interval per device and reason (a real SQLite store, a clock the test turns)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from knock.acs.stun_outcomes import StunOutcomes
from knock.ratelog import Repeats
from knock.store import Store
from knock.stun.service import AuthFailed, BindingLearned
from knock.vocab import StunOutcome

AT = 1_700_000_000.0
SOURCE = ("2001:db8::7", 40000)


@pytest.fixture(autouse=True)
async def stun_user(store: Store) -> None:
    await store.set_stun_credentials("dev-1", "stun-1", "pw-1")


def refused(reason: StunOutcome, username: str = "stun-1") -> AuthFailed:
    return AuthFailed(username, SOURCE, reason, AT)


async def test_refusals_are_noted_and_logged_once_per_interval(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "knock.stun")
    clock = [0.0]
    outcomes = StunOutcomes(store, Repeats(60, clock=lambda: clock[0]))
    for _ in range(3):
        outcomes.refused(refused(StunOutcome.BAD_INTEGRITY))
    outcomes.refused(refused(StunOutcome.UNKNOWN_USERNAME, "stun-x"))
    await outcomes.settled()
    device = await store.get_device("dev-1")
    assert device is not None
    assert (device.stun_outcome, device.stun_source, device.stun_since) == (
        "bad-integrity",
        "[2001:db8::7]:40000",
        datetime.fromtimestamp(AT, UTC),
    )
    clock[0] = 61.0
    outcomes.refused(refused(StunOutcome.BAD_INTEGRITY))
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3, lines
    # The unknown username is logged at once; the bad integrity once the store named the device.
    assert lines[0].startswith(
        "device ?: STUN Binding Request from [2001:db8::7]:40000 with username 'stun-x' "
        "refused (401, unknown-username): no device holds this STUN username"
    )
    bad = lines[1:]
    assert bad[0].startswith(
        "device dev-1: STUN Binding Request from [2001:db8::7]:40000 with username 'stun-1' "
        "refused (401, bad-integrity): MESSAGE-INTEGRITY does not match"
    )
    assert bad[0].endswith("provisions it again")
    assert bad[1].endswith("(3 times since the last such line, at most one a 60 s)")


async def test_an_authenticated_binding_is_written_once_not_per_keep_alive(store: Store) -> None:
    outcomes = StunOutcomes(store)
    outcomes.refused(refused(StunOutcome.BAD_INTEGRITY))
    await outcomes.settled()
    writes: list[str] = []
    record = store.record_stun_outcome

    async def counted(username: str, outcome: str, source: str, since: datetime) -> str | None:
        writes.append(outcome)
        return await record(username, outcome, source, since)

    store.record_stun_outcome = counted  # type: ignore[method-assign]
    for n in range(5):
        outcomes.binding(BindingLearned("stun-1", SOURCE, n == 0, False, True, AT + n))
        await outcomes.settled()
    outcomes.binding(BindingLearned("stun-2", SOURCE, True, False, False, AT))  # unsigned
    await outcomes.settled()
    assert writes == ["ok"]
    device = await store.get_device("dev-1")
    assert device is not None and device.stun_outcome == "ok"
