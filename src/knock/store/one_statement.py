"""Transactions of one statement, for `Database.run_statement`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Executable, Row

Params = dict[str, Any] | list[dict[str, Any]] | None


def rowcount(conn: Connection, stmt: Executable, params: Params = None) -> int:
    return conn.execute(stmt, params).rowcount


def first(conn: Connection, stmt: Executable, params: Params = None) -> Row[Any] | None:
    return conn.execute(stmt, params).first()


def all_rows(conn: Connection, stmt: Executable) -> Sequence[Row[Any]]:
    return conn.execute(stmt).all()
