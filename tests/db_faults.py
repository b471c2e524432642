"""Database faults the tests cause on purpose, on a real SQLite file or PostgreSQL server."""

from __future__ import annotations

import sqlite3

import asyncpg

# The database refuses credentials; the refusal's own message names no value.
_SQLITE_TRIGGER = """
CREATE TRIGGER refuse_credentials BEFORE UPDATE ON devices
WHEN NEW.cr_password IS NOT NULL OR NEW.stun_password IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'credentials refused'); END
"""
_PG_CHECK = (
    "ALTER TABLE devices ADD CONSTRAINT refuse_credentials "
    "CHECK (cr_password IS NULL AND stun_password IS NULL)"
)


async def refuse_credentials(db_url: str) -> None:
    """Make the database refuse every write of a password, as a broken database might."""
    if db_url.startswith("sqlite"):
        with sqlite3.connect(db_url.split(":///", 1)[1]) as conn:
            conn.execute(_SQLITE_TRIGGER)
        return
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute(_PG_CHECK)
    finally:
        await conn.close()
