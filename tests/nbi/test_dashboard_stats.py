"""The fleet view's document, assembled from the store's counts without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from knock.nbi.dashboard_stats import LATENCY_EDGES_MS, cr_stats
from knock.store.cr_stats import CrCount, CrCounts

SINCE = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
UNTIL = SINCE + timedelta(minutes=10)
BINS = len(LATENCY_EDGES_MS) + 1


def test_counts_become_totals_histograms_and_slices() -> None:
    counts = CrCounts(
        [
            CrCount("http", "delivered", 0, 2, 3),
            CrCount("http", "delivered", 4, 0, 1),
            CrCount("http", "unreachable", 4, 5, 2),
            CrCount("http", "timeout", 5, None, 1),
            CrCount("http", "unreachable", 6, None, 1),
            CrCount("udp", None, 1, None, 4),  # under way
            CrCount("udp", "timeout", 9, BINS - 1, 1),
            CrCount("smoke-signal", "delivered", 0, 0, 7),  # a method this Knock does not know
        ],
        {"http": 31.25},
    )
    doc = cr_stats(counts, SINCE, UNTIL, 10)
    assert doc["since"] == "2025-06-01T12:00:00.000Z"
    assert doc["until"] == "2025-06-01T12:10:00.000Z"
    assert doc["sliceSeconds"] == 60
    assert doc["latencyEdgesMs"] == list(LATENCY_EDGES_MS)
    assert list(doc["methods"]) == ["http", "udp", "xmpp"]
    http, udp, xmpp = (doc["methods"][m] for m in ("http", "udp", "xmpp"))
    assert (http["attempts"], http["delivered"], http["pending"]) == (8, 4, 0)
    # Why the others were not delivered, most first: a share alone says not why.
    assert list(http["failed"].items()) == [("unreachable", 3), ("timeout", 1)]
    assert http["histogram"] == [1, 0, 3] + [0] * (BINS - 3)  # failures stay out of it
    assert http["medianMs"] == 31.2  # rounded half to even
    slices = [(s["finished"], s["delivered"]) for s in http["slices"]]
    assert slices == [(3, 3), (0, 0), (0, 0), (0, 0), (3, 1), (1, 0), (1, 0)] + [(0, 0)] * 3
    assert (udp["attempts"], udp["delivered"], udp["pending"]) == (5, 0, 4)
    assert udp["histogram"] == [0] * BINS
    assert udp["failed"] == {"timeout": 1}  # the ones under way are not failures
    assert udp["medianMs"] is None
    assert [s["finished"] for s in udp["slices"]] == [0] * 9 + [1]
    assert xmpp == {
        "attempts": 0,
        "delivered": 0,
        "pending": 0,
        "medianMs": None,
        "histogram": [0] * BINS,
        "failed": {},
        "slices": [{"finished": 0, "delivered": 0}] * 10,
    }
