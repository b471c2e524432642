"""The built-in server's abuse limits, decided in the sans-IO core with the clock passed in:
login throttle per account and per address, equal work for unknown accounts, the input shaper,
whom a device may address, and the session cap."""

from __future__ import annotations

import pytest
from test_xmpp_c2s import (
    CLIENT_HEADER,
    CREDS,
    DOMAIN,
    PASSWORD,
    SASL,
    Wire,
    _b64,
    _sasl_payload,
    plain_auth,
)

from knock.xmpp import sasl
from knock.xmpp.c2s import Bound, Pause, Refused, Route
from knock.xmpp.jid import Jid
from knock.xmpp.limits import Guard, Limits, address_key
from knock.xmpp.sasl import NeedCredentials, SaslCondition, ScramClient
from knock.xmpp.stanzas import StanzaCondition

LIMITS = Limits(
    auth_tries_account=3,
    auth_tries_address=5,
    auth_window=30.0,  # an account regains a try every 10 s, an address every 6 s
    stanza_rate=10.0,
    byte_rate=100_000.0,
    max_sessions=2,
    service_accounts=frozenset({"acs"}),
)


def wire(guard: Guard, peer: str = "192.0.2.1") -> Wire:
    return Wire(peer=peer, guard=guard, limits=guard.limits)


def try_password(
    guard: Guard, user: str, password: str, *, peer: str = "192.0.2.1", now: float = 0.0
) -> bytes:
    """One SCRAM login on a new connection; the server's last answer."""
    w = wire(guard, peer)
    w.send(CLIENT_HEADER, now)
    client = ScramClient(user, password, nonce="cnonce")
    auth = f"<auth xmlns='{SASL}' mechanism='SCRAM-SHA-1'>{_b64(client.first())}</auth>"
    reply = w.send(auth, now)
    if w.events != [NeedCredentials(user)]:
        return reply  # refused before any lookup
    server_first = _sasl_payload(w.answer_lookup(CREDS))
    return w.send(f"<response xmlns='{SASL}'>{_b64(client.final(server_first))}</response>", now)


def throttled(reply: bytes) -> bool:
    return b"<temporary-auth-failure/>" in reply


def test_wrong_passwords_are_throttled_per_account_from_any_address() -> None:
    guard = Guard(LIMITS)
    assert b"<success" in try_password(guard, "cpe-0001", PASSWORD, peer="192.0.2.50")
    for n in range(3):
        reply = try_password(guard, "cpe-0001", "wrong", peer=f"198.51.100.{n}", now=1.0)
        assert b"<not-authorized/>" in reply
    # Even the right password, from a fresh address, waits: the account's tries are spent.
    assert throttled(try_password(guard, "cpe-0001", PASSWORD, peer="203.0.113.9", now=1.0))
    assert b"<success" in try_password(guard, "cpe-0002", PASSWORD, peer="203.0.113.9", now=1.0)
    # The address the device logged in from before is not locked out by others' guesses.
    assert b"<success" in try_password(guard, "cpe-0001", PASSWORD, peer="192.0.2.50", now=1.0)
    # Ten seconds regain one try.
    assert b"<success" in try_password(guard, "cpe-0001", PASSWORD, peer="203.0.113.9", now=11.5)


def test_wrong_passwords_are_throttled_per_address_whatever_the_account() -> None:
    guard = Guard(LIMITS)
    for n in range(5):
        assert not throttled(try_password(guard, f"guess-{n}", "wrong", peer="192.0.2.7"))
    assert throttled(try_password(guard, "cpe-0001", PASSWORD, peer="192.0.2.7"))
    assert b"<success" in try_password(guard, "cpe-0001", PASSWORD, peer="192.0.2.8")
    # An IPv6 client counts by its /64: another address in it is the same client.
    assert address_key("2001:db8:1:2::5") == address_key("2001:db8:1:2:ffff::1")
    assert address_key("::ffff:192.0.2.7") == "192.0.2.7"


def test_a_device_behind_a_shared_address_is_not_locked_out_by_its_neighbours() -> None:
    """A carrier NAT: other accounts' failures empty the address's tries, not the known pair's;
    and loopback (a local proxy, the lab) is no address to count."""
    guard = Guard(LIMITS)
    assert b"<success" in try_password(guard, "cpe-0001", PASSWORD, peer="198.51.100.7")
    for n in range(5):
        try_password(guard, f"neighbour-{n}", "wrong", peer="198.51.100.7")
    assert throttled(try_password(guard, "cpe-0002", PASSWORD, peer="198.51.100.7"))
    assert b"<success" in try_password(guard, "cpe-0001", PASSWORD, peer="198.51.100.7")
    for n in range(10):
        try_password(guard, f"lab-{n}", "wrong", peer="::1")
    assert b"<success" in try_password(guard, "cpe-0002", PASSWORD, peer="::1")
    assert address_key("::1") == "::1"


def test_a_throttled_login_is_answered_alike_for_known_and_unknown_accounts() -> None:
    guard = Guard(LIMITS)
    for n in range(5):
        try_password(guard, f"someone-{n}", "wrong", peer="192.0.2.3")
    known = try_password(guard, "cpe-0001", "wrong", peer="192.0.2.3")
    unknown = try_password(guard, "nobody-at-all", "wrong", peer="192.0.2.3")
    assert throttled(known) and known == unknown


def test_plain_derives_a_key_for_unknown_accounts_as_for_known_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A failure costs the same work whether the account exists: the time does not tell."""
    derivations: list[str] = []
    real = sasl.salted_password

    def counted(password: str, salt: bytes, iterations: int) -> bytes:
        derivations.append(password)
        return real(password, salt, iterations)

    monkeypatch.setattr(sasl, "salted_password", counted)
    for found in (CREDS, None):
        w = Wire(tls=True)
        w.send(CLIENT_HEADER)
        w.send(plain_auth(b"", b"cpe-0001", b"wrong"))
        reply = w.answer_lookup(found)
        assert b"<not-authorized/>" in reply
    assert derivations == ["wrong", "wrong"]


def test_a_device_flooding_stanzas_is_paused_and_the_acs_is_not() -> None:
    guard = Guard(LIMITS)
    device = _tls_login(guard, "cpe-0001")
    ping = "<iq type='get' id='p{}'><ping xmlns='urn:xmpp:ping'/></iq>"
    pings = "".join(ping.format(n) for n in range(30))
    device.send(pings, now=1.0)
    pauses = [e for e in device.events if isinstance(e, Pause)]
    # 30 stanzas against a burst of 20 at 10 a second: one second of debt.
    assert pauses == [Pause(2.0)]
    acs = _tls_login(guard, "acs", "knock-1")
    acs.send(pings, now=1.0)
    assert not [e for e in acs.events if isinstance(e, Pause)]


def _tls_login(guard: Guard, user: str, resource: str = "cwmp") -> Wire:
    w = Wire(tls=True, peer="192.0.2.1", guard=guard, limits=guard.limits)
    w.send(CLIENT_HEADER)
    w.send(plain_auth(b"", user.encode(), PASSWORD.encode()))
    assert w.events == [NeedCredentials(user)]
    w.answer_lookup(CREDS)
    w.send(CLIENT_HEADER)
    bind = f"<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>{resource}</resource></bind>"
    w.send(f"<iq type='set' id='b1'>{bind}</iq>")
    bound = [e for e in w.events if isinstance(e, Bound)]
    if bound:
        guard.sessions.add(bound[0].jid)  # what the adapter does with Bound
    return w


def test_a_device_reaches_the_acs_and_no_other_device() -> None:
    guard = Guard(LIMITS)
    device = _tls_login(guard, "cpe-0001")
    to_device = device.send(
        f"<message to='cpe-0002@{DOMAIN}/cwmp' id='m1'><body>{'x' * 1000}</body></message>"
    )
    assert b"<not-allowed " in to_device and device.events == [Refused(StanzaCondition.NOT_ALLOWED)]
    device.send(f"<iq type='result' to='acs@{DOMAIN}/knock-1' id='cr1'/>")
    assert [type(e) for e in device.events] == [Route]
    assert device.events[0].to == Jid("acs", DOMAIN, "knock-1")  # type: ignore[union-attr]
    acs = _tls_login(guard, "acs", "knock-1")
    acs.send(f"<iq type='get' to='cpe-0001@{DOMAIN}/cwmp' id='cr2'><x xmlns='urn:x'/></iq>")
    assert [type(e) for e in acs.events] == [Route]


def test_a_device_account_has_at_most_max_sessions_resources() -> None:
    guard = Guard(LIMITS)
    for resource in ("one", "two"):
        assert any(isinstance(e, Bound) for e in _tls_login(guard, "cpe-0001", resource).events)
    third = _tls_login(guard, "cpe-0001", "three")
    assert third.events == [Refused(StanzaCondition.RESOURCE_CONSTRAINT)]
    assert guard.sessions.admits(Jid("cpe-0001", DOMAIN, "one"), 2)  # a new login replaces it
    for n in range(4):  # the ACS logs in once per process
        assert any(isinstance(e, Bound) for e in _tls_login(guard, "acs", f"knock-{n}").events)


def test_failures_and_sessions_need_no_limits_on_a_general_server() -> None:
    """Policy.limits None (the tests' and benches' server): no throttle, no cap, no reach rule."""
    w = Wire(tls=True)
    w.send(CLIENT_HEADER)
    w.send(plain_auth(b"", b"cpe-0001", PASSWORD.encode()))
    w.answer_lookup(CREDS)
    w.send(CLIENT_HEADER)
    w.send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
    w.send(f"<message to='cpe-0002@{DOMAIN}/cwmp' id='m1'><body>hi</body></message>")
    assert [type(e) for e in w.events] == [Route]
    assert SaslCondition.TEMPORARY_AUTH_FAILURE == "temporary-auth-failure"
