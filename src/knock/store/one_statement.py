"""Transactions of one statement, for `Database.run_statement`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Executable, Row, Table, func, select
from sqlalchemy.sql.expression import ColumnElement

Params = dict[str, Any] | list[dict[str, Any]] | None


def rowcount(conn: Connection, stmt: Executable, params: Params = None) -> int:
    return conn.execute(stmt, params).rowcount


def first(conn: Connection, stmt: Executable, params: Params = None) -> Row[Any] | None:
    return conn.execute(stmt, params).first()


def all_rows(conn: Connection, stmt: Executable) -> Sequence[Row[Any]]:
    return conn.execute(stmt).all()


def count(conn: Connection, table: Table, *where: ColumnElement[bool] | None) -> int:
    """Rows of *table* matching every condition in *where* (None: no condition)."""
    stmt = select(func.count()).select_from(table)
    for condition in where:
        if condition is not None:
            stmt = stmt.where(condition)
    return int(conn.execute(stmt).scalar_one())
