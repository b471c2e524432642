"""The fleet view's document: per method, a histogram of the latency of delivered connection
requests and the share delivered in each slice of time, from the counts the store makes
(`knock.store.cr_stats`). Pure: counts in, a JSON-ready document out."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from knock.nbi.documents import iso
from knock.store.cr_stats import CrCounts
from knock.store.rows import CrAttemptRow
from knock.vocab import CrMethod, CrOutcome

# Upper bounds of the histogram's bins; one more bin holds everything slower. Roughly
# logarithmic: loopback requests land in the first bins, a device behind a slow NAT in the last.
LATENCY_EDGES_MS = (10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000)


def latency_ms(attempt: CrAttemptRow) -> float | None:
    """From sending the request to the device's Inform; None unless it was delivered (a
    request that failed has no latency, only the time it took to fail)."""
    if attempt.ended is None or attempt.outcome != CrOutcome.DELIVERED:
        return None
    return (attempt.ended - attempt.started).total_seconds() * 1000


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
    failed: dict[str, int] = field(default_factory=dict)  # finished, not delivered, by outcome

    def document(self, median_ms: float | None) -> dict[str, Any]:
        return {
            "attempts": self.attempts,
            "delivered": self.delivered,
            "pending": self.pending,
            "medianMs": None if median_ms is None else round(median_ms, 1),
            "histogram": self.histogram,
            # Most first: what an operator looks into first ("UDP 50 %" says not why).
            "failed": dict(sorted(self.failed.items(), key=lambda item: (-item[1], item[0]))),
            "slices": [{"finished": s.finished, "delivered": s.delivered} for s in self.slices],
        }


def cr_stats(counts: CrCounts, since: datetime, until: datetime, slices: int) -> dict[str, Any]:
    """Per method: attempts, how many delivered, how many still under way, the latency
    histogram of the delivered ones (bins by LATENCY_EDGES_MS), the others by outcome, and
    per slice of the window how
    many finished and how many of those were delivered. Counts of a method this Knock does not
    know are left out."""
    methods = {m.value: _Method([_Slice() for _ in range(slices)]) for m in CrMethod}
    for count in counts.counts:
        stats = methods.get(count.method)
        if stats is None:
            continue
        stats.attempts += count.count
        if count.outcome is None:
            stats.pending += count.count
            continue
        piece = stats.slices[count.slice]
        piece.finished += count.count
        if count.outcome == CrOutcome.DELIVERED and count.bin is not None:
            stats.delivered += count.count
            piece.delivered += count.count
            stats.histogram[count.bin] += count.count
        elif count.outcome != CrOutcome.DELIVERED:
            stats.failed[count.outcome] = stats.failed.get(count.outcome, 0) + count.count
    return {
        "since": iso(since),
        "until": iso(until),
        "sliceSeconds": (until - since) / slices / timedelta(seconds=1),
        "latencyEdgesMs": list(LATENCY_EDGES_MS),
        "methods": {
            name: stats.document(counts.median_ms.get(name)) for name, stats in methods.items()
        },
    }
