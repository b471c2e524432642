"""Which `XMPP.Connection.` row, and which of its `Server.` rows, a device's XMPP account goes in.

Pure, one RPC at a time, as part of a `Provisioning`. Devices differ where TR-181 lets them:
many ship a fixed `Connection.1` with its `Server.1` and refuse AddObject; some create a
Connection's `Server.1` themselves and keep the Server table read-only. So Knock takes the row
ConnReqXMPPConnection names, else the device's first row, and adds one only where none exists;
after adding a Connection it reads the row back before adding a Server. Re-provisioning (a
factory reset, credentials Knock lost) finds the row it filled before and adds nothing.

Rows are listed with GetParameterNames (NextLevel true), the RPC meant for it, which every
device answers, where a partial-path GetParameterValues is refused by some.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from knock.cwmp.rpcs import (
    AddObject,
    AddObjectResponse,
    Fault,
    GetParameterNames,
    GetParameterNamesResponse,
    Rpc,
)


@dataclass(frozen=True, slots=True)
class Rows:
    """The rows to fill ("Device.XMPP.Connection.1.", "Device.XMPP.Connection.1.Server.1.")."""

    connection: str
    server: str
    added: str = ""  # the outermost object this plan added: deleting it undoes the plan


@dataclass(frozen=True, slots=True)
class NoRows:
    """The device did not let Knock find or make the rows; why, and what to delete."""

    reason: str
    added: str = ""


class _Step(enum.Enum):
    LIST_CONNECTIONS = "list-connections"
    ADD_CONNECTION = "add-connection"
    LIST_SERVERS = "list-servers"
    ADD_SERVER = "add-server"


_ANSWERS = {
    _Step.LIST_CONNECTIONS: GetParameterNamesResponse,
    _Step.LIST_SERVERS: GetParameterNamesResponse,
    _Step.ADD_CONNECTION: AddObjectResponse,
    _Step.ADD_SERVER: AddObjectResponse,
}


class XmppRowPlan:
    def __init__(self, root: str, reference: str) -> None:
        """*reference*: the device's ConnReqXMPPConnection ("Device.XMPP.Connection.2")."""
        self._table = f"{root}XMPP.Connection."
        self._reference = reference.removesuffix(".") + "." if reference else ""
        self._step = _Step.LIST_CONNECTIONS
        self._asked: Rpc = GetParameterNames(self._table, next_level=True)
        self._connection = ""
        self._added = ""

    def first(self) -> Rpc:
        return self._asked

    def on_response(self, rpc: Rpc) -> Rpc | Rows | NoRows:
        if not isinstance(rpc, _ANSWERS[self._step]):
            return NoRows(refusal(self._asked, rpc), self._added)
        if isinstance(rpc, GetParameterNamesResponse) and self._step is _Step.LIST_CONNECTIONS:
            rows = _rows(self._table, rpc)
            if self._reference in rows:
                return self._use_connection(self._reference)
            if rows:
                return self._use_connection(rows[0])
            return self._ask(_Step.ADD_CONNECTION, AddObject(self._table))
        if isinstance(rpc, AddObjectResponse) and self._step is _Step.ADD_CONNECTION:
            self._added = f"{self._table}{rpc.instance_number}."
            # Read back: a device may have made the new row's Server.1 with it.
            return self._use_connection(self._added)
        if isinstance(rpc, GetParameterNamesResponse):
            servers = _rows(f"{self._connection}Server.", rpc)
            if servers:
                return Rows(self._connection, servers[0], self._added)
            return self._ask(_Step.ADD_SERVER, AddObject(f"{self._connection}Server."))
        assert isinstance(rpc, AddObjectResponse)
        server = f"{self._connection}Server.{rpc.instance_number}."
        return Rows(self._connection, server, self._added or server)

    def _use_connection(self, connection: str) -> Rpc:
        self._connection = connection
        return self._ask(_Step.LIST_SERVERS, GetParameterNames(f"{connection}Server.", True))

    def _ask(self, step: _Step, rpc: Rpc) -> Rpc:
        self._step, self._asked = step, rpc
        return rpc


def _rows(table: str, rpc: GetParameterNamesResponse) -> list[str]:
    """The rows of *table* the response lists, lowest number first."""
    numbers = {
        int(number)
        for info in rpc.parameter_list
        if info.name.startswith(table)
        and (number := info.name[len(table) :].split(".", 1)[0]).isascii()
        and number.isdigit()
    }
    return [f"{table}{number}." for number in sorted(numbers)]


def refusal(asked: Rpc, answer: Rpc) -> str:
    """Why a step failed, for a log line and the device document: "AddObject
    Device.XMPP.Connection.1.Server. was answered with fault 9005 Invalid parameter name"."""
    return f"{_described(asked)} was answered {_answer(answer)}"


def _described(rpc: Rpc) -> str:
    """A request as a log line and a device document name it: "AddObject Device.XMPP..."."""
    if isinstance(rpc, AddObject):
        return f"AddObject {rpc.object_name}"
    if isinstance(rpc, GetParameterNames):
        return f"GetParameterNames {rpc.parameter_path}"
    return type(rpc).__name__


def _answer(rpc: Rpc) -> str:
    """What the device answered instead, for the reason a plan gave up."""
    if isinstance(rpc, Fault):
        text = f" {rpc.fault_string}" if rpc.fault_string else ""
        return f"with fault {rpc.fault_code}{text}"
    return f"with {type(rpc).__name__}"
