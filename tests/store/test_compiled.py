"""The hot path's compiled statements convert values exactly as SQLAlchemy would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.dialects.sqlite.pysqlite import dialect as pysqlite_dialect

from knock.store.compiled import hot_statements
from knock.store.schema import parameters


@pytest.mark.parametrize("dialect", [pysqlite_dialect(), asyncpg_dialect()])
def test_a_kept_timestamp_converts_as_sqlalchemy_does_each_time(dialect: object) -> None:
    """A statement's timestamp conversion keeps the last datetime it converted: the same one
    again, another, the same instant in another zone and None each give SQLAlchemy's own text,
    and a naive datetime is still refused."""
    kept = hot_statements(dialect).parameter_upsert.processors["timestamp"]  # type: ignore[arg-type]
    own = parameters.c.timestamp.type.dialect_impl(dialect).bind_processor(dialect)  # type: ignore[arg-type]
    assert own is not None and kept is not own
    now = datetime(2026, 12, 3, 13, 0, 0, 250_000, tzinfo=UTC)
    later = now + timedelta(microseconds=1)
    elsewhere = now.astimezone(timezone(timedelta(hours=2)))
    values = [now, now, later, now, elsewhere, elsewhere, None, now]
    assert [kept(v) for v in values] == [own(v) for v in values]
    assert kept(now) == kept(elsewhere) != kept(later)
    with pytest.raises(ValueError, match="naive"):
        kept(now.replace(tzinfo=None))
