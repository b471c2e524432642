"""Which connection-request methods are tried for a device, and in what order."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from knock.vocab import CrMethod

DEFAULT_ORDER = (CrMethod.XMPP, CrMethod.UDP, CrMethod.HTTP)


@dataclass(frozen=True, slots=True)
class MethodOrder:
    """The order methods are tried in, per device group: a group is a device-id prefix such as
    "00D09E-KnockBox" (OUI and ProductClass); the longest matching prefix wins."""

    default: tuple[CrMethod, ...] = DEFAULT_ORDER
    groups: Mapping[str, tuple[CrMethod, ...]] = field(default_factory=dict)

    def for_device(self, device_id: str) -> tuple[CrMethod, ...]:
        matching = [prefix for prefix in self.groups if device_id.startswith(prefix)]
        return self.groups[max(matching, key=len)] if matching else self.default

    @classmethod
    def parse(cls, default: str, groups: Mapping[str, str]) -> MethodOrder:
        """From "xmpp,udp,http" texts; a method left out is never tried for that group."""
        return cls(_methods(default), {prefix: _methods(text) for prefix, text in groups.items()})


def _methods(text: str) -> tuple[CrMethod, ...]:
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    known = {m.value for m in CrMethod}
    unknown = [name for name in names if name not in known]
    if unknown or not names or len(set(names)) != len(names):
        raise ValueError(
            f"connection-request order {text!r}: list each of http, udp, xmpp at most once, "
            "separated by commas"
        )
    return tuple(CrMethod(name) for name in names)
