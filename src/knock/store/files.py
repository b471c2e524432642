"""Files CPEs download, kept in the store's database as chunks (`schema.files`, `file_chunks`),
or their bytes in a directory (`file_folder`, files_dir) beside the rows.

An upload streams in one chunk per transaction under a row without a name, and takes the name
in its last transaction, replacing the file of that name whole: a download that is under way
reads the file it started with (by id) or stops short, never a mix of two uploads.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.sql.expression import ColumnElement

from knock.store.database import Database
from knock.store.one_statement import all_rows as _all
from knock.store.one_statement import count as _count
from knock.store.one_statement import first as _first
from knock.store.one_statement import rowcount as _rowcount
from knock.store.schema import file_chunks, files

if TYPE_CHECKING:
    from knock.store.file_folder import FileFolder

CHUNK_SIZE = 256 * 1024
MAX_FILE_SIZE = 2**32 - 1  # TR-069's FileSize is an unsignedInt
# An upload whose process died leaves a row without a name; the next upload removes it after
# this long (an upload still streaming is younger).
_ABANDONED_AFTER = timedelta(days=1)


class FileTooLarge(ValueError):
    """An upload past MAX_FILE_SIZE bytes."""


@dataclass(frozen=True, slots=True)
class FileMeta:
    """What GenieACS's upload headers say of a file."""

    file_type: str = ""
    oui: str = ""
    product_class: str = ""
    version: str = ""


@dataclass(frozen=True, slots=True)
class FileRow:
    id: int
    name: str
    file_type: str
    oui: str
    product_class: str
    version: str
    length: int
    md5: str
    uploaded: datetime


async def put_file(
    db: Database,
    folder: FileFolder | None,
    name: str,
    meta: FileMeta,
    chunks: AsyncIterable[bytes],
    now: datetime,
) -> FileRow:
    """Store the bytes *chunks* yields as file *name* (in *folder*, or the database when
    None), replacing any file of that name once the last byte is in. Raises FileTooLarge past
    MAX_FILE_SIZE; nothing is kept then."""
    abandoned = files.c.name.is_(None), files.c.uploaded < now - _ABANDONED_AFTER
    await _delete(db, folder, *abandoned)
    row = await db.run_statement(
        _first,
        insert(files)
        .values(
            name=None,
            file_type=meta.file_type,
            oui=meta.oui,
            product_class=meta.product_class,
            version=meta.version,
            uploaded=now,
        )
        .returning(files.c.id),
    )
    assert row is not None  # INSERT ... RETURNING returns the row it inserted
    file_id = int(row.id)
    try:
        if folder is None:
            length, md5 = await _write_chunks(db, file_id, chunks)
        else:
            length, md5 = await folder.write(file_id, chunks)
        stored, replaced = await db.run(_name_upload, file_id, name, length, md5)
    except BaseException:
        await _delete(db, folder, files.c.id == file_id)
        raise
    if folder is not None:
        folder.remove(replaced)
    return stored


async def _delete(db: Database, folder: FileFolder | None, *where: ColumnElement[bool]) -> int:
    """Delete the file rows matching *where* with their bytes; how many."""
    stmt = delete(files).where(*where)
    if folder is None:  # the chunks go with the rows (ON DELETE CASCADE)
        return await db.run_statement(_rowcount, stmt)
    ids = [row.id for row in await db.run_statement(_all, stmt.returning(files.c.id))]
    folder.remove(ids)
    return len(ids)


async def _write_chunks(
    db: Database, file_id: int, chunks: AsyncIterable[bytes]
) -> tuple[int, str]:
    digest = hashlib.md5(usedforsecurity=False)
    buffer = bytearray()
    length = seq = 0
    async for data in chunks:
        length += len(data)
        if length > MAX_FILE_SIZE:
            raise FileTooLarge(f"a file holds at most {MAX_FILE_SIZE} bytes")
        digest.update(data)
        buffer += data
        while len(buffer) >= CHUNK_SIZE:
            await _write_chunk(db, file_id, seq, bytes(buffer[:CHUNK_SIZE]))
            del buffer[:CHUNK_SIZE]
            seq += 1
    if buffer:
        await _write_chunk(db, file_id, seq, bytes(buffer))
    return length, digest.hexdigest()


async def _write_chunk(db: Database, file_id: int, seq: int, data: bytes) -> None:
    await db.run_statement(
        _rowcount, insert(file_chunks).values(file_id=file_id, seq=seq, data=data)
    )


def _name_upload(
    conn: Connection, file_id: int, name: str, length: int, md5: str
) -> tuple[FileRow, list[int]]:
    """The upload takes its name; the ids of the file it replaced."""
    replaced = conn.execute(delete(files).where(files.c.name == name).returning(files.c.id))
    old = [r.id for r in replaced]
    row = conn.execute(
        update(files)
        .where(files.c.id == file_id)
        .values(name=name, length=length, md5=md5)
        .returning(*files.c)
    ).one()
    return FileRow(**row._mapping), old


async def get_file(db: Database, name: str) -> FileRow | None:
    row = await db.run_statement(_first, select(files).where(files.c.name == name))
    return None if row is None else FileRow(**row._mapping)


async def find_files(
    db: Database, where: ColumnElement[bool] | None, skip: int = 0, limit: int | None = None
) -> list[FileRow]:
    stmt = select(files).where(files.c.name.is_not(None))
    if where is not None:
        stmt = stmt.where(where)
    stmt = stmt.order_by(files.c.name).offset(skip).limit(limit)
    rows = await db.run_statement(_all, stmt)
    return [FileRow(**row._mapping) for row in rows]


async def count_files(db: Database, where: ColumnElement[bool] | None) -> int:
    return await db.read(_count, files, files.c.name.is_not(None), where)


async def delete_file(db: Database, folder: FileFolder | None, name: str) -> bool:
    return await _delete(db, folder, files.c.name == name) > 0


def read_file(
    db: Database, folder: FileFolder | None, file_id: int, start: int, end: int
) -> AsyncIterator[bytes]:
    """Bytes [start, end) of the file, a chunk at a time."""
    return (
        _read_chunks(db, file_id, start, end)
        if folder is None
        else folder.read(file_id, start, end)
    )


async def _read_chunks(db: Database, file_id: int, start: int, end: int) -> AsyncIterator[bytes]:
    """From the database; stops short if the file is deleted meanwhile (the reader sees fewer
    bytes than it was promised)."""
    position = start
    while position < end:
        seq, offset = divmod(position, CHUNK_SIZE)
        row = await db.run_statement(
            _first,
            select(file_chunks.c.data).where(
                file_chunks.c.file_id == file_id, file_chunks.c.seq == seq
            ),
        )
        if row is None:
            return
        data = bytes(row.data)[offset : offset + end - position]
        if not data:
            return
        position += len(data)
        yield data
