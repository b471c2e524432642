from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from knock.connreq.udp import (
    MAX_DATAGRAM,
    Reason,
    UdpCr,
    UdpCrRejected,
    build_udp_cr,
    signature,
    verify_udp_cr,
)

# The test vector of TR-069 Annex G, as PROTOCOLS.md §3 gives it.
PASSWORD = "s3cret"
TS = 1120673700
MSG_ID = 1234
USERNAME = "CPE57689"
CNONCE = "XTGRWIPC6D3IPXS3"
SIG = "1f412f601f86a31f047ce1c0d2986506accd0f39"
EXAMPLE = (
    b"GET http://198.51.100.7:40000?ts=1120673700&id=1234&un=CPE57689&cn=XTGRWIPC6D3IPXS3"
    b"&sig=1f412f601f86a31f047ce1c0d2986506accd0f39 HTTP/1.1\r\n"
    b"Host: 198.51.100.7:40000\r\n"
    b"\r\n"
)
ACCEPTED = UdpCr("198.51.100.7", 40000, TS, MSG_ID, USERNAME, CNONCE, SIG)


def example(**fields: str) -> bytes:
    """The example datagram with some query fields replaced."""
    query = {"ts": str(TS), "id": str(MSG_ID), "un": USERNAME, "cn": CNONCE, "sig": SIG} | fields
    text = "&".join(f"{k}={v}" for k, v in query.items())
    return f"GET http://198.51.100.7:40000?{text} HTTP/1.1\r\nHost: x\r\n\r\n".encode()


def signed(ts: int, msg_id: int, username: str = USERNAME) -> bytes:
    return build_udp_cr("198.51.100.7", 40000, username, PASSWORD, ts, msg_id, CNONCE)


def rejected(datagram: bytes, last_ts: int | None = None, last_id: int | None = None) -> Reason:
    with pytest.raises(UdpCrRejected) as info:
        verify_udp_cr(datagram, USERNAME, PASSWORD, last_ts, last_id)
    return info.value.reason


def test_signature_matches_the_annex_g_vector() -> None:
    assert signature(PASSWORD, TS, MSG_ID, USERNAME, CNONCE) == SIG


def test_build_writes_the_example_datagram_byte_for_byte() -> None:
    assert signed(TS, MSG_ID) == EXAMPLE


def test_verify_accepts_the_example_and_returns_what_the_caller_records() -> None:
    assert verify_udp_cr(EXAMPLE, USERNAME, PASSWORD, None, None) == ACCEPTED
    assert verify_udp_cr(EXAMPLE, USERNAME, PASSWORD, TS - 1, MSG_ID + 1) == ACCEPTED


def test_signature_is_compared_without_regard_to_case() -> None:
    assert verify_udp_cr(example(sig=SIG.upper()), USERNAME, PASSWORD, None, None) == ACCEPTED


def test_ipv6_host_is_bracketed() -> None:
    datagram = build_udp_cr("2001:db8::7", 40000, USERNAME, PASSWORD, TS, MSG_ID, CNONCE)
    assert datagram.startswith(b"GET http://[2001:db8::7]:40000?ts=")
    assert b"\r\nHost: [2001:db8::7]:40000\r\n\r\n" in datagram
    cr = verify_udp_cr(datagram, USERNAME, PASSWORD, None, None)
    assert (cr.host, cr.port, cr.signature) == ("2001:db8::7", 40000, SIG)


def test_reserved_characters_are_percent_encoded_and_signed_decoded() -> None:
    username, cnonce = "a&b=c+d e%", "n/ö?"
    datagram = build_udp_cr("cpe.example", 7547, username, PASSWORD, TS, MSG_ID, cnonce)
    assert b"un=a%26b%3Dc%2Bd%20e%25&cn=n%2F%C3%B6%3F&sig=" in datagram
    cr = verify_udp_cr(datagram, username, PASSWORD, None, None)
    assert (cr.username, cr.cnonce) == (username, cnonce)
    assert cr.signature == signature(PASSWORD, TS, MSG_ID, username, cnonce)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("x\r\nEvil: 1", 1), "neither an IP address nor a host name"),
        (("", 1), "neither an IP address nor a host name"),
        (("cpe.example", 0), "port 0 out of range"),
        (("cpe.example", 65536), "port 65536 out of range"),
    ],
)
def test_build_refuses_what_would_make_a_broken_datagram(
    args: tuple[str, int], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        build_udp_cr(*args, USERNAME, PASSWORD, TS, MSG_ID, CNONCE)


def test_build_refuses_negative_numbers() -> None:
    with pytest.raises(ValueError, match="unsigned"):
        build_udp_cr("cpe.example", 1, USERNAME, PASSWORD, -1, MSG_ID, CNONCE)


# --- the Annex G rules ------------------------------------------------------------------------


def test_wrong_username() -> None:
    other = build_udp_cr("198.51.100.7", 40000, "CPE00000", PASSWORD, TS, MSG_ID, CNONCE)
    assert rejected(other) is Reason.WRONG_USERNAME


def test_bad_signature() -> None:
    assert rejected(example(sig="0" * 40)) is Reason.BAD_SIGNATURE
    assert rejected(example(cn="XTGRWIPC6D3IPXS4")) is Reason.BAD_SIGNATURE
    other_password = build_udp_cr("198.51.100.7", 40000, USERNAME, "other", TS, MSG_ID, CNONCE)
    assert rejected(other_password) is Reason.BAD_SIGNATURE


def test_timestamp_must_be_newer_than_the_last_accepted() -> None:
    assert rejected(EXAMPLE, last_ts=TS, last_id=1) is Reason.OLD_TIMESTAMP
    assert rejected(EXAMPLE, last_ts=TS + 1, last_id=1) is Reason.OLD_TIMESTAMP


def test_id_must_differ_from_the_last_accepted() -> None:
    assert rejected(EXAMPLE, last_ts=TS - 1, last_id=MSG_ID) is Reason.REPEATED_ID
    assert rejected(EXAMPLE, last_ts=None, last_id=MSG_ID) is Reason.REPEATED_ID


def test_a_forged_replay_is_reported_as_a_forgery() -> None:
    assert rejected(example(sig="f" * 40), last_ts=TS, last_id=MSG_ID) is Reason.BAD_SIGNATURE


def test_the_acs_repeats_and_the_cpe_acts_once() -> None:
    """The caller records ts and id only on acceptance; the repeats are then dropped."""
    last_ts, last_id, acted = None, None, 0
    for datagram in [signed(TS, 1)] * 3 + [signed(TS + 5, 2)] * 3 + [signed(TS + 6, 2)]:
        try:
            cr = verify_udp_cr(datagram, USERNAME, PASSWORD, last_ts, last_id)
        except UdpCrRejected:
            continue
        last_ts, last_id, acted = cr.ts, cr.msg_id, acted + 1
    assert (acted, last_ts, last_id) == (2, TS + 5, 2)


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("datagram", "detail"),
    [
        (b"", "the first line is not"),
        (b"\x00\x01\x00\x00" + bytes(16), "the first line is not"),
        (EXAMPLE[:40], "the first line is not"),
        (EXAMPLE.replace(b"GET", b"POST"), "the first line is not"),
        (EXAMPLE.replace(b"HTTP/1.1", b"HTTP/2"), "the first line is not"),
        (EXAMPLE.replace(b"http://", b"https://"), "not http://host:port"),
        (EXAMPLE.replace(b":40000?", b"?"), "not http://host:port"),
        (EXAMPLE.replace(b":40000?", b":40000/cwmp?"), "not http://host:port"),
        (EXAMPLE.replace(b":40000?", b":99999?"), "bad URI"),
        (EXAMPLE.replace(b"GET http://198.51.100.7", b"GET http://"), "not http://host:port"),
        (EXAMPLE.replace(b"ts=1120673700&", b""), "lacks ts"),
        (EXAMPLE.replace(b"&sig=", b"&x="), "lacks sig"),
        (example(ts="-1"), "not an unsigned decimal"),
        (example(ts="1e9"), "not an unsigned decimal"),
        (example(id="1" * 21), "not an unsigned decimal"),
        (example(id="%D9%A1%D9%A2"), "not an unsigned decimal"),
        (example(sig=SIG[:-1]), "not 40 hex digits"),
        (example(sig=SIG[:-1] + "g"), "not 40 hex digits"),
        (EXAMPLE.replace(b"&id=1234", b"&id=1234&id=1235"), "id given twice"),
        (EXAMPLE.replace(b"&cn=XTGRWIPC6D3IPXS3", b"&cn"), "cn without a value"),
        (example(un="%C3%28"), "un is not percent-encoded UTF-8"),
        (EXAMPLE.replace(b"CPE", b"\xc3\xa9PE"), "not ASCII"),
        (EXAMPLE + b" " * (MAX_DATAGRAM - len(EXAMPLE) + 1), f"more than {MAX_DATAGRAM}"),
        (b"\xff" * 65507, "65507 bytes, more than"),
    ],
)
def test_malformed_datagrams(datagram: bytes, detail: str) -> None:
    with pytest.raises(UdpCrRejected) as info:
        verify_udp_cr(datagram, USERNAME, PASSWORD, None, None)
    assert info.value.reason is Reason.MALFORMED
    assert detail in info.value.detail


def test_liberal_in_what_the_signature_does_not_cover() -> None:
    """Bare LF, no headers, a '/' path and fields in another order or with extras all carry the
    same signed values."""
    variants = [
        EXAMPLE.replace(b"\r\n", b"\n"),
        EXAMPLE.partition(b"\r\n")[0],
        EXAMPLE.replace(b":40000?", b":40000/?"),
        EXAMPLE.replace(b"?ts=1120673700&id=1234", b"?id=1234&x=&ts=1120673700"),
    ]
    for datagram in variants:
        assert verify_udp_cr(datagram, USERNAME, PASSWORD, None, None) == ACCEPTED


@given(st.binary(max_size=600))
def test_garbage_is_only_ever_rejected(datagram: bytes) -> None:
    with pytest.raises(UdpCrRejected):
        verify_udp_cr(datagram, USERNAME, PASSWORD, None, None)


@given(st.data())
def test_mutations_of_a_valid_datagram_never_crash(data: st.DataObject) -> None:
    datagram = bytearray(EXAMPLE)
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, len(datagram) - 1))
        datagram[index] = data.draw(st.integers(0, 255))
    try:
        cr = verify_udp_cr(bytes(datagram), USERNAME, PASSWORD, None, None)
    except UdpCrRejected:
        return
    # Only bytes outside the signed request line, or the letter case of sig, may change.
    assert (cr.ts, cr.msg_id, cr.username, cr.cnonce, cr.signature) == (
        TS,
        MSG_ID,
        USERNAME,
        CNONCE,
        SIG,
    )


@given(
    ts=st.integers(0, 2**40),
    msg_id=st.integers(0, 2**32),
    username=st.text(min_size=0, max_size=64),
    cnonce=st.text(min_size=1, max_size=32),
    password=st.text(max_size=32),
)
def test_round_trip(ts: int, msg_id: int, username: str, cnonce: str, password: str) -> None:
    datagram = build_udp_cr("cpe.example", 7547, username, password, ts, msg_id, cnonce)
    cr = verify_udp_cr(datagram, username, password, None, None)
    assert (cr.ts, cr.msg_id, cr.username, cr.cnonce) == (ts, msg_id, username, cnonce)
