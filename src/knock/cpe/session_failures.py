"""A fleet worker's failed sessions, by reason: counted for the live view, and logged once per
reason per interval with how many devices met it, never once per device (10,000 devices that
cannot reach their ACS would otherwise bury the live table under 10,000 alike lines)."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable

from knock.cpe.acs_client import AcsRefused
from knock.ratelog import DEFAULT_INTERVAL, ReasonLog

log = logging.getLogger(__name__)


def reason(exc: BaseException) -> str:
    """A failure's reason as the live view counts it: the ACS's status, or the error's kind."""
    if isinstance(exc, AcsRefused):
        return f"HTTP {exc.status}"
    return type(exc).__name__


def described(exc: BaseException) -> str:
    """The error's kind and text; a text-less error says it has none rather than end in ': '."""
    text = str(exc) or "no detail given"
    return f"{type(exc).__name__}: {text}"


class SessionFailures:
    def __init__(
        self,
        logger: logging.Logger = log,
        *,
        interval: float = DEFAULT_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.by_reason: Counter[str] = Counter()
        self._log = ReasonLog(logger, interval=interval, clock=clock)

    def failed(self, serial: str, attempt: int, exc: BaseException, wait: float) -> None:
        """Device *serial*'s session failed, its *attempt*-th in a row; it tries again in
        *wait* seconds."""
        self.by_reason[reason(exc)] += 1
        self._log.hit(
            f"session failed ({described(exc)})",
            f"device {serial}, attempt {attempt}, next in {wait:.0f} s",
        )
