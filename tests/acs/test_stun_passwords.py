"""The STUN password lookup sees devices another ACS process provisioned (a real SQLite store)."""

from __future__ import annotations

from knock.acs.stun_passwords import StunPasswords
from knock.store import Store


async def test_a_miss_is_answered_at_once_and_found_in_the_store_for_the_retry(
    store: Store,
) -> None:
    known = {"cached": "pw-0"}
    passwords = StunPasswords(store, known)
    await store.set_stun_credentials("dev-1", "stun-1", "pw-1")  # by another process
    assert passwords.get("cached") == "pw-0"
    assert passwords.get("stun-1") is None
    await passwords.settled()
    assert passwords.get("stun-1") == "pw-1"
    assert known == {"cached": "pw-0", "stun-1": "pw-1"}


async def test_an_unknown_name_is_asked_for_again_only_after_a_while(store: Store) -> None:
    now = [100.0]
    passwords = StunPasswords(store, {}, miss_ttl=30, clock=lambda: now[0])
    assert passwords.get("stun-1") is None
    await passwords.settled()
    await store.set_stun_credentials("dev-1", "stun-1", "pw-1")
    now[0] += 29
    assert passwords.get("stun-1") is None  # the miss is remembered: no store read
    await passwords.settled()
    assert passwords.get("stun-1") is None
    now[0] += 2
    assert passwords.get("stun-1") is None  # asks again
    await passwords.settled()
    assert passwords.get("stun-1") == "pw-1"
