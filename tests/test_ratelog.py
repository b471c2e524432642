"""A repeated error is logged once per interval with a count, never once per event."""

from __future__ import annotations

import logging

import pytest

from knock.ratelog import RepeatedLog


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
