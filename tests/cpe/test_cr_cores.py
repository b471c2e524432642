"""The sans-IO cores of a simulated CPE's UDP and XMPP connection requests and its STUN client."""

from __future__ import annotations

import pytest
from lxml import etree

from knock.connreq.udp import build_udp_cr
from knock.cpe.cr_rate import CrAdmission, CrPolicy
from knock.cpe.stun_agent import RETRANSMIT, Mapped, Send, StunAgent, StunConfig
from knock.cpe.udp_cr import UdpAnswer, UdpCrGate, UdpDeviceFacts
from knock.cpe.xmpp_cr import CONN_REQ_NS, XmppAnswer, XmppCrGate, XmppDeviceFacts, sender_allowed
from knock.stun.codec import binding_error, binding_response, parse

SERVER = ("192.0.2.1", 3478)
CONFIG = StunConfig(SERVER, "stun-user", "stun-pw", min_period=20, max_period=60)


def agent() -> StunAgent:
    return StunAgent(uniform=lambda low, high: low)


def sent(outputs: object) -> bytes:
    assert isinstance(outputs, list)
    [send] = [o for o in outputs if isinstance(o, Send)]
    assert send.to == SERVER
    return send.datagram


def test_stun_agent_signs_after_a_401_and_keeps_the_binding_alive() -> None:
    stun = agent()
    first = parse(sent(stun.configure(CONFIG, 0.0)))
    assert first.username == "stun-user" and first.connection_request_binding
    assert first.integrity is None
    challenge = parse(binding_error(first.txid, 401))
    signed = parse(sent(stun.receive(challenge, 0.1)))
    assert signed.integrity is not None and signed.txid != first.txid
    answer = parse(binding_response(signed.txid, ("198.51.100.7", 40000), password="stun-pw"))
    assert stun.receive(answer, 0.2) == [Mapped(("198.51.100.7", 40000))]
    assert stun.due == pytest.approx(20.2)  # the minimum period, as drawn
    keepalive = parse(sent(stun.tick(20.2)))
    assert keepalive.integrity is not None and not keepalive.binding_change


def test_a_moved_binding_is_reported_and_announced_with_binding_change() -> None:
    stun = agent()
    request = parse(sent(stun.configure(CONFIG, 0.0)))
    stun.receive(parse(binding_response(request.txid, ("198.51.100.7", 40000))), 0.0)
    again = parse(sent(stun.tick(20.0)))
    outputs = stun.receive(parse(binding_response(again.txid, ("198.51.100.7", 40999))), 20.0)
    assert isinstance(outputs, list) and outputs[0] == Mapped(("198.51.100.7", 40999))
    change = parse(sent(outputs))
    assert change.binding_change
    assert stun.receive(parse(binding_response(change.txid, ("198.51.100.7", 40999))), 20.1) == []
    assert not parse(sent(stun.tick(40.1))).binding_change


def test_stun_agent_drops_strays_and_forged_answers_and_retransmits() -> None:
    stun = agent()
    request = parse(sent(stun.configure(CONFIG, 0.0)))
    assert stun.receive(parse(binding_response(b"x" * 16, ("198.51.100.7", 1))), 0.0) == "stray"
    forged = binding_response(request.txid, ("203.0.113.9", 1), password="not-the-password")
    assert stun.receive(parse(forged), 0.0) == "bad-integrity"
    assert stun.mapped is None
    times = [0.0]
    for wait in RETRANSMIT[:-1]:
        times.append(times[-1] + wait)
        assert parse(sent(stun.tick(times[-1]))).txid == request.txid
    assert stun.tick(times[-1] + RETRANSMIT[-1]) == []  # given up until the next period
    assert stun.due == pytest.approx(times[-1] + RETRANSMIT[-1] + 20)


def udp_facts(last: tuple[int, int] | None = None, in_session: bool = False) -> UdpDeviceFacts:
    return UdpDeviceFacts("SN1", "cr-user", "cr-pw", last, in_session, sessions_started=0)


def datagram(ts: int, msg_id: int, password: str = "cr-pw", username: str = "cr-user") -> bytes:
    return build_udp_cr("192.0.2.7", 40000, username, password, ts, msg_id, "CNONCE")


def test_udp_gate_takes_a_signed_new_request_once() -> None:
    gate = UdpCrGate(CrAdmission(CrPolicy(rate_limit=0)))
    decision = gate.decide(datagram(1000, 7), udp_facts(), 0.0)
    assert decision.answer is UdpAnswer.ACCEPTED and decision.request is not None
    assert gate.decide(datagram(1000, 7), udp_facts((1000, 7)), 0.0).answer is (
        UdpAnswer.OLD_TIMESTAMP
    )
    assert gate.decide(datagram(1001, 7), udp_facts((1000, 7)), 0.0).answer is (
        UdpAnswer.REPEATED_ID
    )
    assert gate.decide(datagram(1001, 8, "guess"), udp_facts((1000, 7)), 0.0).request is None


def test_udp_gate_records_a_valid_request_the_busy_rule_refuses() -> None:
    gate = UdpCrGate(CrAdmission(CrPolicy(rate_limit=0)))
    decision = gate.decide(datagram(1000, 7), udp_facts(in_session=True), 0.0)
    assert decision.answer is UdpAnswer.BUSY
    assert decision.request is not None  # its copies must be dropped as replays


@pytest.mark.parametrize(
    ("sender", "allowed", "expected"),
    [
        ("acs@knock.lab/knock", "acs@knock.lab", True),
        ("acs@knock.lab/knock", "acs@knock.lab/knock", True),
        ("acs@knock.lab/other", "acs@knock.lab/knock", False),
        ("acs@knock.lab.evil/knock", "acs@knock.lab", False),
        ("acs@knock.labx/knock", "acs@knock.lab", False),
        ("acsx@knock.lab/knock", "acs@knock.lab", False),
        ("ACS@Knock.Lab/knock", "acs@knock.lab", True),  # JIDs compare normalized
        ("anyone@example.org/x", "", True),
        ("anyone@example.org/x", "a@b.c, anyone@example.org", True),
        ("not a jid@", "acs@knock.lab", False),
    ],
)
def test_allowed_jabber_ids_match_exactly(sender: str, allowed: str, expected: bool) -> None:
    assert sender_allowed(sender, allowed) is expected


def iq(body: str, sender: str = "acs@knock.lab/knock", type_: str = "get") -> etree._Element:
    return etree.fromstring(
        f"<iq xmlns='jabber:client' type='{type_}' id='1' from='{sender}'>{body}</iq>"
    )


def request(username: str = "cr-user", password: str = "cr-pw") -> str:
    return (
        f"<connectionRequest xmlns='{CONN_REQ_NS}'><username>{username}</username>"
        f"<password>{password}</password></connectionRequest>"
    )


XMPP_DEVICE = XmppDeviceFacts("SN1", "cr-user", "cr-pw", "acs@knock.lab", False, 0)


@pytest.mark.parametrize(
    ("stanza", "answer", "condition"),
    [
        (iq(request()), XmppAnswer.ACCEPTED, None),
        (iq(request(), sender="acs@knock.labx/knock"), XmppAnswer.FORBIDDEN_SENDER, "cancel"),
        (iq(request(password="no")), XmppAnswer.BAD_CREDENTIALS, "auth"),
        (iq(request(), type_="set"), XmppAnswer.MALFORMED, "modify"),
        (iq(f"<connectionRequest xmlns='{CONN_REQ_NS}'/>"), XmppAnswer.MALFORMED, "modify"),
        (iq("<query xmlns='jabber:iq:version'/>"), XmppAnswer.UNSUPPORTED, "cancel"),
    ],
)
def test_xmpp_gate_answers(stanza: etree._Element, answer: XmppAnswer, condition: str) -> None:
    gate = XmppCrGate(CrAdmission(CrPolicy(rate_limit=0)))
    taken = gate.decide(stanza, XMPP_DEVICE, 0.0)
    assert taken is answer
    assert (taken.error.type if taken.error else None) == condition


def test_xmpp_and_udp_share_one_rate_limit() -> None:
    admission = CrAdmission(CrPolicy(rate_limit=5))
    assert XmppCrGate(admission).decide(iq(request()), XMPP_DEVICE, 0.0) is XmppAnswer.ACCEPTED
    later = UdpDeviceFacts("SN1", "cr-user", "cr-pw", None, False, sessions_started=1)
    assert UdpCrGate(admission).decide(datagram(1, 1), later, 1.0).answer is (
        UdpAnswer.RATE_LIMITED
    )
