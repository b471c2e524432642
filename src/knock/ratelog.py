"""A log line that may repeat thousands of times a second (a descriptor shortage, a flood of
bad requests) is written once per interval with how many times it happened, never once per
event: a storm must not fill the disk or bury the one line that says what is wrong.

`RepeatedLog` is for one kind of Knock's own events, `ReasonLog` for events of many sources
that share a reason (a fleet's failed sessions, a refused device), `RepeatFilter` does the same
to another library's logger (aiohttp's per-request errors), by message template. Each counts
through `Repeats`, the one place that decides when a line is due.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable

DEFAULT_INTERVAL = 60.0
_MAX_KEYS = 1000  # what is counted is forgotten beyond this many kinds of message


class _Count:
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


class Repeats:
    """How often each kind of event (*key*: a template, a reason, a device and a reason)
    happened since its last line; forgets every count beyond *max_keys* kinds, so made-up keys
    (spoofed sources) cannot grow memory without end."""

    __slots__ = ("_by_key", "_clock", "_interval", "_max_keys")

    def __init__(
        self,
        interval: float = DEFAULT_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = _MAX_KEYS,
    ) -> None:
        self._interval = interval
        self._clock = clock
        self._max_keys = max_keys
        self._by_key: dict[Hashable, _Count] = {}

    def due(self, key: Hashable) -> int:
        """Count an event of *key*; how many to report if its line is due now, else 0."""
        repeats = self._by_key.get(key)
        if repeats is None:
            if len(self._by_key) >= self._max_keys:
                self._by_key.clear()
            repeats = self._by_key[key] = _Count(self._interval)
        return repeats.due(self._clock())

    def suffix(self, count: int) -> str:
        """What a line reporting *count* events adds: nothing for one."""
        if count == 1:
            return ""
        return f" ({count} times since the last such line, at most one a {self._interval:.0f} s)"


class ReasonLog:
    """Events of many sources that share a reason: the first of each reason is logged at once,
    later ones at most once per *interval* with the count since its last line and the latest
    event's detail (which device). *clock* is seconds (tests pass their own)."""

    __slots__ = ("_level", "_logger", "_repeats")

    def __init__(
        self,
        logger: logging.Logger,
        *,
        level: int = logging.WARNING,
        interval: float = DEFAULT_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._level = level
        self._repeats = Repeats(interval, clock)

    def hit(self, reason: str, detail: object = "", exc_info: BaseException | None = None) -> None:
        """An event of *reason* happened; *detail* (the latest device, the latest error) goes
        in the line if one is due, with *exc_info*'s traceback."""
        count = self._repeats.due(reason)
        if count:
            suffix = f": {detail}" if detail != "" else ""
            self._logger.log(
                self._level,
                "%s%s%s",
                reason,
                suffix,
                self._repeats.suffix(count),
                exc_info=exc_info,
            )


class RepeatedLog:
    """One kind of event, *message*: a `ReasonLog` of one reason."""

    __slots__ = ("_log", "_message")

    def __init__(
        self,
        logger: logging.Logger,
        message: str,
        *,
        level: int = logging.WARNING,
        interval: float = DEFAULT_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._message = message
        self._log = ReasonLog(logger, level=level, interval=interval, clock=clock)

    def hit(self, detail: object = "", exc_info: BaseException | None = None) -> None:
        """The event happened; *detail* (the latest error, say) goes in the line if one is due,
        with *exc_info*'s traceback."""
        self._log.hit(self._message, detail, exc_info)


class RepeatFilter(logging.Filter):
    """Lets each message template of a logger through once per *interval*, the line that
    passes saying how many were held back."""

    def __init__(
        self, interval: float = DEFAULT_INTERVAL, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self._repeats = Repeats(interval, clock)

    def filter(self, record: logging.LogRecord) -> bool:
        count = self._repeats.due(str(record.msg))
        if count > 1:
            record.msg = f"{record.msg}{self._repeats.suffix(count)}"
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
