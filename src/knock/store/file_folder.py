"""Stored files' bytes in a directory (files_dir) instead of the database's chunk table: one
file per upload, named by its row's id, written as `<id>.part` and renamed once whole, so a
reader never sees half an upload. The rows (name, metadata, length, md5) stay in the database.

Disk I/O runs in the loop's default executor, a chunk at a time, as the database's chunks do.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from pathlib import Path
from typing import BinaryIO

from knock.store.files import CHUNK_SIZE, MAX_FILE_SIZE, FileTooLarge


class FileFolder:
    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self._folder = folder

    def _path(self, file_id: int) -> Path:
        return self._folder / str(file_id)

    async def write(self, file_id: int, chunks: AsyncIterable[bytes]) -> tuple[int, str]:
        """Write the upload; (length, md5 hex). Raises FileTooLarge past MAX_FILE_SIZE."""
        part = self._folder / f"{file_id}.part"
        digest = hashlib.md5(usedforsecurity=False)
        length = 0
        handle = await asyncio.to_thread(part.open, "wb")
        try:
            async for data in chunks:
                length += len(data)
                if length > MAX_FILE_SIZE:
                    raise FileTooLarge(f"a file holds at most {MAX_FILE_SIZE} bytes")
                digest.update(data)
                await asyncio.to_thread(handle.write, data)
            await asyncio.to_thread(_sync_close, handle)
            await asyncio.to_thread(os.replace, part, self._path(file_id))
        except BaseException:
            handle.close()
            part.unlink(missing_ok=True)
            raise
        return length, digest.hexdigest()

    async def read(self, file_id: int, start: int, end: int) -> AsyncIterator[bytes]:
        """Bytes [start, end); nothing when the file is gone (deleted, or stored before
        files_dir was set). A file deleted meanwhile is read to its end: it stays open."""
        try:
            handle = await asyncio.to_thread(self._path(file_id).open, "rb")
        except FileNotFoundError:
            return
        try:
            await asyncio.to_thread(handle.seek, start)
            position = start
            while position < end:
                data = await asyncio.to_thread(handle.read, min(CHUNK_SIZE, end - position))
                if not data:
                    return
                position += len(data)
                yield data
        finally:
            handle.close()

    def remove(self, file_ids: Iterable[int]) -> None:
        for file_id in file_ids:
            self._path(file_id).unlink(missing_ok=True)
            (self._folder / f"{file_id}.part").unlink(missing_ok=True)


def _sync_close(handle: BinaryIO) -> None:
    handle.flush()
    os.fsync(handle.fileno())
    handle.close()
