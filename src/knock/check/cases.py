"""The case registry: every `cases_*` module of this package registers its cases with `@case`."""

from __future__ import annotations

import fnmatch
import importlib
import pkgutil
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from knock.vocab import CrMethod

if TYPE_CHECKING:
    from knock.check.context import CheckContext


class Family(StrEnum):
    """The method a case checks; the first part of its id."""

    HTTP = "http"
    UDP = "udp"
    XMPP = "xmpp"
    DATAMODEL = "datamodel"
    INFORM = "inform"  # what every Inform seen during the run says
    RPC = "rpc"  # Annex A's RPCs, each in a session a connection request by one method opened
    SESSION = "session"  # when and how the device opens its own sessions
    RESET = "reset"  # FactoryReset, last: the device loses what the cases before set on it


CaseFn = Callable[["CheckContext"], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Case:
    id: str  # "<family>.<name>", e.g. http.digest-valid
    requirement: str  # where the standard asks for it, e.g. "TR-069 §3.2.2"
    title: str  # what a passing device does, one sentence
    family: Family
    run: CaseFn
    via: CrMethod | None = None  # the CR method that must open the case's sessions
    # Its tasks need one session and nothing else of the device: the session may be one the
    # case before it of the same method had opened (and the runner kept open), see `runner`.
    shares_session: bool = False

    @property
    def profile(self) -> str:
        """The profile the case belongs to: its family, and its method where it has one
        (`rpc.xmpp`)."""
        return self.family.value if self.via is None else f"{self.family}.{self.via}"

    @property
    def level(self) -> str:
        """MUST, or SHOULD for a requirement the standard words so (the case warns)."""
        return "SHOULD" if "(SHOULD)" in self.requirement else "MUST"


_REGISTRY: dict[str, Case] = {}


def case(
    id: str,
    requirement: str,
    title: str,
    via: CrMethod | None = None,
    *,
    shares_session: bool = False,
) -> Callable[[CaseFn], CaseFn]:
    """Register the decorated function as the case *id*; its family is the id's first part.
    *via*: every session the case needs is opened by a connection request by that method.
    *shares_session*: the case runs its tasks in one `run_tasks` and does nothing else with the
    device, so it may run them in the session of the case before it (same *via*)."""
    family = Family(id.split(".", 1)[0])

    def register(run: CaseFn) -> CaseFn:
        if id in _REGISTRY and _REGISTRY[id].run is not run:
            raise ValueError(f"case {id} is registered twice: rename one of them")
        _REGISTRY[id] = Case(id, requirement, title, family, run, via, shares_session)
        return run

    return register


def all_cases() -> list[Case]:
    """Every case, in family order then as registered."""
    import knock.check as package

    for module in pkgutil.iter_modules(package.__path__):
        if module.name.startswith("cases_"):
            importlib.import_module(f"knock.check.{module.name}")
    order, methods = list(Family), [None, *CrMethod]
    # A per-method family lists each method's cases together: its profile.
    return sorted(_REGISTRY.values(), key=lambda c: (order.index(c.family), methods.index(c.via)))


def select(patterns: Iterable[str]) -> list[Case]:
    """The cases whose id matches any of *patterns* (globs: `http.*`, `*nonce*`), in the
    registry's order; every case when there are none. Raises `KeyError` for a pattern that
    matches nothing, since a typo would otherwise pass silently."""
    cases = all_cases()
    wanted = list(patterns)
    if not wanted:
        return cases
    for pattern in wanted:
        if not any(fnmatch.fnmatchcase(c.id, pattern) for c in cases):
            raise KeyError(f"no case matches {pattern!r}; `knock check --list` shows them")
    return [c for c in cases if any(fnmatch.fnmatchcase(c.id, p) for p in wanted)]
