"""Device tags and presets in the store (`schema.device_tags`, `schema.presets`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from knock.store.database import Database
from knock.store.errors import UnknownDeviceError
from knock.store.one_statement import all_rows as _all
from knock.store.one_statement import count as _count
from knock.store.one_statement import rowcount as _rowcount
from knock.store.schema import device_tags, presets

_IN_CHUNK = 1000  # SQLite's bound-value limit, as for parameters


@dataclass(frozen=True, slots=True)
class PresetRow:
    name: str
    weight: int
    doc: dict[str, Any]  # the preset as the NBI took it


async def add_tags(db: Database, device_id: str, tags: Iterable[str]) -> None:
    """Tag the device; a tag it has already is kept as it is."""
    try:
        await db.run(_add_tags, device_id, sorted(set(tags)))
    except IntegrityError as exc:
        raise UnknownDeviceError(device_id, "tag it") from exc


def _add_tags(conn: Connection, device_id: str, tags: list[str]) -> None:
    have = set(
        conn.execute(select(device_tags.c.tag).where(device_tags.c.device_id == device_id))
        .scalars()
        .all()
    )
    new = [{"device_id": device_id, "tag": tag} for tag in tags if tag not in have]
    if new:
        conn.execute(insert(device_tags), new)


async def delete_tags(db: Database, device_id: str, tags: Iterable[str]) -> int:
    stmt = delete(device_tags).where(
        device_tags.c.device_id == device_id, device_tags.c.tag.in_(sorted(set(tags)))
    )
    return await db.run_statement(_rowcount, stmt)


async def tags_of(db: Database, device_ids: Sequence[str]) -> dict[str, list[str]]:
    """Each device's tags, sorted; devices without tags are left out."""
    found: dict[str, list[str]] = {}
    ids = list(device_ids)
    for start in range(0, len(ids), _IN_CHUNK):
        stmt = (
            select(device_tags.c.device_id, device_tags.c.tag)
            .where(device_tags.c.device_id.in_(ids[start : start + _IN_CHUNK]))
            .order_by(device_tags.c.device_id, device_tags.c.tag)
        )
        for row in await db.run_statement(_all, stmt):
            found.setdefault(row.device_id, []).append(row.tag)
    return found


async def put_preset(db: Database, name: str, weight: int, doc: dict[str, Any]) -> None:
    await db.run(_put_preset, name, weight, doc)


def _put_preset(conn: Connection, name: str, weight: int, doc: dict[str, Any]) -> None:
    changed = conn.execute(
        update(presets).where(presets.c.name == name).values(weight=weight, doc=doc)
    ).rowcount
    if not changed:
        conn.execute(insert(presets).values(name=name, weight=weight, doc=doc))


def _in_order(where: ColumnElement[bool] | None = None) -> Select[Any]:
    """Presets lightest first (the order they are applied in), then by name."""
    stmt = select(presets) if where is None else select(presets).where(where)
    return stmt.order_by(presets.c.weight, presets.c.name)


async def list_presets(db: Database) -> list[PresetRow]:
    """Every preset, for the ACS's sessions."""
    return [PresetRow(**row._mapping) for row in await db.run_statement(_all, _in_order())]


async def find_presets(
    db: Database, where: ColumnElement[bool] | None, skip: int = 0, limit: int | None = None
) -> list[PresetRow]:
    """The presets matching `where` (over `schema.presets`): an NBI read (Database.read)."""
    stmt = _in_order(where).offset(skip).limit(limit)
    return [PresetRow(**row._mapping) for row in await db.read(_all, stmt)]


async def count_presets(db: Database, where: ColumnElement[bool] | None) -> int:
    return await db.read(_count, presets, where)


async def delete_preset(db: Database, name: str) -> bool:
    return await db.run_statement(_rowcount, delete(presets).where(presets.c.name == name)) > 0
