"""The ACS's UDP sender: signed datagrams a CPE accepts, and copies that follow the first."""

from __future__ import annotations

import asyncio

from knock.connreq.udp import verify_udp_cr
from knock.connreq.udp_sender import UdpConnectionRequester, parse_address

ADDRESS = ("203.0.113.1", 40000)


async def test_two_requests_within_one_second_are_both_newer_than_the_last() -> None:
    sent: list[bytes] = []
    requester = UdpConnectionRequester(
        lambda datagram, _to: sent.append(datagram),
        lambda _user: None,
        repeat=3,
        interval=0.001,
        clock=lambda: 1_700_000_000.5,  # the clock stands still: both in one second
    )
    first = await requester.send(ADDRESS, "cr-user", "cr-pw")
    second = await requester.send(ADDRESS, "cr-user", "cr-pw")
    assert first.accepted and second.accepted
    await asyncio.gather(*requester._pending)  # the copies
    distinct = list(dict.fromkeys(sent))  # copies carry the same ts and id: identical bytes
    assert [sent.count(d) for d in distinct] == [3, 3]
    one = verify_udp_cr(distinct[0], "cr-user", "cr-pw", None, None)
    two = verify_udp_cr(distinct[1], "cr-user", "cr-pw", one.ts, one.msg_id)
    assert (one.ts, two.ts) == (1_700_000_000, 1_700_000_001)


def test_reported_addresses() -> None:
    assert parse_address("198.51.100.7:40000") == ("198.51.100.7", 40000)
    assert parse_address("[2001:db8::1]:5060") == ("2001:db8::1", 5060)
    # Canonical (RFC 5952) whatever the device wrote: one spelling to send to and show.
    assert parse_address("[2001:DB8:0:0::0001]:5060") == ("2001:db8::1", 5060)
    assert parse_address("[::ffff:198.51.100.7]:5060") == ("198.51.100.7", 5060)
    for bad in ("", "198.51.100.7", "host:0", "host:99999", ":5060", "host:port"):
        assert parse_address(bad) is None
