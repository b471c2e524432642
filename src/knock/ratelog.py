"""A log line that may repeat thousands of times a second (a descriptor shortage, a flood of
bad requests) is written once per interval with how many times it happened, never once per
event: a storm must not fill the disk or bury the one line that says what is wrong.

`RepeatedLog` is for Knock's own events; `RepeatFilter` does the same to another library's
logger (aiohttp's per-request errors), by message template.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

DEFAULT_INTERVAL = 60.0
_MAX_TEMPLATES = 1000  # a filter forgets what it counted beyond this many kinds of message


class _Repeats:
    """How often one kind of event happened since it was last reported."""

    __slots__ = ("_count", "_interval", "_next")

    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._count = 0
        self._next = float("-inf")

    def due(self, now: float) -> int:
        """Count an event; return how many to report if a line is due now, else 0."""
        self._count += 1
        if now < self._next:
            return 0
        count, self._count = self._count, 0
        self._next = now + self._interval
        return count

    def suffix(self, count: int) -> str:
        if count == 1:
            return ""
        return f" ({count} times since the last such line, at most one a {self._interval:.0f} s)"


class RepeatedLog:
    """One kind of event: the first is logged at once, later ones at most once per *interval*
    with the count since the last line. *clock* is seconds (tests pass their own)."""

    __slots__ = ("_clock", "_level", "_logger", "_message", "_repeats")

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
        self._clock = clock
        self._repeats = _Repeats(interval)

    def hit(self, detail: object = "", exc_info: BaseException | None = None) -> None:
        """The event happened; *detail* (the latest error, say) goes in the line if one is due,
        with *exc_info*'s traceback."""
        count = self._repeats.due(self._clock())
        if count:
            suffix = f": {detail}" if detail != "" else ""
            self._logger.log(
                self._level,
                "%s%s%s",
                self._message,
                suffix,
                self._repeats.suffix(count),
                exc_info=exc_info,
            )


class RepeatFilter(logging.Filter):
    """Lets each message template of a logger through once per *interval*, the line that
    passes saying how many were held back."""

    def __init__(
        self, interval: float = DEFAULT_INTERVAL, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self._interval = interval
        self._clock = clock
        self._by_template: dict[str, _Repeats] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = str(record.msg)
        repeats = self._by_template.get(key)
        if repeats is None:
            if len(self._by_template) >= _MAX_TEMPLATES:
                self._by_template.clear()
            repeats = self._by_template[key] = _Repeats(self._interval)
        count = repeats.due(self._clock())
        if count > 1:
            record.msg = f"{record.msg}{repeats.suffix(count)}"
        return count > 0


def quiet_logger(name: str) -> logging.Logger:
    """A logger for one server's library (aiohttp's per-request errors) with a `RepeatFilter`
    of its own: each server counts its own repeats, and one that stopped leaves no count behind
    for the next (logging's registry would share one logger, and its filter, process-wide).
    Its lines go wherever the registered logger *name*'s go."""
    logger = logging.Logger(name)
    logger.parent = logging.getLogger(name)
    logger.addFilter(RepeatFilter())
    return logger
