"""Behaviour switches of a simulated CPE, parsed one way: defects (`knock sim --defect`, a
requirement broken on purpose) and quirks (`knock sim --quirk`, a reading of the spec that real
device stacks make where the standard leaves freedom)."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import TypeVar

S = TypeVar("S", bound=StrEnum)


class SwitchError(ValueError):
    """An unknown switch name; the message lists the known ones."""


def parse_switches(kind: type[S], names: Iterable[str], noun: str) -> frozenset[S]:
    """The switches of *kind* that *names* name (each once or more, any letter case); raises
    `SwitchError` naming the *noun* (`defect`, `quirk`) and every known switch."""
    found: set[S] = set()
    for name in names:
        try:
            found.add(kind(name.strip().lower()))
        except ValueError:
            known = ", ".join(switch.value for switch in kind)
            raise SwitchError(f"{name!r} is not a {noun}; name one of {known}") from None
    return frozenset(found)
