"""The ACS session core, driven with bytes built by the codec (no sockets)."""

from __future__ import annotations

import pytest

from knock.cwmp.breaches import Breach, Rule
from knock.cwmp.envelope import build_envelope, parse_envelope
from knock.cwmp.namespaces import NSMAPS
from knock.cwmp.rpcs import (
    DeviceIdStruct,
    EventStruct,
    Fault,
    GetParameterNamesResponse,
    GetParameterValues,
    GetParameterValuesResponse,
    GetRPCMethods,
    Inform,
    InformResponse,
    ParameterValueStruct,
    TransferComplete,
)
from knock.cwmp.session import (
    AcsSession,
    CpeDone,
    CpeRequest,
    CpeResponse,
    InformReceived,
    ProtocolViolation,
    State,
)

NS_10 = "urn:dslforum-org:cwmp-1-0"
NS_12 = "urn:dslforum-org:cwmp-1-2"

INFORM = Inform(
    device_id=DeviceIdStruct("Knock", "00D09E", "Box", "SN1"),
    events=[EventStruct("1 BOOT")],
    max_envelopes=1,
    current_time="2026-11-26T12:00:00Z",
    retry_count=0,
    parameter_list=[ParameterValueStruct("Device.DeviceInfo.SoftwareVersion", "1.0")],
)


def start(ns: str = NS_10) -> AcsSession:
    session = AcsSession()
    event = session.receive(build_envelope(INFORM, cwmp_ns=ns, id="cpe-1"))
    assert event == InformReceived(INFORM, ns)
    return session


def test_inform_is_answered_in_the_cpes_namespace_with_its_id() -> None:
    session = start(NS_12)
    reply = parse_envelope(session.reply_inform())
    assert reply.cwmp_ns == NS_12
    assert reply.id == "cpe-1"
    assert reply.body == InformResponse(max_envelopes=1)
    assert session.state is State.CPE_TURN


@pytest.mark.parametrize("ns", sorted(NSMAPS))
@pytest.mark.parametrize(
    "cpe_id",
    ["1", "cpe-1", "ID:4711", "a" * 64, "a" * 65, "", "a&b", "<1>", "x\ry", "é", "knock-id-mark"],
)
@pytest.mark.parametrize("hold", [None, True])
def test_inform_response_is_what_the_codec_builds(ns: str, cpe_id: str, hold: bool | None) -> None:
    """reply_inform sets the ID into bytes built once per namespace; for every ID they are
    byte for byte what build_envelope writes (escaped IDs, empty and long ones take it), with
    HoldRequests or without."""
    session = AcsSession()
    inform = session.receive(build_envelope(INFORM, cwmp_ns=ns, id=cpe_id))
    assert inform == InformReceived(INFORM, ns)
    twice = [session.reply_inform(hold) for _ in range(2)]
    built = build_envelope(
        InformResponse(max_envelopes=1), cwmp_ns=ns, id=cpe_id, hold_requests=hold
    )
    assert twice == [built] * 2


def test_full_session_with_one_acs_request() -> None:
    session = start()
    session.reply_inform()
    assert session.receive(b"") == CpeDone()
    request = parse_envelope(session.request(GetParameterValues(["Device.DeviceInfo.UpTime"])))
    assert request.id == "knock-1"
    assert session.awaiting_response
    answer = GetParameterValuesResponse(
        [ParameterValueStruct("Device.DeviceInfo.UpTime", "42", "xsd:unsignedInt")]
    )
    event = session.receive(build_envelope(answer, cwmp_ns=NS_10, id="knock-1"))
    assert event == CpeResponse(answer)
    assert not session.awaiting_response
    session.finish()
    assert session.state is State.DONE
    assert isinstance(session.receive(b""), ProtocolViolation)


def test_a_response_whose_id_and_method_match_no_request_is_a_protocol_error() -> None:
    session = start()
    session.reply_inform()
    session.receive(b"")
    session.request(GetParameterValues(["Device.DeviceInfo.UpTime"]))  # knock-1
    answer = GetParameterNamesResponse([])
    event = session.receive(build_envelope(answer, cwmp_ns=NS_10, id="knock-7"))
    assert isinstance(event, ProtocolViolation)
    assert event.fault_code == 8003
    assert "'knock-7', which matches no request sent; the outstanding one is 'knock-1'" in (
        event.message
    )
    assert session.awaiting_response  # the request is still unanswered
    assert session.breaches == []


def test_the_outstanding_requests_answer_with_another_or_no_id_is_taken_and_recorded() -> None:
    session = start()
    session.reply_inform()
    session.receive(b"")
    session.request(GetParameterValues(["Device.DeviceInfo.UpTime"]))  # knock-1
    answer = GetParameterValuesResponse([])
    # One request is outstanding: its method's response can only answer it.
    assert session.receive(build_envelope(answer, cwmp_ns=NS_10, id="cpe-7")) == CpeResponse(answer)
    session.request(GetParameterValues(["Nope."]))  # knock-2
    fault = Fault("Client", 9005, "Invalid parameter name")
    assert session.receive(build_envelope(fault, cwmp_ns=NS_10, id=None)) == CpeResponse(fault)
    session.request(GetParameterValues(["Device.DeviceInfo.UpTime"]))  # knock-3
    assert session.receive(build_envelope(answer, cwmp_ns=NS_10, id="knock-3")) == CpeResponse(
        answer
    )
    assert session.breaches == [
        Breach(
            Rule.CWMP_ID,
            "GetParameterValuesResponse to GetParameterValues 'knock-1' carried cwmp:ID 'cpe-7'",
        ),
        Breach(Rule.CWMP_ID, "Fault to GetParameterValues 'knock-2' carried no cwmp:ID"),
    ]


def test_an_envelope_with_an_empty_body_ends_the_cpes_turn_and_is_recorded() -> None:
    body = build_envelope(GetRPCMethods(), cwmp_ns=NS_10, id="cpe-2")
    empty = body[: body.index(b"<soap-env:Body>")] + b"<soap-env:Body/></soap-env:Envelope>"
    before = AcsSession().receive(empty)
    assert isinstance(before, ProtocolViolation) and before.fault_code == 8001
    session = start()
    session.reply_inform()
    assert session.receive(empty) == CpeDone()
    assert session.state is State.ACS_TURN
    assert session.breaches == [
        Breach(
            Rule.EMPTY_POST,
            f"an envelope with an empty SOAP Body ({len(empty)} bytes), not an empty HTTP POST",
        )
    ]


def test_cpe_requests_during_its_turn() -> None:
    session = start()
    session.reply_inform()
    event = session.receive(build_envelope(GetRPCMethods(), cwmp_ns=NS_10, id="cpe-2"))
    assert event == CpeRequest(GetRPCMethods())
    transfer = TransferComplete(command_key="k")
    assert session.receive(build_envelope(transfer, cwmp_ns=NS_10, id="cpe-3")) == CpeRequest(
        transfer
    )


def test_cpe_fault_is_a_response() -> None:
    session = start()
    session.reply_inform()
    session.receive(b"")
    session.request(GetParameterValues(["Nope."]))
    fault = Fault("Client", 9005, "Invalid parameter name")
    event = session.receive(build_envelope(fault, cwmp_ns=NS_10, id="knock-1"))
    assert isinstance(event, CpeResponse) and event.is_fault


def test_a_session_must_start_with_inform() -> None:
    session = AcsSession()
    event = session.receive(build_envelope(GetRPCMethods(), cwmp_ns=NS_10, id="x"))
    assert isinstance(event, ProtocolViolation)
    assert event.fault_code == 8001
    empty = session.receive(b"")
    assert isinstance(empty, ProtocolViolation) and empty.http_status == 400


def test_unknown_method_gets_8000_with_the_request_id() -> None:
    session = AcsSession()
    body = build_envelope(GetRPCMethods(), cwmp_ns=NS_12, id="odd-7").replace(
        b"GetRPCMethods", b"FrobnicateDevice"
    )
    event = session.receive(body)
    assert isinstance(event, ProtocolViolation) and event.fault_code == 8000
    fault = parse_envelope(session.reply_fault(event.fault_code, event.message))
    assert fault.id == "odd-7" and fault.cwmp_ns == NS_12
    assert isinstance(fault.body, Fault) and fault.body.fault_code == 8000


def test_malformed_and_oversize_bodies() -> None:
    assert AcsSession().receive(b"<not xml").fault_code == 8003  # type: ignore[union-attr]
    big = AcsSession(max_bytes=1000).receive(b"<a>" + b"x" * 2000 + b"</a>")
    assert isinstance(big, ProtocolViolation) and big.http_status == 413


def test_second_inform_in_a_session_is_refused() -> None:
    session = start()
    session.reply_inform()
    event = session.receive(build_envelope(INFORM, cwmp_ns=NS_10, id="again"))
    assert isinstance(event, ProtocolViolation) and event.fault_code == 8001


def test_hold_requests_is_sent_only_when_asked() -> None:
    session = start()
    held = session.reply_inform(hold_requests=True)
    assert b">1</cwmp:HoldRequests>" in held and parse_envelope(held).hold_requests is True
    assert session.receive(b"") == CpeDone()
    request = session.request(GetRPCMethods(), hold_requests=True)
    assert parse_envelope(request).hold_requests is True
    plain = start()
    assert parse_envelope(plain.reply_inform()).hold_requests is None
    plain.receive(b"")
    assert b"HoldRequests" not in plain.request(GetRPCMethods())
