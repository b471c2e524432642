from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from knock.stun.attributes import (
    AttributeType,
    ChangeRequest,
    encode_address,
    encode_change_request,
)
from knock.stun.codec import (
    MessageType,
    binding_error,
    binding_request,
    binding_response,
    check_integrity,
    encode,
    parse,
)
from knock.stun.service import (
    AuthFailed,
    Binding,
    BindingLearned,
    Counters,
    Handled,
    LookupFailed,
    StunService,
    StunSettings,
)
from knock.vocab import StunOutcome

TXID = bytes(range(16))
CLIENT = ("192.0.2.1", 32853)
SERVER = ("203.0.113.5", 3478)
NOW = 1_700_000_000.0
USER, PASSWORD = "CPE57689", "stunpass"
PASSWORDS = {USER: PASSWORD, "other": "x"}


def service(
    require_auth: bool = False, lookup: Callable[[str], str | None] = PASSWORDS.get, **settings: int
) -> StunService:
    return StunService(lookup, StunSettings(require_auth=require_auth, **settings), SERVER)


def request(
    *, username: str | None = USER, password: str | None = None, binding_change: bool = False
) -> bytes:
    """A TR-111 keep-alive: USERNAME and CONNECTION-REQUEST-BINDING."""
    return binding_request(
        TXID,
        username=username,
        password=password,
        connection_request_binding=True,
        binding_change=binding_change,
    )


def response_to(
    source: tuple[str, int],
    *,
    reflected_from: tuple[str, int] | None = None,
    password: str | None = None,
) -> bytes:
    return binding_response(
        TXID,
        source,
        source=SERVER,
        changed=SERVER,
        reflected_from=reflected_from,
        password=password,
    )


def learned(
    address: tuple[str, int] = CLIENT,
    *,
    changed: bool = True,
    flag: bool = False,
    authenticated: bool = False,
    at: float = NOW,
) -> BindingLearned:
    return BindingLearned(USER, address, changed, flag, authenticated, at)


def test_a_binding_request_is_answered_with_the_source_as_mapped_address() -> None:
    stun = service()
    handled = stun.handle(with_attributes(), CLIENT, NOW)
    assert handled == Handled(response_to(CLIENT), CLIENT, ())
    assert parse(handled.reply or b"").address(AttributeType.MAPPED_ADDRESS) == CLIENT
    assert stun.counters == Counters(requests=1, responses=1)


def test_a_wildcard_bound_server_names_no_address_of_its_own() -> None:
    stun = StunService()
    assert stun.handle(with_attributes(), CLIENT, NOW).reply == binding_response(TXID, CLIENT)


def test_connection_request_binding_is_learned_by_username() -> None:
    stun = service()
    handled = stun.handle(request(), CLIENT, NOW)
    assert handled == Handled(response_to(CLIENT), CLIENT, (learned(),))
    assert stun.bindings == {USER: Binding(CLIENT, NOW)}


def test_the_binding_changes_when_the_source_does() -> None:
    stun = service()
    moved = (CLIENT[0], CLIENT[1] + 1)
    events = [
        stun.handle(request(), CLIENT, NOW).events,
        stun.handle(request(), CLIENT, NOW + 30).events,
        stun.handle(request(binding_change=True), moved, NOW + 60).events,
    ]
    assert events == [
        (learned(),),
        (learned(changed=False, at=NOW + 30),),
        (learned(moved, flag=True, at=NOW + 60),),
    ]
    assert stun.bindings == {USER: Binding(moved, NOW + 60)}


def test_without_connection_request_binding_or_username_nothing_is_learned() -> None:
    stun = service()
    for datagram in (binding_request(TXID, username=USER), request(username=None)):
        assert stun.handle(datagram, CLIENT, NOW).events == ()
    assert stun.bindings == {}
    assert stun.counters == Counters(requests=2, responses=2)


def test_the_same_transaction_id_is_answered_fresh_each_time() -> None:
    stun = service()
    other = ("198.51.100.9", 4000)
    first = stun.handle(request(), CLIENT, NOW)
    second = stun.handle(request(), other, NOW + 1)
    third = stun.handle(request(), CLIENT, NOW + 2)
    assert (first.reply, second.reply, third.reply) == (
        response_to(CLIENT),
        response_to(other),
        response_to(CLIENT),
    )
    assert [e.changed for h in (first, second, third) for e in h.events] == [True, True, True]
    assert stun.counters == Counters(requests=3, responses=3)


def test_a_dual_stack_source_is_seen_as_ipv4() -> None:
    handled = service().handle(request(), ("::ffff:192.0.2.1", 32853), NOW)
    assert handled == Handled(response_to(CLIENT), CLIENT, (learned(),))


def test_ipv6_sources_are_mapped_as_ipv6() -> None:
    client = ("2001:db8::7", 40000)
    signed = with_attributes(password=PASSWORD)  # IPv6 addresses are larger than the request
    assert service().handle(signed, client, NOW).reply == response_to(client, password=PASSWORD)


# --- authentication ---------------------------------------------------------------------------


def test_required_authentication_answers_401_to_unsigned_requests() -> None:
    stun = service(require_auth=True)
    handled = stun.handle(request(), CLIENT, NOW)
    assert handled == Handled(binding_error(TXID, 401), CLIENT, ())
    assert stun.bindings == {}
    assert stun.counters == Counters(requests=1, unauthorized=1)


def test_a_signed_request_is_answered_signed_and_its_binding_authenticated() -> None:
    stun = service(require_auth=True)
    handled = stun.handle(request(password=PASSWORD), CLIENT, NOW)
    assert handled == Handled(
        response_to(CLIENT, password=PASSWORD), CLIENT, (learned(authenticated=True),)
    )
    assert check_integrity(parse(handled.reply or b""), PASSWORD)
    assert stun.counters == Counters(requests=1, responses=1)


@pytest.mark.parametrize("require_auth", [True, False])
def test_forged_integrity_is_refused_and_counted(require_auth: bool) -> None:
    stun = service(require_auth=require_auth)
    handled = stun.handle(request(password="guess"), CLIENT, NOW)
    refused = AuthFailed(USER, CLIENT, StunOutcome.BAD_INTEGRITY, NOW)
    assert handled == Handled(binding_error(TXID, 401), CLIENT, (refused,))
    assert stun.counters == Counters(requests=1, unauthorized=1, integrity_failures=1)
    assert stun.bindings == {}


def test_an_unknown_user_is_refused_when_authentication_is_required() -> None:
    stun = service(require_auth=True)
    handled = stun.handle(request(username="nobody", password=PASSWORD), CLIENT, NOW)
    refused = AuthFailed("nobody", CLIENT, StunOutcome.UNKNOWN_USERNAME, NOW)
    assert handled == Handled(binding_error(TXID, 401), CLIENT, (refused,))
    assert stun.counters == Counters(requests=1, unauthorized=1)


@pytest.mark.parametrize("pad", [b" ", b"\0"])
def test_a_username_padded_with_spaces_or_nuls_is_the_username(pad: bytes) -> None:
    """RFC 3489 §11.2.6 names no padding byte: deployed CPEs pad USERNAME with either."""
    user = USER + "z"  # 9 characters: 3 bytes of padding
    stun = service(require_auth=True, lookup={user: PASSWORD}.get)
    datagram = binding_request(
        TXID, username=user, password=PASSWORD, connection_request_binding=True, username_pad=pad
    )
    assert datagram[20:36] == b"\x00\x06\x00\x0c" + user.encode() + pad * 3
    handled = stun.handle(datagram, CLIENT, NOW)
    assert handled.reply == response_to(CLIENT, password=PASSWORD)
    assert handled.events == (BindingLearned(user, CLIENT, True, False, True, NOW),)


def test_an_unknown_user_is_served_unauthenticated_when_not_required() -> None:
    stun = service()
    handled = stun.handle(request(username="nobody", password=PASSWORD), CLIENT, NOW)
    assert handled.reply == response_to(CLIENT)
    assert handled.events == (BindingLearned("nobody", CLIENT, True, False, False, NOW),)


def test_integrity_without_username_is_refused_when_required() -> None:
    stun = service(require_auth=True)
    handled = stun.handle(request(username=None, password=PASSWORD), CLIENT, NOW)
    assert handled.reply == binding_error(TXID, 401)


def test_a_failing_lookup_answers_500_and_says_why() -> None:
    def broken(username: str) -> str | None:
        raise ConnectionError("store unavailable")

    stun = service(require_auth=True, lookup=broken)
    handled = stun.handle(request(password=PASSWORD), CLIENT, NOW)
    assert handled == Handled(
        binding_error(TXID, 500),
        CLIENT,
        (LookupFailed(USER, "ConnectionError('store unavailable')"),),
    )
    assert stun.counters == Counters(requests=1, server_errors=1)


def test_requiring_authentication_needs_a_lookup() -> None:
    with pytest.raises(ValueError, match="password lookup"):
        StunService(settings=StunSettings(require_auth=True))


# --- attributes Knock does not honour ---------------------------------------------------------


# SOFTWARE (0x8022, optional): makes the request large enough for every full answer below, since
# no unsigned answer is larger than its request.
SOFTWARE = (0x8022, b"Knock test CPE: RFC 3489 client, TR-111 ")


def with_attributes(*attributes: tuple[int, bytes], password: str | None = None) -> bytes:
    username = (AttributeType.USERNAME, USER.encode())
    return encode(
        MessageType.BINDING_REQUEST, TXID, [username, SOFTWARE, *attributes], password=password
    )


def test_unknown_required_attributes_are_answered_420() -> None:
    stun = service()
    datagram = with_attributes((0x0023, bytes(4)), (0x8022, b"soft"), (0x0024, b""))
    handled = stun.handle(datagram, CLIENT, NOW)
    assert handled == Handled(binding_error(TXID, 420, unknown=[0x23, 0x24]), CLIENT, ())
    assert stun.counters == Counters(requests=1, unknown_attributes=1)


def test_integrity_is_checked_before_unknown_attributes() -> None:
    stun = service(require_auth=True)
    assert stun.handle(with_attributes((0x0023, bytes(4))), CLIENT, NOW).reply == (
        binding_error(TXID, 401)
    )
    signed = with_attributes((0x0023, bytes(4)), password=PASSWORD)
    assert stun.handle(signed, CLIENT, NOW).reply == binding_error(TXID, 420, unknown=[0x23])


def test_change_request_flags_are_refused_with_420() -> None:
    stun = service()
    flags = encode_change_request(ChangeRequest(change_port=True))
    handled = stun.handle(with_attributes((AttributeType.CHANGE_REQUEST, flags)), CLIENT, NOW)
    assert handled.reply == binding_error(TXID, 420, unknown=[AttributeType.CHANGE_REQUEST])
    no_flags = with_attributes((AttributeType.CHANGE_REQUEST, bytes(4)))
    assert stun.handle(no_flags, CLIENT, NOW).reply == response_to(CLIENT)


def test_response_address_on_the_same_host_is_honoured() -> None:
    """TR-111's binding-timeout discovery: the reply goes to another port of the same NAT."""
    primary = (CLIENT[0], 40000)
    datagram = with_attributes((AttributeType.RESPONSE_ADDRESS, encode_address(primary)))
    handled = service().handle(datagram, CLIENT, NOW)
    assert handled == Handled(response_to(CLIENT, reflected_from=CLIENT), primary, ())


def test_response_address_elsewhere_is_refused() -> None:
    stun = service()
    victim = ("198.51.100.9", 53)
    datagram = with_attributes((AttributeType.RESPONSE_ADDRESS, encode_address(victim)))
    handled = stun.handle(datagram, CLIENT, NOW)
    reason = "Bad Request: RESPONSE-ADDRESS on another host"
    assert handled == Handled(binding_error(TXID, 400, reason), CLIENT, ())
    assert stun.counters == Counters(requests=1, bad_requests=1)


# --- no amplification -----------------------------------------------------------------------


def test_a_username_that_is_not_utf8_gets_a_400_no_larger_than_the_request() -> None:
    stun = service()
    datagram = encode(
        MessageType.BINDING_REQUEST, TXID, [(AttributeType.USERNAME, b"\xff\xfe\xfd\xfc")]
    )
    handled = stun.handle(datagram, CLIENT, NOW)
    assert len(datagram) == 28
    # The reason is cut to the request's size: the 8-byte ERROR-CODE header leaves no room.
    assert handled == Handled(binding_error(TXID, 400, ""), CLIENT, ())
    assert len(handled.reply or b"") <= len(datagram)
    padded = encode(MessageType.BINDING_REQUEST, TXID, [(AttributeType.USERNAME, b"\xff" * 36)])
    reply = stun.handle(padded, CLIENT, NOW).reply
    assert reply == binding_error(TXID, 400, "Bad Request: USERNAME: not UTF-8")
    assert len(reply) == len(padded) == 60


def test_an_unsigned_answer_leaves_out_what_does_not_fit_or_is_withheld() -> None:
    stun = service()
    assert stun.handle(binding_request(TXID), CLIENT, NOW) == Handled(None, CLIENT, ())
    small = binding_request(TXID, username=USER)  # 32 bytes: MAPPED-ADDRESS alone fits
    assert stun.handle(small, CLIENT, NOW).reply == binding_response(TXID, CLIENT)
    unknown = encode(MessageType.BINDING_REQUEST, TXID, [(0x0023, b"")])  # a 420 needs 36
    assert stun.handle(unknown, CLIENT, NOW) == Handled(None, CLIENT, ())
    assert stun.counters == Counters(requests=3, responses=1, unknown_attributes=1, withheld=2)
    # A verified request is answered in full, whatever its size.
    signed = binding_request(TXID, username=USER, password=PASSWORD)
    assert stun.handle(signed, CLIENT, NOW).reply == response_to(CLIENT, password=PASSWORD)


@given(st.binary(max_size=120))
def test_no_unsigned_answer_is_larger_than_its_request(datagram: bytes) -> None:
    reply = service().handle(datagram, CLIENT, NOW).reply
    assert reply is None or len(reply) <= len(datagram)


# --- bad input --------------------------------------------------------------------------------


def test_a_bad_attribute_value_in_a_request_is_answered_400() -> None:
    stun = service()
    handled = stun.handle(with_attributes((AttributeType.MAPPED_ADDRESS, bytes(4))), CLIENT, NOW)
    reason = "Bad Request: MAPPED-ADDRESS: 4 bytes with family 00"
    assert handled == Handled(binding_error(TXID, 400, reason), CLIENT, ())
    assert stun.counters == Counters(requests=1, bad_requests=1)


@pytest.mark.parametrize(
    "datagram",
    [
        b"",
        request()[:30],
        request() + b"\0\0\0\0",
        b"GET / HTTP/1.1\r\n\r\n" + bytes(8),
        encode(MessageType.BINDING_RESPONSE, TXID, [(AttributeType.MAPPED_ADDRESS, bytes(4))]),
    ],
)
def test_malformed_datagrams_are_dropped_and_counted(datagram: bytes) -> None:
    stun = service()
    assert stun.handle(datagram, CLIENT, NOW) == Handled(None, CLIENT, ())
    assert stun.counters == Counters(malformed=1)
    assert stun.handle(request(), CLIENT, NOW).reply == response_to(CLIENT)


@pytest.mark.parametrize(
    "datagram",
    [
        response_to(CLIENT),
        binding_error(TXID, 401),
        encode(MessageType.SHARED_SECRET_REQUEST, TXID),
        encode(MessageType.BINDING_RESPONSE, TXID, [(0x0023, b"")]),
    ],
)
def test_messages_other_than_binding_requests_are_ignored(datagram: bytes) -> None:
    stun = service()
    assert stun.handle(datagram, CLIENT, NOW) == Handled(None, CLIENT, ())
    assert stun.counters == Counters(ignored=1)


def test_the_binding_table_forgets_the_least_recently_seen() -> None:
    stun = service(max_bindings=2)
    for second, name in enumerate(["a", "b", "a", "c"]):
        stun.handle(request(username=name), CLIENT, NOW + second)
    assert dict(stun.bindings) == {"a": Binding(CLIENT, NOW + 2), "c": Binding(CLIENT, NOW + 3)}


def handled_once(datagram: bytes) -> None:
    stun = service(require_auth=True)
    handled = stun.handle(datagram, CLIENT, NOW)
    counters = stun.counters
    assert counters.requests + counters.malformed + counters.ignored == 1
    assert (handled.reply is None) == (counters.requests == 0)


@given(st.binary(max_size=120))
def test_handle_never_raises_and_counts_every_datagram(datagram: bytes) -> None:
    handled_once(datagram)


@given(st.data())
def test_mutated_signed_requests_never_raise(data: st.DataObject) -> None:
    """Mutations of a valid request reach the integrity and attribute checks."""
    mutated = bytearray(request(password=PASSWORD))
    for _ in range(data.draw(st.integers(1, 3))):
        mutated[data.draw(st.integers(0, len(mutated) - 1))] = data.draw(st.integers(0, 255))
    handled_once(bytes(mutated))
