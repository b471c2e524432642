"""What the store hands out and takes in: plain dataclasses, no SQLAlchemy types."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from knock.vocab import Event


@dataclass(frozen=True, slots=True)
class ParamValue:
    """One parameter as the store keeps it. A path ending in "." is an object node."""

    path: str
    value: str | None
    type: str | None  # "xsd:string", "xsd:unsignedInt", ...; None for object nodes
    writable: bool | None = None


@dataclass(frozen=True, slots=True)
class DeviceRow:
    id: str
    manufacturer: str
    oui: str
    product_class: str
    serial_number: str
    registered: datetime
    last_inform: datetime | None
    last_boot: datetime | None
    last_bootstrap: datetime | None
    stun_outcome: str | None = None  # knock.vocab.StunOutcome, as last changed
    stun_source: str | None = None  # the address it came from, "host:port"
    stun_since: datetime | None = None
    xmpp_setup: str | None = None  # knock.vocab.XmppSetup of the last XMPP provisioning
    xmpp_setup_detail: str | None = None  # what the device did, when it failed
    xmpp_setup_at: datetime | None = None
    xmpp_login_since: datetime | None = None
    xmpp_login_outcome: str | None = None
    xmpp_login_detail: str | None = None
    xmpp_login_source: str | None = None


@dataclass(frozen=True, slots=True)
class StoredParam:
    path: str
    value: str | None
    type: str | None
    writable: bool | None
    timestamp: datetime


@dataclass(frozen=True, slots=True)
class InformRecord:
    """Everything an accepted Inform changes in the store, written in one transaction."""

    device_id: str
    manufacturer: str
    oui: str
    product_class: str
    serial_number: str
    events: list[str]
    parameters: list[ParamValue]
    cwmp_version: str
    now: datetime

    @property
    def bootstrap(self) -> bool:
        return Event.BOOTSTRAP in self.events

    def device_row(self) -> dict[str, Any]:
        """The `devices` row the Inform upserts (registered counts only for a new device)."""
        return {
            "id": self.device_id,
            "manufacturer": self.manufacturer,
            "oui": self.oui,
            "product_class": self.product_class,
            "serial_number": self.serial_number,
            "registered": self.now,
            "last_inform": self.now,
            "last_boot": self.now if Event.BOOT in self.events else None,
            "last_bootstrap": self.now if self.bootstrap else None,
        }


TaskKey = int | str
"""A task's id: the store's own number (the ACS, the checker), or the id the NBI shows
(`TaskRow.public_id`)."""


@dataclass(frozen=True, slots=True)
class TaskRow:
    id: int
    device_id: str
    name: str
    spec: dict[str, Any]
    status: str  # knock.vocab.TaskStatus
    created: datetime
    finished: datetime | None = None
    session_id: int | None = None
    fault_code: str | None = None
    fault_string: str | None = None
    fault_detail: Any = None
    result: Any = None
    attempts: int = 0  # sessions that died while running it
    not_before: datetime | None = None  # a retried task is not claimed before then
    # The NBI client's Idempotency-Key header: a retried POST finds this task, not a new one.
    idempotency_key: str | None = None
    public_id: str | None = None  # the NBI's `_id` (knock.store.object_ids); set on every task


@dataclass(frozen=True, slots=True)
class CrTarget:
    """What the ACS knows to reach a device: the credentials it set, and the device's
    ManagementServer parameters by leaf name ("ConnectionRequestURL", "ConnReqJabberID", ...)."""

    device_id: str
    username: str | None
    password: str | None
    management: dict[str, str] = field(default_factory=dict)
    stun_username: str | None = None
    stun_binding: tuple[str, int] | None = None  # the public address STUN saw last
    lacks: frozenset[str] = frozenset()  # as Store.device_lacks


@dataclass(frozen=True, slots=True)
class TaskResult:
    """How a running task ended, with the parameter changes it made on the device."""

    task_id: int
    status: str  # knock.vocab.TaskStatus: done or faulted
    result: Any = None
    fault_code: str | None = None
    fault_string: str | None = None
    fault_detail: Any = None
    put: Sequence[ParamValue] = ()
    delete_under: Sequence[str] = ()


@dataclass(frozen=True, slots=True)
class TransferDone:
    """What a device's TransferComplete reports about a transfer a task asked for."""

    fault_code: int  # 0: the transfer succeeded
    fault_string: str
    start_time: str
    complete_time: str


@dataclass(frozen=True, slots=True)
class SessionRow:
    id: int
    device_id: str
    started: datetime
    ended: datetime | None
    events: list[str] = field(default_factory=list)
    cwmp_version: str = ""
    outcome: str | None = None


@dataclass(frozen=True, slots=True)
class CrAttemptRow:
    """One try at making a device open a session (a connection request)."""

    id: int
    device_id: str
    method: str  # knock.vocab.CrMethod
    started: datetime
    ended: datetime | None
    outcome: str | None  # knock.vocab.CrOutcome; None while the attempt is under way
    detail: str | None


@dataclass(frozen=True, slots=True)
class XmppAccountRow:
    """SCRAM-SHA-1 credentials of one XMPP account (RFC 5802): enough to verify, not to log in."""

    username: str
    salt: bytes
    iterations: int
    stored_key: bytes = field(repr=False)
    server_key: bytes = field(repr=False)
    device_id: str | None = None
