from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from ipaddress import ip_address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from knock.stun.attributes import (
    CRB_VALUE,
    AttributeType,
    ChangeRequest,
    ErrorCode,
    encode_address,
    encode_change_request,
)
from knock.stun.codec import (
    Attribute,
    BadAttribute,
    BadPadding,
    Message,
    MessageType,
    NotStun,
    StunError,
    Truncated,
    UnknownAttributes,
    WrongLength,
    binding_error,
    binding_request,
    binding_response,
    check_integrity,
    encode,
    parse,
)


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


TXID = h("00010203 04050607 08090a0b 0c0d0e0f")
USERNAME_ATTR = h("0006 0008") + b"CPE57689"
CRB_ATTR = h("c001 0014") + b"dslforum.org/TR-111 "
BINDING_CHANGE_ATTR = h("c002 0000")
# RFC 3489 §11.2.8: HMAC-SHA1 keyed "stunpass" over header (length 0x3c, which counts the
# MESSAGE-INTEGRITY attribute) and the two attributes before it, zero-padded to 64 bytes.
SIGNED_PART = h("0001 003c") + TXID + USERNAME_ATTR + CRB_ATTR
MAC = h("03bdc21728586fcd1d241a28ad0daa53a2dbaf50")
REQUEST_SIGNED = SIGNED_PART + h("0008 0014") + MAC

MAPPED = ("192.0.2.1", 32853)
MAPPED_ATTR = h("0001 0008 0001 8055 c0000201")
SERVER = ("203.0.113.5", 3478)


def mac(text: bytes, key: bytes = b"stunpass") -> bytes:
    return hmac.new(key, text, hashlib.sha1).digest()


# --- building: hand-assembled vectors ---------------------------------------------------------


def test_plain_binding_request() -> None:
    assert binding_request(TXID) == h("0001 0000") + TXID


def test_tr111_binding_request() -> None:
    expected = h("0001 0024") + TXID + USERNAME_ATTR + CRB_ATTR
    assert binding_request(TXID, username="CPE57689", connection_request_binding=True) == expected


def test_binding_change_request() -> None:
    expected = h("0001 0028") + TXID + USERNAME_ATTR + CRB_ATTR + BINDING_CHANGE_ATTR
    built = binding_request(
        TXID, username="CPE57689", connection_request_binding=True, binding_change=True
    )
    assert built == expected


def test_username_is_padded_with_nuls_inside_its_length() -> None:
    expected = h("0001 000c") + TXID + h("0006 0008") + b"cpe1x\0\0\0"
    assert binding_request(TXID, username="cpe1x") == expected


def test_message_integrity_follows_the_rfc3489_rule() -> None:
    assert mac(SIGNED_PART + bytes(8)) == MAC  # the vector is what the rule says
    built = binding_request(
        TXID, username="CPE57689", password="stunpass", connection_request_binding=True
    )
    assert built == REQUEST_SIGNED


def test_binding_response_with_mapped_address_only() -> None:
    assert binding_response(TXID, MAPPED) == h("0101 000c") + TXID + MAPPED_ATTR


def test_binding_response_with_every_address() -> None:
    server = h("0001 0d96 cb007105")
    expected = (
        h("0101 0030")
        + TXID
        + MAPPED_ATTR
        + h("0004 0008")
        + server
        + h("0005 0008")
        + server
        + h("000b 0008 0001 8055 c0000201")
    )
    built = binding_response(TXID, MAPPED, source=SERVER, changed=SERVER, reflected_from=MAPPED)
    assert built == expected


def test_signed_binding_response() -> None:
    unsigned = h("0101 0024") + TXID + MAPPED_ATTR
    expected = unsigned + h("0008 0014") + mac(unsigned + bytes(64 - len(unsigned)))
    assert binding_response(TXID, MAPPED, password="stunpass") == expected


def test_ipv6_mapped_address() -> None:
    expected = h("0101 0018") + TXID + h("0001 0014 0002 1f90") + h("20010db8" + "0" * 22 + "07")
    assert binding_response(TXID, ("2001:db8::7", 8080)) == expected


def test_ipv6_response_with_a_server_address_byte_exact_and_read_back() -> None:
    # RFC 5389 §15.1: family 0x02, a 16-byte address; the rest of the framing stays RFC 3489's.
    mapped, server = ("2001:db8::7", 8080), ("2001:db8::1", 3478)
    expected = (
        h("0101 0030")
        + TXID
        + h("0001 0014 0002 1f90 20010db8 00000000 00000000 00000007")
        + h("0004 0014 0002 0d96 20010db8 00000000 00000000 00000001")
    )
    built = binding_response(TXID, mapped, source=server)
    assert built == expected
    message = parse(built)
    assert message.address(AttributeType.MAPPED_ADDRESS) == mapped
    assert message.address(AttributeType.SOURCE_ADDRESS) == server


def test_ipv6_is_read_in_the_form_the_kernel_reports_peers() -> None:
    value = h("0002 1f90") + ip_address("::1.2.3.4").packed
    message = parse(h("0101 0018") + TXID + h("0001 0014") + value)
    assert message.address(AttributeType.MAPPED_ADDRESS) == ("::1.2.3.4", 8080)


def test_ipv4_mapped_ipv6_is_written_as_ipv4() -> None:
    assert binding_response(TXID, ("::ffff:192.0.2.1", 32853)) == binding_response(TXID, MAPPED)


@pytest.mark.parametrize(
    ("code", "error_attr"),
    [
        (400, h("0009 0010 0000 0400") + b"Bad Request "),
        (401, h("0009 0010 0000 0401") + b"Unauthorized"),
        (500, h("0009 0010 0000 0500") + b"Server Error"),
    ],
)
def test_binding_error_responses(code: int, error_attr: bytes) -> None:
    expected = h("0111") + len(error_attr).to_bytes(2, "big") + TXID + error_attr
    assert binding_error(TXID, code) == expected


def test_420_lists_unknown_attributes_repeating_one_to_align() -> None:
    error_attr = h("0009 0018 0000 0414") + b"Unknown Attribute   "
    assert binding_error(TXID, 420, unknown=[0x0023]) == (
        h("0111 0024") + TXID + error_attr + h("000a 0004 0023 0023")
    )
    assert binding_error(TXID, 420, unknown=[0x0023, 0x0024, 0x0025]) == (
        h("0111 0028") + TXID + error_attr + h("000a 0008 0023 0024 0025 0023")
    )


def test_error_reason_may_be_given() -> None:
    built = binding_error(TXID, 400, "Bad Request: no")
    assert built == h("0111 0018") + TXID + h("0009 0014 0000 0400") + b"Bad Request: no "


def test_change_request_value() -> None:
    assert encode_change_request(ChangeRequest(change_ip=True)) == h("00000004")
    assert encode_change_request(ChangeRequest(change_port=True)) == h("00000002")
    assert encode_change_request(ChangeRequest(True, True)) == h("00000006")


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: binding_request(TXID[:15]), "transaction id has 16 bytes"),
        (lambda: binding_error(TXID, 420), "420 needs it"),
        (lambda: binding_error(TXID, 401, unknown=[0x23]), "belongs to a 420"),
        (lambda: binding_error(TXID, 99), "out of range"),
        (lambda: binding_error(TXID, 700), "out of range"),
        (lambda: binding_response(TXID, ("192.0.2.1", 70000)), "port 70000"),
        (lambda: binding_response(TXID, ("cpe.example", 1)), "is not an IP address"),
        (lambda: encode(MessageType.BINDING_REQUEST, TXID, [(0x8001, b"abc")]), "3489 length"),
        (lambda: binding_request(TXID, username="x" * 65532), "do not fit"),
        (lambda: binding_request(TXID, username="x" * 70000), "3489 length"),
    ],
)
def test_builders_refuse_what_cannot_be_sent(build: Callable[[], bytes], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


# --- parsing ----------------------------------------------------------------------------------


def test_parse_tr111_request() -> None:
    message = parse(h("0001 0028") + TXID + USERNAME_ATTR + CRB_ATTR + BINDING_CHANGE_ATTR)
    assert (message.kind, message.txid) == (MessageType.BINDING_REQUEST, TXID)
    assert message.attributes == (
        Attribute(AttributeType.USERNAME, b"CPE57689"),
        Attribute(AttributeType.CONNECTION_REQUEST_BINDING, CRB_VALUE),
        Attribute(AttributeType.BINDING_CHANGE, b""),
    )
    assert message.username == "CPE57689"
    assert message.connection_request_binding and message.binding_change
    assert message.integrity is None and message.integrity_at is None


def test_parse_plain_request_has_nothing() -> None:
    message = parse(h("0001 0000") + TXID)
    assert message == Message(MessageType.BINDING_REQUEST, TXID, (), h("0001 0000") + TXID)
    assert message.username is None and message.error is None
    assert not message.connection_request_binding and not message.binding_change
    assert message.change_request == ChangeRequest()
    assert message.unknown_attributes == ()


def test_parse_signed_request() -> None:
    message = parse(REQUEST_SIGNED)
    assert message.integrity == MAC and message.integrity_at == 56
    assert check_integrity(message, "stunpass")
    assert not check_integrity(message, "stunpasS")


def test_parse_response_addresses() -> None:
    response = binding_response(
        TXID, MAPPED, source=SERVER, changed=("2001:db8::1", 3479), reflected_from=MAPPED
    )
    message = parse(response)
    assert message.kind is MessageType.BINDING_RESPONSE
    assert message.address(AttributeType.MAPPED_ADDRESS) == MAPPED
    assert message.address(AttributeType.SOURCE_ADDRESS) == SERVER
    assert message.address(AttributeType.CHANGED_ADDRESS) == ("2001:db8::1", 3479)
    assert message.address(AttributeType.REFLECTED_FROM) == MAPPED
    assert message.address(AttributeType.RESPONSE_ADDRESS) is None


def test_parse_error_responses() -> None:
    message = parse(binding_error(TXID, 420, unknown=[0x23]))
    assert message.error == ErrorCode(420, "Unknown Attribute")
    assert message.unknown_attributes == (0x23,)
    assert parse(binding_error(TXID, 401)).error == ErrorCode(401, "Unauthorized")


def test_parse_change_request() -> None:
    datagram = h("0001 0008") + TXID + h("0003 0004 00000006")
    assert parse(datagram).change_request == ChangeRequest(True, True)


def test_rfc5389_padding_outside_the_length_is_read() -> None:
    datagram = h("0001 000c") + TXID + h("0006 0005") + b"abcde\x00\x00\x00"
    assert parse(datagram).username == "abcde"


def test_connection_request_binding_counts_by_presence() -> None:
    """Some CPEs send the value without its trailing space; they still ask for a binding."""
    datagram = h("0001 0018") + TXID + h("c001 0013") + b"dslforum.org/TR-111\x00"
    assert parse(datagram).connection_request_binding


def test_first_of_repeated_attributes_counts() -> None:
    datagram = h("0001 0014") + TXID + h("0006 0008") + b"first\0\0\0" + h("0006 0004") + b"2nd\0"
    assert parse(datagram).username == "first"


def test_attributes_after_message_integrity_are_ignored() -> None:
    trailing = h("0023 0004 00000000 8028 0004 01020304")
    datagram = REQUEST_SIGNED[:2] + h("004c") + REQUEST_SIGNED[4:] + trailing
    message = parse(datagram)
    assert [a.type for a in message.attributes] == [0x0006, 0xC001, 0x0008]


def test_optional_unknown_attributes_are_ignored() -> None:
    datagram = h("0001 0008") + TXID + h("8022 0004") + b"knck"
    assert parse(datagram).attributes == (Attribute(0x8022, b"knck"),)


def test_unknown_required_attributes_raise_with_the_whole_message() -> None:
    datagram = (
        h("0001 0020")
        + TXID
        + h("0023 0004 00000000")
        + USERNAME_ATTR
        + h("0024 0000 8022 0000 0023 0000")
    )
    with pytest.raises(UnknownAttributes) as info:
        parse(datagram)
    assert info.value.unknown == (0x0023, 0x0024)
    assert info.value.message.username == "CPE57689"
    assert info.value.message.txid == TXID
    assert "0x0023, 0x0024" in info.value.reason


@pytest.mark.parametrize(
    ("datagram", "error", "reason"),
    [
        (b"", Truncated, "0 bytes, shorter than the 20-byte header"),
        (h("0001 0000") + TXID[:15], Truncated, "19 bytes"),
        (h("0001 0008") + TXID + h("0006 0004"), Truncated, "announces 8 bytes of attributes, 4"),
        (
            h("0001 0008") + TXID + h("0006 0014") + b"abcd",
            Truncated,
            "attribute 0x0006 at offset 20 announces 20 bytes, 4 remain",
        ),
        (
            h("0001 0008") + TXID + h("0006 0005") + b"abcd",
            Truncated,
            "announces 5 bytes, 4 remain",
        ),
        (h("0001 0000") + TXID + b"\0\0\0\0", WrongLength, "announces 0 bytes of attributes, 4"),
        (h("0001 0006") + TXID + h("0006 0002") + b"ab", BadPadding, "6 bytes of attributes"),
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", NotStun, "message type 0x4745"),
        (h("0003 0000") + TXID, NotStun, "message type 0x0003"),
        (h("0011 0000") + TXID, NotStun, "message type 0x0011"),
    ],
)
def test_framing_errors(datagram: bytes, error: type[StunError], reason: str) -> None:
    with pytest.raises(error) as info:
        parse(datagram)
    assert type(info.value) is error
    assert reason in info.value.reason


@pytest.mark.parametrize(
    ("attribute", "reason"),
    [
        (h("0001 0004 0001 0001"), "MAPPED-ADDRESS: 4 bytes with family 01"),
        (h("0002 0008 0003 0001 c0000201"), "RESPONSE-ADDRESS: 8 bytes with family 03"),
        (h("0004 0014 0001 0001") + bytes(16), "SOURCE-ADDRESS: 20 bytes with family 01"),
        (h("0005 0000"), "CHANGED-ADDRESS: 0 bytes with family none"),
        (h("0001 0008 0002 1f90 20010db8"), "MAPPED-ADDRESS: 8 bytes with family 02"),
        (h("0003 0008") + bytes(8), "CHANGE-REQUEST: 8 bytes instead of 4"),
        (h("0006 0004 fffefdfc"), "USERNAME: not UTF-8 (byte 0)"),
        (h("0008 0010") + bytes(16), "MESSAGE-INTEGRITY: 16 bytes instead of 20"),
        (h("0009 0004 0000 0701"), "ERROR-CODE: class 7 number 1"),
        (h("0009 0004 0000 0464"), "ERROR-CODE: class 4 number 100"),
        (h("0009 0000"), "ERROR-CODE: 0 bytes, fewer than 4"),
        (h("000a 0003 002300 00"), "UNKNOWN-ATTRIBUTES: 3 bytes"),
    ],
)
def test_bad_known_attribute_values(attribute: bytes, reason: str) -> None:
    datagram = h("0111") + len(attribute).to_bytes(2, "big") + TXID + attribute
    with pytest.raises(BadAttribute) as info:
        parse(datagram)
    assert info.value.kind is MessageType.BINDING_ERROR_RESPONSE
    assert info.value.txid == TXID
    assert info.value.reason.startswith(reason)


# --- integrity --------------------------------------------------------------------------------


def test_rfc5389_integrity_without_padding_passes() -> None:
    datagram = SIGNED_PART + h("0008 0014") + mac(SIGNED_PART)
    assert check_integrity(parse(datagram), "stunpass")


def test_rfc5389_integrity_with_fingerprint_after_it_passes() -> None:
    """RFC 5389 hashes the header with the length ending at MESSAGE-INTEGRITY."""
    header_as_sent = h("0001 0044") + TXID
    attrs = USERNAME_ATTR + CRB_ATTR
    mac_5389 = mac(SIGNED_PART)  # SIGNED_PART's header says 0x3c: up to MESSAGE-INTEGRITY
    datagram = header_as_sent + attrs + h("0008 0014") + mac_5389 + h("8028 0004 01020304")
    assert check_integrity(parse(datagram), "stunpass")


def test_rfc3489_integrity_with_trailing_attribute_hashes_the_length_as_sent() -> None:
    signed_part = h("0001 0044") + TXID + USERNAME_ATTR + CRB_ATTR
    datagram = signed_part + h("0008 0014") + mac(signed_part + bytes(8)) + h("8028 0004 0000 0000")
    assert check_integrity(parse(datagram), "stunpass")


def test_a_length_that_does_not_count_message_integrity_fails() -> None:
    """The mistake of hashing the message before the attribute was added to the length."""
    before = h("0001 0024") + TXID + USERNAME_ATTR + CRB_ATTR
    for text in (before, before + bytes(64 - len(before))):
        datagram = SIGNED_PART + h("0008 0014") + mac(text)
        assert not check_integrity(parse(datagram), "stunpass")


def test_integrity_is_false_without_the_attribute() -> None:
    assert not check_integrity(parse(binding_request(TXID, username="u")), "stunpass")


# --- round trips and fuzzing ------------------------------------------------------------------

txids = st.binary(min_size=16, max_size=16)
ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).filter(lambda ip: ip.ipv4_mapped is None).map(str)
addresses = st.tuples(ipv4 | ipv6, st.integers(0, 0xFFFF))
# Trailing NULs and spaces are padding (decode_username), so no username that round-trips ends
# in one; test_rfc5389_padding_outside_the_length_is_read and its neighbours cover padding.
usernames = st.text(st.characters(codec="utf-8", exclude_characters="\0"), max_size=40).filter(
    lambda name: not name.endswith(" ")
)


@given(
    txids,
    usernames | st.none(),
    st.text(max_size=20) | st.none(),
    st.booleans(),
    st.booleans(),
)
def test_binding_request_round_trip(
    txid: bytes, username: str | None, password: str | None, crb: bool, change: bool
) -> None:
    datagram = binding_request(
        txid,
        username=username,
        password=password,
        connection_request_binding=crb,
        binding_change=change,
    )
    message = parse(datagram)
    assert (message.kind, message.txid, message.username) == (
        MessageType.BINDING_REQUEST,
        txid,
        username,
    )
    assert (message.connection_request_binding, message.binding_change) == (crb, change)
    assert len(datagram) % 4 == 0
    if password is None:
        assert message.integrity is None
    else:
        assert check_integrity(message, password)
        assert not check_integrity(message, password + "x")


@given(txids, addresses, addresses | st.none(), addresses | st.none())
def test_binding_response_round_trip(
    txid: bytes,
    mapped: tuple[str, int],
    source: tuple[str, int] | None,
    reflected: tuple[str, int] | None,
) -> None:
    message = parse(binding_response(txid, mapped, source=source, reflected_from=reflected))

    def same(kind: AttributeType, address: tuple[str, int] | None) -> bool:
        """Compared as IP addresses: IPv6 has several spellings (::1.2.3.4 is ::102:304)."""
        found = message.address(kind)
        if found is None or address is None:
            return found == address
        return (ip_address(found[0]), found[1]) == (ip_address(address[0]), address[1])

    assert same(AttributeType.MAPPED_ADDRESS, mapped)
    assert same(AttributeType.SOURCE_ADDRESS, source)
    assert same(AttributeType.REFLECTED_FROM, reflected)


@given(
    txids,
    st.integers(100, 699).filter(lambda code: code != 420),
    st.text(st.characters(codec="utf-8", exclude_characters=" \0"), max_size=30),
)
def test_binding_error_round_trip(txid: bytes, code: int, reason: str) -> None:
    message = parse(binding_error(txid, code, reason))
    assert message.kind is MessageType.BINDING_ERROR_RESPONSE
    assert message.error == ErrorCode(code, reason)


@given(txids, st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=9, unique=True))
def test_420_round_trip(txid: bytes, unknown: list[int]) -> None:
    assert parse(binding_error(txid, 420, unknown=unknown)).unknown_attributes == tuple(unknown)


def read_everything(message: Message) -> None:
    """Every accessor works on whatever parse accepted."""
    for kind in (
        AttributeType.MAPPED_ADDRESS,
        AttributeType.RESPONSE_ADDRESS,
        AttributeType.SOURCE_ADDRESS,
        AttributeType.CHANGED_ADDRESS,
        AttributeType.REFLECTED_FROM,
    ):
        message.address(kind)
    _ = (message.username, message.integrity, message.change_request, message.error)
    _ = (message.unknown_attributes, message.connection_request_binding, message.binding_change)
    check_integrity(message, "stunpass")


def parse_or_stun_error(datagram: bytes) -> None:
    try:
        message = parse(datagram)
    except UnknownAttributes as exc:
        read_everything(exc.message)
    except StunError:
        return
    else:
        read_everything(message)


@given(st.binary(max_size=200))
def test_parse_raises_nothing_but_stun_error_on_noise(datagram: bytes) -> None:
    parse_or_stun_error(datagram)


attribute_types = st.sampled_from([*AttributeType, 0x0000, 0x0023, 0x7FFF, 0x8022, 0xFFFF])
attributes = st.lists(st.tuples(attribute_types, st.binary(max_size=24)), max_size=6)


@given(st.sampled_from(list(MessageType)), txids, attributes, st.integers(-4, 4))
def test_parse_raises_nothing_but_stun_error_on_framed_attributes(
    kind: MessageType, txid: bytes, attrs: list[tuple[int, bytes]], skew: int
) -> None:
    """Well-framed messages with arbitrary values reach the value checks, not just framing."""
    body = b"".join(
        t.to_bytes(2, "big") + len(v).to_bytes(2, "big") + v + bytes(-len(v) % 4) for t, v in attrs
    )
    length = max(0, len(body) + skew)
    parse_or_stun_error(kind.to_bytes(2, "big") + length.to_bytes(2, "big") + txid + body)


@given(st.sampled_from([REQUEST_SIGNED, binding_error(TXID, 420, unknown=[1, 2, 3])]), st.data())
def test_parse_raises_nothing_but_stun_error_on_mutations(
    datagram: bytes, data: st.DataObject
) -> None:
    mutated = bytearray(datagram)
    for _ in range(data.draw(st.integers(1, 3))):
        mutated[data.draw(st.integers(0, len(mutated) - 1))] = data.draw(st.integers(0, 255))
    parse_or_stun_error(bytes(mutated))


def test_address_helper_matches_the_response_bytes() -> None:
    assert encode_address(MAPPED) == MAPPED_ATTR[4:]
