"""A log line that may repeat thousands of times a second (a descriptor shortage, a flood of
bad connections) is written once per interval with how many times it happened, never once per
event: a storm must not fill the disk or bury the one line that says what is wrong."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

DEFAULT_INTERVAL = 60.0


class RepeatedLog:
    """One kind of event: the first is logged at once, later ones at most once per *interval*
    with the count since the last line. *clock* is seconds (tests pass their own)."""

    __slots__ = ("_clock", "_count", "_interval", "_level", "_logger", "_message", "_next")

    def __init__(
        self,
        logger: logging.Logger,
        message: str,
        *,
        level: int = logging.WARNING,
        interval: float = DEFAULT_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._message = message
        self._level = level
        self._interval = interval
        self._clock = clock
        self._count = 0
        self._next = float("-inf")

    def hit(self, detail: object = "", exc_info: BaseException | None = None) -> None:
        """The event happened; *detail* (the latest error, say) goes in the line if one is due,
        with *exc_info*'s traceback."""
        self._count += 1
        now = self._clock()
        if now < self._next:
            return
        count, self._count = self._count, 0
        self._next = now + self._interval
        suffix = f": {detail}" if detail != "" else ""
        if count == 1:
            self._logger.log(self._level, "%s%s", self._message, suffix, exc_info=exc_info)
        else:
            self._logger.log(
                self._level,
                "%s%s (%d times since the last such line, at most one a %.0f s)",
                self._message,
                suffix,
                count,
                self._interval,
                exc_info=exc_info,
            )
