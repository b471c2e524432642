"""A repeated error is logged once per interval with a count, never once per event."""

from __future__ import annotations

import logging

import pytest

from knock.ratelog import ReasonLog, RepeatedLog, RepeatFilter


def test_a_storm_is_one_line_per_interval_with_its_count(caplog: pytest.LogCaptureFixture) -> None:
    now = [100.0]
    repeated = RepeatedLog(
        logging.getLogger("knock.test"), "accept failed", interval=60.0, clock=lambda: now[0]
    )
    with caplog.at_level(logging.WARNING, "knock.test"):
        for _ in range(10_000):
            repeated.hit(OSError(24, "Too many open files"))
        now[0] += 59.0
        repeated.hit("still")
        now[0] += 1.0
        repeated.hit("last")
    assert [r.getMessage() for r in caplog.records] == [
        "accept failed: [Errno 24] Too many open files",
        "accept failed: last (10001 times since the last such line, at most one a 60 s)",
    ]


def test_a_library_logger_passes_each_template_once_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    logger = logging.getLogger("knock.test.library")
    logger.addFilter(RepeatFilter(interval=60.0, clock=lambda: now[0]))
    with caplog.at_level(logging.ERROR, "knock.test.library"):
        for n in range(500):
            logger.error("Error handling request from %s", f"192.0.2.{n % 250}")
        logger.error("Unhandled exception")
        now[0] = 61.0
        logger.error("Error handling request from %s", "192.0.2.1")
    assert [r.getMessage() for r in caplog.records] == [
        "Error handling request from 192.0.2.0",
        "Unhandled exception",
        "Error handling request from 192.0.2.1 (500 times since the last such line, "
        "at most one a 60 s)",
    ]


def test_many_sources_of_one_reason_are_one_line_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    reasons = ReasonLog(logging.getLogger("knock.test.reasons"), clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, "knock.test.reasons"):
        for n in range(3700):
            reasons.hit("session failed (TimeoutError)", f"device SIM{n:06d}")
        reasons.hit("session failed (HTTP 503)", "device SIM000001")
        now[0] = 60.0
        reasons.hit("session failed (TimeoutError)", "device SIM000042")
    assert [r.getMessage() for r in caplog.records] == [
        "session failed (TimeoutError): device SIM000000",
        "session failed (HTTP 503): device SIM000001",
        "session failed (TimeoutError): device SIM000042 "
        "(3700 times since the last such line, at most one a 60 s)",
    ]
