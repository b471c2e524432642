"""The ACS side of one CWMP session, sans-IO.

Bytes of each CPE POST go in through `receive`, which returns one event saying what the CPE
did; the caller decides and asks for the bytes of the HTTP reply (`reply_inform`, `reply`,
`reply_fault`, `request`) or ends the session with `finish` (an empty 204 reply). The object
tracks whose turn it is, so an out-of-order message becomes a `ProtocolViolation` event rather
than a confused session.

Where a CPE breaks a session rule in a way the ACS can still read unambiguously (a response
whose cwmp:ID is not its request's while that request is the one outstanding, an envelope with
an empty Body for the empty POST), the core takes the message and records the breach in
`breaches`, so the device stays manageable and a checker can judge it.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from knock.cwmp.breaches import Breach, Rule
from knock.cwmp.envelope import (
    CwmpError,
    EmptyBody,
    UnknownMethod,
    build_envelope,
    parse_envelope,
)
from knock.cwmp.faults import AcsFault, acs_fault
from knock.cwmp.rpcs import Fault, Inform, InformResponse, Rpc
from knock.xmlsafe import DEFAULT_MAX_BYTES, XmlError, XmlTooLarge


class State(enum.Enum):
    AWAIT_INFORM = "await-inform"
    CPE_TURN = "cpe-turn"  # the CPE may send its own requests until its empty POST
    ACS_TURN = "acs-turn"  # the ACS sends requests, one per HTTP response
    DONE = "done"


@dataclass(frozen=True, slots=True)
class InformReceived:
    inform: Inform
    cwmp_ns: str


@dataclass(frozen=True, slots=True)
class CpeRequest:
    """A CPE-to-ACS request other than Inform (TransferComplete, GetRPCMethods, ...)."""

    rpc: Rpc


@dataclass(frozen=True, slots=True)
class CpeDone:
    """The CPE has nothing more to send: it is the ACS's turn (or, if it was, the end)."""


@dataclass(frozen=True, slots=True)
class CpeResponse:
    """The CPE's answer to the ACS's outstanding request: a response RPC or a Fault."""

    rpc: Rpc

    @property
    def is_fault(self) -> bool:
        return isinstance(self.rpc, Fault)


@dataclass(frozen=True, slots=True)
class ProtocolViolation:
    """Bad input: the caller answers `reply_fault(fault_code, message)` or drops the session."""

    fault_code: int
    message: str
    http_status: int = 500  # SOAP 1.1 carries faults with 500


SessionEvent = InformReceived | CpeRequest | CpeDone | CpeResponse | ProtocolViolation


class AcsSession:
    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.state = State.AWAIT_INFORM
        self.cwmp_ns = ""
        self._max_bytes = max_bytes
        self._last_id: str | None = None  # ID of the CPE message being answered
        self._outstanding: str | None = None  # ID of the ACS request awaiting its response
        self._outstanding_method = ""  # and its method's name
        self._next_id = 1
        # Session rules the CPE broke and the ACS coped with, one line each, in order.
        self.breaches: list[Breach] = []

    @property
    def awaiting_response(self) -> bool:
        return self._outstanding is not None

    def receive(self, body: bytes) -> SessionEvent:
        if self.state is State.DONE:
            return ProtocolViolation(
                AcsFault.REQUEST_DENIED, "the session has ended; send an Inform"
            )
        if not body.strip():
            return self._receive_empty()
        try:
            envelope = parse_envelope(body, self._max_bytes)
        except XmlTooLarge as exc:
            return ProtocolViolation(AcsFault.RESOURCES_EXCEEDED, str(exc), http_status=413)
        except XmlError as exc:
            return ProtocolViolation(AcsFault.INVALID_ARGUMENTS, str(exc), http_status=400)
        except EmptyBody as exc:
            if self.state is State.AWAIT_INFORM:
                return ProtocolViolation(AcsFault.REQUEST_DENIED, "empty SOAP Body before Inform")
            # Nothing in it but the wish to end its turn: what an empty POST says.
            self._last_id = exc.envelope_id
            self.breaches.append(
                Breach(
                    Rule.EMPTY_POST,
                    f"an envelope with an empty SOAP Body ({len(body)} bytes), not an empty "
                    "HTTP POST",
                )
            )
            return self._receive_empty()
        except CwmpError as exc:
            # Answer in the CPE's namespace and echo its ID even when its message is unusable.
            self._last_id = exc.envelope_id
            self.cwmp_ns = self.cwmp_ns or exc.cwmp_ns or ""
            if isinstance(exc, UnknownMethod):
                return ProtocolViolation(AcsFault.METHOD_NOT_SUPPORTED, str(exc))
            return ProtocolViolation(AcsFault.INVALID_ARGUMENTS, str(exc), http_status=400)
        self._last_id = envelope.id
        rpc = envelope.body
        if self.state is State.AWAIT_INFORM:
            if not isinstance(rpc, Inform):
                return ProtocolViolation(
                    AcsFault.REQUEST_DENIED,
                    f"a session starts with Inform, not {type(rpc).__name__}",
                )
            self.cwmp_ns = envelope.cwmp_ns
            return InformReceived(rpc, envelope.cwmp_ns)
        if isinstance(rpc, Inform):
            return ProtocolViolation(AcsFault.REQUEST_DENIED, "Inform sent twice in one session")
        if self.state is State.ACS_TURN and self._outstanding is not None:
            if envelope.id != self._outstanding:
                answer = type(rpc).__name__
                if envelope.id is not None and not _answers(rpc, self._outstanding_method):
                    # Neither the ID nor the method fits the request sent: taking it for that
                    # request's answer would record a result the device never gave.
                    return ProtocolViolation(
                        AcsFault.INVALID_ARGUMENTS,
                        f"{answer} answers cwmp:ID {envelope.id!r}, which matches no request "
                        f"sent; the outstanding one is {self._outstanding!r}",
                    )
                # One request is outstanding and HTTP alternates: a response of its method
                # (or a Fault) in the next POST can only answer it, whatever its ID says.
                said = "no cwmp:ID" if envelope.id is None else f"cwmp:ID {envelope.id!r}"
                self.breaches.append(
                    Breach(
                        Rule.CWMP_ID,
                        f"{answer} to {self._outstanding_method} {self._outstanding!r} "
                        f"carried {said}",
                    )
                )
            self._outstanding = None
            return CpeResponse(rpc)
        if self.state is State.CPE_TURN:
            return CpeRequest(rpc)
        return ProtocolViolation(
            AcsFault.REQUEST_DENIED,
            f"{type(rpc).__name__} arrived while no request was outstanding",
        )

    def _receive_empty(self) -> SessionEvent:
        if self.state is State.AWAIT_INFORM:
            return ProtocolViolation(AcsFault.REQUEST_DENIED, "empty POST before Inform", 400)
        # An empty POST while a request is outstanding means the CPE dropped it; the caller
        # learns that from `awaiting_response` before it is cleared here.
        self.state = State.ACS_TURN
        return CpeDone()

    def reply_inform(self, hold_requests: bool | None = None) -> bytes:
        """The InformResponse; *hold_requests* true tells the CPE to send none of its own
        requests (the cwmp:HoldRequests header) while the ACS's messages say so."""
        self.state = State.CPE_TURN
        ns, id_ = self.cwmp_ns or _DEFAULT_NS, self._last_id
        if hold_requests is not None or id_ is None or not _PLAIN_ID.fullmatch(id_):
            return self._envelope(_INFORM_RESPONSE, id_, hold_requests)
        # Every session sends one, so it is built once per namespace and the ID set into it:
        # the same bytes build_envelope gives (tests/cwmp/test_session.py holds them equal),
        # for IDs whose characters XML writes as they are.
        template = _INFORM_RESPONSES.get(ns)
        if template is None:
            template = _INFORM_RESPONSES[ns] = build_envelope(
                _INFORM_RESPONSE, cwmp_ns=ns, id=_ID_MARK
            ).split(_ID_MARK.encode())
        head, tail = template
        return head + id_.encode() + tail

    def reply(self, rpc: Rpc) -> bytes:
        """Answer a `CpeRequest` with its response."""
        return self._envelope(rpc, self._last_id)

    def reply_fault(self, fault_code: int, message: str) -> bytes:
        return self._envelope(acs_fault(fault_code, message), self._last_id)

    def request(self, rpc: Rpc, hold_requests: bool | None = None) -> bytes:
        """Send an ACS request; its answer comes back as `CpeResponse`. *hold_requests*: as
        for `reply_inform`."""
        if self.state is not State.ACS_TURN:
            raise RuntimeError(f"ACS request sent in state {self.state.value}")
        request_id = f"knock-{self._next_id}"
        self._next_id += 1
        self._outstanding = request_id
        self._outstanding_method = type(rpc).__name__
        return self._envelope(rpc, request_id, hold_requests)

    def finish(self) -> None:
        """The ACS has nothing more: the caller sends 204 No Content."""
        self._outstanding = None
        self.state = State.DONE

    def _envelope(
        self, rpc: Rpc, request_id: str | None, hold_requests: bool | None = None
    ) -> bytes:
        return build_envelope(
            rpc, cwmp_ns=self.cwmp_ns or _DEFAULT_NS, id=request_id, hold_requests=hold_requests
        )


def _answers(rpc: Rpc, method: str) -> bool:
    """Whether *rpc* is a response to the method named *method*, or a Fault."""
    return isinstance(rpc, Fault) or type(rpc).__name__ == f"{method}Response"


_DEFAULT_NS = "urn:dslforum-org:cwmp-1-0"
_INFORM_RESPONSE = InformResponse(max_envelopes=1)
_INFORM_RESPONSES: dict[str, list[bytes]] = {}  # by CWMP namespace: the bytes around the ID
_ID_MARK = "knock-id-mark"
# An ID of these characters is its own XML text; any other takes build_envelope's escaping.
_PLAIN_ID = re.compile(r"[A-Za-z0-9_.:@/+=-]{1,64}")
