"""Quirks on demand: switches that make a simulated CPE take one of the readings that deployed
device stacks make where the standard leaves freedom (`knock sim --quirk NAME`), so a test proves
the ACS copes before a real device finds out. Unlike a defect, a quirk breaks no requirement: the
ACS must work with it, and `knock check` must not fail a device for it.

A device carries its set in `SimulatedCpe.quirks`; the cores that own a behaviour read it from
the facts they are given, as they read defects.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Final

from knock.cpe.switches import parse_switches


class Quirk(StrEnum):
    STUN_USERNAME_SPACE_PAD = "stun-username-space-pad"
    # knock check's trust (issue 13): readings that a conformance run must survive.
    DROP_ON_UNKNOWN_PARAMETER = "drop-on-unknown-parameter"

    @property
    def reading(self) -> str:
        """What the device does, where the standard allows it, in one line."""
        return READINGS[self]


READINGS: Final = {
    Quirk.STUN_USERNAME_SPACE_PAD: (
        "RFC 3489 §11.2.6: USERNAME is padded to a multiple of 4 with spaces, not NULs"
    ),
    Quirk.DROP_ON_UNKNOWN_PARAMETER: (
        "TR-069 A.3.2.1/A.3.2.2: a Get/SetParameterValues naming a parameter the device lacks "
        "drops the connection mid-session, as a crashing stack does, instead of fault 9005"
    ),
}

Quirks = frozenset[Quirk]
NONE: Final[Quirks] = frozenset()


def parse_quirks(names: Iterable[str]) -> Quirks:
    """The quirks *names* name (each once or more, any letter case); raises `SwitchError`."""
    return parse_switches(Quirk, names, "quirk")
