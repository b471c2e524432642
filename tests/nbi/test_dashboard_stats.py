"""The fleet view's figures, computed from attempt rows without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from knock.nbi.dashboard_stats import LATENCY_EDGES_MS, cr_stats, latency_bin
from knock.store.rows import CrAttemptRow

SINCE = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
UNTIL = SINCE + timedelta(minutes=10)


def row(
    method: str, at_s: float, ms: float | None, outcome: str | None = "delivered"
) -> CrAttemptRow:
    started = SINCE + timedelta(seconds=at_s)
    ended = None if ms is None else started + timedelta(milliseconds=ms)
    return CrAttemptRow(1, "dev", method, started, ended, outcome, None)


@pytest.mark.parametrize(
    ("ms", "expected"),
    [(0, 0), (9.9, 0), (10, 1), (24.999, 1), (25, 2), (29_999, 10), (30_000, 11), (1e9, 11)],
)
def test_a_latency_on_an_edge_belongs_to_the_bin_above(ms: float, expected: int) -> None:
    assert latency_bin(ms) == expected
    assert len(LATENCY_EDGES_MS) == 11


def test_slices_cover_the_window_and_the_end_belongs_to_the_last() -> None:
    rows = [
        row("http", 0, 5),  # the first instant: slice 0
        row("http", 59.999, 5, "unreachable"),  # still slice 0 of ten one-minute slices
        row("http", 60, 5),  # slice 1
        row("http", 600, 5),  # the window's last instant: the last slice
        row("http", -0.001, 5),  # before the window
        row("http", 600.001, 5),  # after it
    ]
    stats = cr_stats(rows, SINCE, UNTIL, 10)
    http = stats["methods"]["http"]
    assert stats["sliceSeconds"] == 60
    assert (http["attempts"], http["delivered"], http["pending"]) == (4, 3, 0)
    finished = [(s["finished"], s["delivered"]) for s in http["slices"]]
    assert finished == [(2, 1), (1, 1)] + [(0, 0)] * 7 + [(1, 1)]


def test_pending_and_failed_attempts_stay_out_of_the_histogram() -> None:
    rows = [
        row("udp", 1, None, None),  # under way
        row("udp", 2, 2000, "timeout"),
        row("udp", 3, 120),
        row("smoke-signal", 4, 1),  # a method this Knock does not know
    ]
    udp = cr_stats(rows, SINCE, UNTIL, 1)["methods"]["udp"]
    assert (udp["attempts"], udp["delivered"], udp["pending"]) == (3, 1, 1)
    assert udp["histogram"][latency_bin(120)] == 1
    assert sum(udp["histogram"]) == 1
    assert udp["medianMs"] == 120
    assert udp["slices"] == [{"finished": 2, "delivered": 1}]


def test_an_empty_or_backwards_window_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one slice"):
        cr_stats([], SINCE, UNTIL, 0)
    with pytest.raises(ValueError, match="ends after it starts"):
        cr_stats([], UNTIL, SINCE, 3)
