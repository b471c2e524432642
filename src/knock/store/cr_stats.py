"""Connection-request counts for the dashboard's fleet view, aggregated in the database: how
many attempts per method, outcome, slice of time and latency bin, and the median latency of the
delivered ones. A busy hour holds hundreds of thousands of attempts; reading them back as rows
to count them would cost seconds of the ACS's CPU.

Times are compared as whole microseconds since the epoch, computed exactly on both SQLite and
PostgreSQL, so that an attempt on the edge of a slice or a bin falls on the same side of it on
both, and on the side Python's bisect_right would put it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, Connection, case, cast, extract, func, select
from sqlalchemy.sql.expression import ColumnElement

from knock.store.schema import cr_attempts
from knock.vocab import CrOutcome

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class CrCount:
    method: str  # knock.vocab.CrMethod
    outcome: str | None  # knock.vocab.CrOutcome; None while the attempt is under way
    slice: int  # 0 .. slices - 1
    bin: int | None  # latency bin of a finished attempt (edges as bisect_right); else None
    count: int


@dataclass(frozen=True, slots=True)
class CrCounts:
    counts: list[CrCount]
    median_ms: dict[str, float] = field(default_factory=dict)  # delivered, by method


def _epoch_us(dialect: str, column: Any) -> ColumnElement[int]:
    if dialect == "sqlite":
        # SQLAlchemy keeps SQLite datetimes as "YYYY-MM-DD HH:MM:SS.ffffff" text. strftime is
        # given the whole seconds only: it would round the fraction, not drop it.
        seconds = cast(func.strftime("%s", func.substr(column, 1, 19)), BigInteger)
        return seconds * 1_000_000 + cast(func.substr(column, 21, 6), BigInteger)
    # EXTRACT(EPOCH ...) is exact numeric from PostgreSQL 14; a double before, still within
    # 0.2 us of the truth, which the cast rounds away.
    return cast(extract("epoch", column) * 1_000_000, BigInteger)


def count_cr_attempts(
    conn: Connection,
    dialect: str,
    since: datetime,
    until: datetime,
    slices: int,
    edges_ms: Sequence[int],
) -> CrCounts:
    """Attempts started in [since, until], counted per method, outcome, slice of the window
    (`slices` equal slices; the last also holds `until` itself) and latency bin (bin i holds
    latencies below edges_ms[i] and at or above the edge before; the last bin the slower)."""
    if slices < 1 or until <= since:
        raise ValueError(
            f"need at least one slice of a window that ends after it starts, not {slices} "
            f"slices from {since} to {until}"
        )
    since_us = (since - _EPOCH) // _US
    width_us = (until - since) // _US
    window = (cr_attempts.c.started >= since, cr_attempts.c.started <= until)
    # Each attempt's times converted once: MATERIALIZED keeps the database from copying the
    # conversions into every comparison of the CASE below.
    started_us = _epoch_us(dialect, cr_attempts.c.started)
    timed = (
        select(
            cr_attempts.c.method,
            cr_attempts.c.outcome,
            (started_us - since_us).label("offset_us"),
            (_epoch_us(dialect, cr_attempts.c.ended) - started_us).label("latency_us"),
        )
        .where(*window)
        .cte("timed")
        .prefix_with("MATERIALIZED")
    )
    # Both operands are whole and not negative: integer division is the floor on both.
    piece = (timed.c.offset_us * slices // width_us).label("piece")
    bin_ = case(
        *((timed.c.latency_us < edge * 1000, i) for i, edge in enumerate(edges_ms)),
        else_=len(edges_ms),
    ).label("bin")
    rows = conn.execute(
        select(timed.c.method, timed.c.outcome, piece, bin_, func.count()).group_by(
            timed.c.method, timed.c.outcome, piece, bin_
        )
    ).all()
    counts = [
        CrCount(
            method,
            outcome,
            min(int(at), slices - 1),
            None if outcome is None else int(bin_number),
            int(count),
        )
        for method, outcome, at, bin_number, count in rows
    ]
    delivered: dict[str, int] = {}
    for c in counts:
        if c.outcome == CrOutcome.DELIVERED:
            delivered[c.method] = delivered.get(c.method, 0) + c.count
    medians = {}
    for method, n in delivered.items():
        # The middle one, or the mean of the middle two, as statistics.median gives.
        latency_us = _epoch_us(dialect, cr_attempts.c.ended) - started_us
        middle = conn.execute(
            select(latency_us)
            .where(*window, cr_attempts.c.method == method)
            .where(cr_attempts.c.outcome == CrOutcome.DELIVERED, cr_attempts.c.ended.is_not(None))
            .order_by(latency_us)
            .offset((n - 1) // 2)
            .limit(2 - n % 2)
        ).scalars()
        values = [int(v) for v in middle]
        medians[method] = sum(values) / len(values) / 1000
    return CrCounts(counts, medians)
