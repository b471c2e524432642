"""Connection-request figures for the dashboard's fleet view: per method, a histogram of the
latency of delivered requests and the share delivered in each slice of time.

Pure: attempt rows in, a JSON-ready document out; the caller picks the window and the clock.
"""

from __future__ import annotations

import statistics
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from knock.nbi.documents import iso
from knock.store.rows import CrAttemptRow
from knock.vocab import CrMethod, CrOutcome

# Upper bounds of the histogram's bins; one more bin holds everything slower. Roughly
# logarithmic: loopback requests land in the first bins, a device behind a slow NAT in the last.
LATENCY_EDGES_MS = (10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000)


def latency_ms(attempt: CrAttemptRow) -> float | None:
    """From sending the request to recording its outcome; None while it is under way."""
    if attempt.ended is None:
        return None
    return (attempt.ended - attempt.started).total_seconds() * 1000


def latency_bin(ms: float) -> int:
    """The histogram bin of a latency: 0 below the first edge, len(edges) beyond the last."""
    return bisect_right(LATENCY_EDGES_MS, ms)


@dataclass
class _Slice:
    finished: int = 0
    delivered: int = 0


@dataclass
class _Method:
    slices: list[_Slice]
    attempts: int = 0
    delivered: int = 0
    pending: int = 0
    histogram: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_EDGES_MS) + 1))
    latencies: list[float] = field(default_factory=list)

    def document(self) -> dict[str, Any]:
        return {
            "attempts": self.attempts,
            "delivered": self.delivered,
            "pending": self.pending,
            "medianMs": round(statistics.median(self.latencies), 1) if self.latencies else None,
            "histogram": self.histogram,
            "slices": [{"finished": s.finished, "delivered": s.delivered} for s in self.slices],
        }


def cr_stats(
    attempts: Iterable[CrAttemptRow], since: datetime, until: datetime, slices: int
) -> dict[str, Any]:
    """Attempts started in [since, until] counted per method: how many, how many delivered,
    how many still under way, the latency histogram of the delivered ones, and per slice of
    the window (`slices` equal slices) how many finished and how many of those were delivered.
    Rows of an unknown method or outside the window are left out."""
    if slices < 1 or until <= since:
        raise ValueError(
            f"need at least one slice of a window that ends after it starts, not "
            f"{slices} slices from {since} to {until}"
        )
    width = (until - since) / slices
    methods = {m.value: _Method([_Slice() for _ in range(slices)]) for m in CrMethod}
    for attempt in attempts:
        stats = methods.get(attempt.method)
        if stats is None or not since <= attempt.started <= until:
            continue
        stats.attempts += 1
        ms = latency_ms(attempt)
        if attempt.outcome is None or ms is None:
            stats.pending += 1
            continue
        piece = stats.slices[min(int((attempt.started - since) / width), slices - 1)]
        piece.finished += 1
        if attempt.outcome == CrOutcome.DELIVERED:
            stats.delivered += 1
            piece.delivered += 1
            stats.histogram[latency_bin(ms)] += 1
            stats.latencies.append(ms)
    return {
        "since": iso(since),
        "until": iso(until),
        "sliceSeconds": width / timedelta(seconds=1),
        "latencyEdgesMs": list(LATENCY_EDGES_MS),
        "methods": {name: stats.document() for name, stats in methods.items()},
    }
