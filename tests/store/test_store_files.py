"""Files in the store: streamed in chunks, replaced whole, read by range."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from pathlib import Path

import pytest

from knock.store import Store
from knock.store.files import CHUNK_SIZE, FileMeta
from knock.store.one_statement import all_rows as _all
from knock.store.schema import file_chunks

META = FileMeta("1 Firmware Upgrade Image", "001122", "Router", "2.0")


async def pieces(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def read(store: Store, file_id: int, start: int, end: int) -> bytes:
    return b"".join([part async for part in store.read_file(file_id, start, end)])


def image(length: int) -> bytes:
    return hashlib.sha256(b"seed").digest() * (length // 32) + b"x" * (length % 32)


async def test_a_file_is_stored_in_chunks_and_read_back_by_range(
    store: Store, now: datetime
) -> None:
    data = image(2 * CHUNK_SIZE + 1000)
    # Pieces that do not line up with the chunks, as a socket delivers them.
    row = await store.put_file("fw.bin", META, pieces(data, 70_001), now)
    assert (row.name, row.length, row.md5) == ("fw.bin", len(data), hashlib.md5(data).hexdigest())
    assert (row.file_type, row.oui, row.product_class, row.version) == (
        "1 Firmware Upgrade Image",
        "001122",
        "Router",
        "2.0",
    )
    assert row.uploaded == now
    stored = await store._db.run(_all, file_chunks.select().where(file_chunks.c.file_id == row.id))
    assert [len(chunk.data) for chunk in stored] == [CHUNK_SIZE, CHUNK_SIZE, 1000]
    assert await read(store, row.id, 0, len(data)) == data
    for start, end in [(0, 1), (CHUNK_SIZE - 5, CHUNK_SIZE + 5), (len(data) - 10, len(data))]:
        assert await read(store, row.id, start, end) == data[start:end]
    assert await store.get_file("fw.bin") == row


async def test_an_upload_replaces_the_file_of_its_name_whole(store: Store, now: datetime) -> None:
    first = await store.put_file("cfg", FileMeta(version="1"), pieces(b"one", 2), now)
    second = await store.put_file("cfg", FileMeta(version="2"), pieces(b"second", 4), now)
    assert [(f.name, f.version, f.length) for f in await store.find_files(None)] == [
        ("cfg", "2", 6)
    ]
    assert await read(store, first.id, 0, 3) == b""  # the old chunks went with their file
    assert await read(store, second.id, 0, 6) == b"second"


async def test_a_failed_upload_leaves_the_stored_file_as_it_was(
    store: Store, now: datetime
) -> None:
    kept = await store.put_file("fw.bin", META, pieces(b"good", 4), now)

    async def broken() -> AsyncIterator[bytes]:
        yield b"x" * CHUNK_SIZE
        raise ConnectionResetError("the client went away")

    with pytest.raises(ConnectionResetError):
        await store.put_file("fw.bin", META, broken(), now)
    assert await store.find_files(None) == [kept]
    orphans = await store._db.run(_all, file_chunks.select())
    assert [chunk.file_id for chunk in orphans] == [kept.id]


async def test_files_are_listed_by_name_and_deleted(store: Store, now: datetime) -> None:
    names: Iterable[str] = ("b.bin", "a.bin", "c.cfg")
    for name in names:
        await store.put_file(name, META, pieces(name.encode(), 3), now)
    assert [f.name for f in await store.find_files(None, skip=1, limit=1)] == ["b.bin"]
    assert await store.delete_file("a.bin") is True
    assert await store.delete_file("a.bin") is False
    assert [f.name for f in await store.find_files(None)] == ["b.bin", "c.cfg"]
    assert await store.get_file("a.bin") is None


@pytest.fixture
async def foldered(db_url: str, tmp_path: Path) -> AsyncIterator[tuple[Store, Path]]:
    """A store keeping files' bytes in a directory (files_dir)."""
    folder = tmp_path / "files"
    opened = await Store.open(db_url, file_folder=folder)
    yield opened, folder
    await opened.close()


async def test_a_folder_holds_the_bytes_and_the_database_the_rows(
    foldered: tuple[Store, Path], now: datetime
) -> None:
    store, folder = foldered
    data = image(2 * CHUNK_SIZE + 1000)
    row = await store.put_file("fw.bin", META, pieces(data, 70_001), now)
    assert (row.length, row.md5) == (len(data), hashlib.md5(data).hexdigest())
    assert sorted(p.name for p in folder.iterdir()) == [str(row.id)]
    assert (folder / str(row.id)).read_bytes() == data
    assert await store._db.run(_all, file_chunks.select()) == []
    for start, end in [
        (0, len(data)),
        (CHUNK_SIZE - 5, CHUNK_SIZE + 5),
        (len(data) - 1, len(data)),
    ]:
        assert await read(store, row.id, start, end) == data[start:end]
    assert await store.find_files(None) == [row]

    second = await store.put_file("fw.bin", META, pieces(b"second", 4), now)  # replaces it
    assert sorted(p.name for p in folder.iterdir()) == [str(second.id)]
    assert await read(store, row.id, 0, 10) == b""

    async def broken() -> AsyncIterator[bytes]:
        yield b"x" * CHUNK_SIZE
        raise ConnectionResetError("the client went away")

    with pytest.raises(ConnectionResetError):
        await store.put_file("fw.bin", META, broken(), now)
    assert sorted(p.name for p in folder.iterdir()) == [str(second.id)]  # no .part left
    assert await store.find_files(None) == [second]
    assert await store.delete_file("fw.bin") is True
    assert list(folder.iterdir()) == []
