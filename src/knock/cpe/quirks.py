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
    # Partial paths (issue 12.2), one block so that merges stay easy.
    PARTIAL_PATH_FAULT = "partial-path-fault"
    PARTIAL_PATH_DROP = "partial-path-drop"

    @property
    def reading(self) -> str:
        """What the device does, where the standard allows it, in one line."""
        return READINGS[self]


READINGS: Final = {
    Quirk.STUN_USERNAME_SPACE_PAD: (
        "RFC 3489 §11.2.6: USERNAME is padded to a multiple of 4 with spaces, not NULs"
    ),
    # Partial paths (issue 12.2).
    Quirk.PARTIAL_PATH_FAULT: (
        "GetParameterValues of a partial path (ending in '.') is answered with fault 9005"
    ),
    Quirk.PARTIAL_PATH_DROP: (
        "GetParameterValues of a partial path crashes the CWMP client: the connection closes "
        "unanswered, and the next Inform says 1 BOOT"
    ),
}

Quirks = frozenset[Quirk]
NONE: Final[Quirks] = frozenset()


def parse_quirks(names: Iterable[str]) -> Quirks:
    """The quirks *names* name (each once or more, any letter case); raises `SwitchError`."""
    return parse_switches(Quirk, names, "quirk")
