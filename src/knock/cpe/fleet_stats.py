"""A fleet's figures at one moment: what each worker reports and what the parent adds up."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from knock.cpe.cr_http import CrAnswer
from knock.cpe.fleet_config import FleetConfig


@dataclass(frozen=True, slots=True)
class FleetStats:
    started: int = 0  # devices powered on so far
    online: int = 0  # devices whose Inform the ACS accepted at least once
    in_session: int = 0
    sessions: int = 0  # sessions that ended normally
    errors: int = 0  # failed sessions, and devices that could not start or stopped
    cr: Mapping[CrAnswer, int] = field(default_factory=dict)  # HTTP connection requests by answer
    # UDP and XMPP connection requests by how they were taken (`UdpAnswer`, `XmppAnswer` values)
    udp: Mapping[str, int] = field(default_factory=dict)
    xmpp: Mapping[str, int] = field(default_factory=dict)
    stun_bound: int = 0  # devices whose STUN binding is known
    xmpp_online: int = 0  # devices logged in to their XMPP server
    failures: Mapping[str, int] = field(default_factory=dict)  # failed sessions by reason

    @property
    def cr_received(self) -> int:
        return sum(self.cr.values())

    @property
    def cr_accepted(self) -> int:
        return self.cr.get(CrAnswer.ACCEPTED, 0) + self.cr.get(CrAnswer.MERGED, 0)

    @property
    def cr_refused(self) -> dict[CrAnswer, int]:
        return {answer: n for answer, n in self.cr.items() if answer.refused and n}

    def __add__(self, other: FleetStats) -> FleetStats:
        return FleetStats(
            started=self.started + other.started,
            online=self.online + other.online,
            in_session=self.in_session + other.in_session,
            sessions=self.sessions + other.sessions,
            errors=self.errors + other.errors,
            failures=_added(self.failures, other.failures),
            cr=_added(self.cr, other.cr),
            udp=_added(self.udp, other.udp),
            xmpp=_added(self.xmpp, other.xmpp),
            stun_bound=self.stun_bound + other.stun_bound,
            xmpp_online=self.xmpp_online + other.xmpp_online,
        )

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "cr": {str(answer): n for answer, n in self.cr.items()}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FleetStats:
        cr = {CrAnswer(answer): int(n) for answer, n in data["cr"].items()}
        return cls(**{**data, "cr": cr})


K = TypeVar("K")


def _added(a: Mapping[K, int], b: Mapping[K, int]) -> dict[K, int]:
    total = dict(a)
    for key, n in b.items():
        total[key] = total.get(key, 0) + n
    return total


def accepted(counts: Mapping[str, int]) -> int:
    """UDP or XMPP requests that led to a session, their own or one they joined."""
    return counts.get("accepted", 0) + counts.get("merged", 0)


@dataclass(frozen=True, slots=True)
class FleetSnapshot:
    """What a view shows: the fleet's figures and how long it has been running."""

    config: FleetConfig
    stats: FleetStats
    elapsed: float  # seconds since the fleet started
    online_after: float | None  # seconds it took until every device was online
