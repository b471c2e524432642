"""Each defect switch of the simulator breaks its one requirement, and a correct device keeps it:
asserted on the cores' answers, the bytes they send and the device's pending events."""

from __future__ import annotations

import json
from dataclasses import replace

import aiohttp
import pytest
from cpe_support import MakeCpe
from lxml import etree
from test_cr_cores import CONFIG, XMPP_DEVICE, datagram, iq, request, sent, udp_facts
from test_cr_http import DEVICE, GET, answer, authenticated, gate
from typer.testing import CliRunner

from knock.auth import basic_authorization
from knock.cli import app
from knock.cpe.cr_http import CrAnswer, CrDecision, CrPolicy, CrRequest
from knock.cpe.cr_listener import CrListener
from knock.cpe.cr_rate import CrAdmission
from knock.cpe.defects import Defect, parse_defects
from knock.cpe.fleet_config import FleetConfig
from knock.cpe.stun_agent import Mapped, StunAgent
from knock.cpe.switches import SwitchError
from knock.cpe.udp_cr import UdpAnswer, UdpCrGate, UdpDeviceFacts
from knock.cpe.xmpp_cr import Reply, XmppCrGate, reply
from knock.cwmp.rpcs import EventStruct
from knock.stun.codec import binding_error, binding_response, parse
from knock.vocab import Event
from knock.xmpp.client import StanzaError

NOW = 1_700_000_000.0
MS = "Device.ManagementServer."


def test_defect_names_parse_and_unknown_ones_are_listed() -> None:
    assert parse_defects(["udp-replay", "UDP-Replay", " no-cr-event"]) == {
        Defect.UDP_REPLAY,
        Defect.NO_CR_EVENT,
    }
    with pytest.raises(SwitchError, match=r"'udp-reply' is not a defect; name one of .*udp-replay"):
        parse_defects(["udp-reply"])


# --- HTTP connection requests ---------------------------------------------------------------


def test_accept_any_cr_auth_opens_a_session_without_credentials_or_with_wrong_ones() -> None:
    g = gate()
    assert g.decide(GET, DEVICE, NOW).status == 401
    broken = replace(DEVICE, defects=frozenset({Defect.ACCEPT_ANY_CR_AUTH}))
    assert g.decide(GET, broken, NOW) == CrDecision(CrAnswer.ACCEPTED, 200)
    wrong = answer(g.decide(GET, DEVICE, NOW), password="guess")
    assert g.decide(wrong, DEVICE, NOW + 10).status == 401
    assert gate().decide(wrong, broken, NOW + 10).answer is CrAnswer.ACCEPTED


def test_basic_accepted_takes_the_right_password_in_basic_and_only_that() -> None:
    g = gate(CrPolicy(rate_limit=0))
    basic = CrRequest("GET", GET.target, basic_authorization("cpe", "s3cret"))
    assert g.decide(basic, DEVICE, NOW).answer is CrAnswer.MALFORMED
    broken = replace(DEVICE, defects=frozenset({Defect.BASIC_ACCEPTED}))
    assert g.decide(basic, broken, NOW) == CrDecision(CrAnswer.ACCEPTED, 200)
    guess = CrRequest("GET", GET.target, basic_authorization("cpe", "guess"))
    assert g.decide(guess, broken, NOW).status == 401


def test_no_503_when_busy_answers_200_during_a_session_and_asks_for_none() -> None:
    busy = replace(DEVICE, in_session=True)
    assert authenticated(gate(), busy).status == 503
    broken = replace(busy, defects=frozenset({Defect.NO_503_WHEN_BUSY}))
    decision = authenticated(gate(), broken)
    assert decision == CrDecision(CrAnswer.IGNORED, 200)
    assert not decision.answer.opens_session


def test_no_rate_limit_lets_every_request_open_a_session() -> None:
    g = gate(CrPolicy(rate_limit=30))
    assert authenticated(g).answer is CrAnswer.ACCEPTED
    later = replace(DEVICE, sessions_started=DEVICE.sessions_started + 1)
    assert authenticated(g, later, NOW + 1).status == 503
    broken = replace(later, defects=frozenset({Defect.NO_RATE_LIMIT}))
    assert authenticated(g, broken, NOW + 2).answer is CrAnswer.ACCEPTED


async def test_cr_url_any_path_serves_other_paths_and_https_cr_url_reports_https(
    make_cpe: MakeCpe,
) -> None:
    listener = CrListener()
    await listener.start()
    try:
        correct = make_cpe("SN-OK")
        url = listener.attach(correct)
        assert url.startswith("http://") and correct.model.get(MS + "ConnectionRequestURL") == url
        async with aiohttp.ClientSession() as http:
            async with http.get(listener.base_url + "/elsewhere") as response:
                assert response.status == 404
            any_path = make_cpe("SN-ANY", defects=frozenset({Defect.CR_URL_ANY_PATH}))
            listener.attach(any_path)
            async with http.get(listener.base_url + "/elsewhere") as response:
                assert response.status == 401  # the defective device challenges it as its own
            async with http.get(url) as response:
                assert response.status == 401  # the correct device keeps its own path
        https = make_cpe("SN-TLS", defects=frozenset({Defect.HTTPS_CR_URL}))
        reported = listener.attach(https)
        assert reported == "https" + listener.base_url.removeprefix("http") + reported[-25:]
        assert https.model.get(MS + "ConnectionRequestURL") == reported
    finally:
        await listener.close()


def test_no_cr_event_opens_a_session_without_6_connection_request(make_cpe: MakeCpe) -> None:
    correct, broken = make_cpe("SN-OK"), make_cpe("SN-NO", defects={Defect.NO_CR_EVENT})
    correct.request_session(Event.CONNECTION_REQUEST)
    broken.request_session(Event.CONNECTION_REQUEST)
    assert EventStruct(Event.CONNECTION_REQUEST) in correct.state.events
    assert EventStruct(Event.CONNECTION_REQUEST) not in broken.state.events
    assert EventStruct(Event.PERIODIC) in broken.state.events


@pytest.mark.parametrize(
    ("defect", "leaf", "value"),
    [
        (Defect.NO_ACTIVE_NOTIFY_JID, "ConnReqJabberID", "cpe@knock.lab/cwmp"),
        (Defect.NO_ACTIVE_NOTIFY_UDP_ADDRESS, "UDPConnectionRequestAddress", "192.0.2.9:7547"),
    ],
)
def test_no_active_notify_leaves_the_change_for_the_next_session(
    make_cpe: MakeCpe, defect: Defect, leaf: str, value: str
) -> None:
    correct, broken = make_cpe("SN-OK"), make_cpe("SN-NO", defects={defect})
    for cpe in (correct, broken):
        cpe.set_value(MS + leaf, value)
        assert cpe.model.changes()[MS + leaf] == value  # pending either way
    assert EventStruct(Event.VALUE_CHANGE) in correct.state.events
    assert EventStruct(Event.VALUE_CHANGE) not in broken.state.events


# --- UDP connection requests ----------------------------------------------------------------


def udp(facts: UdpDeviceFacts, dgram: bytes, defect: Defect | None = None) -> UdpAnswer:
    gate = UdpCrGate(CrAdmission(CrPolicy(rate_limit=0)))
    defects = frozenset() if defect is None else frozenset({defect})
    return gate.decide(dgram, replace(facts, defects=defects), NOW).answer


LAST = udp_facts((1000, 7))


@pytest.mark.parametrize(
    ("defect", "dgram", "refused"),
    [
        (Defect.UDP_REPLAY, datagram(1001, 7), UdpAnswer.REPEATED_ID),
        (Defect.UDP_OLD_TS, datagram(999, 8), UdpAnswer.OLD_TIMESTAMP),
        (Defect.UDP_BAD_SIG, datagram(1001, 8, password="guess"), UdpAnswer.BAD_SIGNATURE),
        (Defect.UDP_WRONG_USERNAME, datagram(1001, 8, username="other"), UdpAnswer.WRONG_USERNAME),
    ],
)
def test_udp_defects_accept_what_annex_g_drops(
    defect: Defect, dgram: bytes, refused: UdpAnswer
) -> None:
    assert udp(LAST, dgram) is refused
    assert udp(LAST, dgram, defect) is UdpAnswer.ACCEPTED
    others = [d for d in (Defect.UDP_REPLAY, Defect.UDP_OLD_TS, Defect.UDP_BAD_SIG) if d != defect]
    assert all(udp(LAST, dgram, other) is refused for other in others)  # one rule each


def test_udp_replay_and_old_ts_still_drop_an_exact_copy() -> None:
    copy = datagram(1000, 7)
    assert udp(LAST, copy, Defect.UDP_REPLAY) is UdpAnswer.OLD_TIMESTAMP
    assert udp(LAST, copy, Defect.UDP_OLD_TS) is UdpAnswer.REPEATED_ID


# --- STUN -----------------------------------------------------------------------------------


def test_stun_no_integrity_never_signs_after_a_401() -> None:
    stun = StunAgent(uniform=lambda low, high: low, defects=frozenset({Defect.STUN_NO_INTEGRITY}))
    first = parse(sent(stun.configure(CONFIG, 0.0)))
    assert stun.receive(parse(binding_error(first.txid, 401)), 0.1) == "error"
    assert stun.due == pytest.approx(20.1)  # no retry now: the next keep-alive period
    again = parse(sent(stun.tick(20.1)))
    assert again.integrity is None and again.username == "stun-user"
    assert again.connection_request_binding


def test_no_binding_change_reports_the_move_but_never_flags_it() -> None:
    stun = StunAgent(uniform=lambda low, high: low, defects=frozenset({Defect.NO_BINDING_CHANGE}))
    request = parse(sent(stun.configure(CONFIG, 0.0)))
    stun.receive(parse(binding_response(request.txid, ("198.51.100.7", 40000))), 0.0)
    again = parse(sent(stun.tick(20.0)))
    moved = stun.receive(parse(binding_response(again.txid, ("198.51.100.7", 40999))), 20.0)
    assert moved == [Mapped(("198.51.100.7", 40999))]  # no request at once
    assert not parse(sent(stun.tick(40.0))).binding_change


# --- XMPP connection requests ---------------------------------------------------------------


def xmpp(stanza: etree._Element, defect: Defect | None = None) -> StanzaError | None:
    """The error answered; None for a result."""
    sent = xmpp_reply(stanza, defect)
    assert sent is not None
    return sent.error


def xmpp_reply(stanza: etree._Element, defect: Defect | None) -> Reply | None:
    defects = frozenset() if defect is None else frozenset({defect})
    gate = XmppCrGate(CrAdmission(CrPolicy(rate_limit=0)))
    return reply(gate.decide(stanza, replace(XMPP_DEVICE, defects=defects), NOW), defects)


def test_prefix_jid_match_lets_a_longer_jid_in() -> None:
    evil = iq(request(), sender="acs@knock.lab.evil/knock")
    assert xmpp(evil) == StanzaError("cancel", "service-unavailable")
    assert xmpp(evil, Defect.PREFIX_JID_MATCH) is None
    assert xmpp(iq(request(), sender="eve@knock.lab/x"), Defect.PREFIX_JID_MATCH) == StanzaError(
        "cancel", "service-unavailable"
    )


def test_not_autorized_typo_misspells_only_the_credentials_error() -> None:
    wrong = iq(request(password="guess"))
    assert xmpp(wrong) == StanzaError("auth", "not-authorized")
    assert xmpp(wrong, Defect.NOT_AUTORIZED_TYPO) == StanzaError("auth", "not-autorized")
    assert xmpp(iq(request()), Defect.NOT_AUTORIZED_TYPO) is None


def test_xmpp_no_result_leaves_an_accepted_request_unanswered_and_only_that() -> None:
    assert xmpp_reply(iq(request()), None) == Reply(None)
    assert xmpp_reply(iq(request()), Defect.XMPP_NO_RESULT) is None
    assert xmpp(iq(request(password="guess")), Defect.XMPP_NO_RESULT) == StanzaError(
        "auth", "not-authorized"
    )


# --- knock sim --defect ---------------------------------------------------------------------


def test_fleet_config_carries_defects_to_its_workers_and_the_cli_names_bad_ones() -> None:
    config = FleetConfig("http://127.0.0.1:7547/", 1, defects=(Defect.UDP_REPLAY,))
    assert FleetConfig.from_json(json.loads(json.dumps(config.to_json()))) == config
    result = CliRunner().invoke(app, ["sim", "--acs", "http://127.0.0.1:1/", "--defect", "nope"])
    assert result.exit_code == 2
    assert "'nope' is not a defect; name one of accept-any-cr-auth" in " ".join(
        result.output.replace("│", " ").split()
    )
    listed = CliRunner().invoke(app, ["sim", "--list-defects"], env={"COLUMNS": "200"})
    assert listed.exit_code == 0
    rows = [line.split(None, 1) for line in listed.output.splitlines()[1:]]
    assert [(name, text.strip()) for name, text in rows] == [(d.value, d.breaks) for d in Defect]
