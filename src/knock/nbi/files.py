"""GenieACS's file documents and upload headers (`PUT /files/<name>`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from knock.nbi.documents import iso, selects
from knock.nbi.errors import ApiError
from knock.store.files import CHUNK_SIZE, FileMeta, FileRow

_MAX_NAME = 512
# GenieACS's upload headers, by the metadata field each fills.
_HEADERS = {
    "fileType": "file_type",
    "oui": "oui",
    "productClass": "product_class",
    "version": "version",
}
_MAX_HEADER = {"file_type": 64, "oui": 16, "product_class": 256, "version": 256}


def check_file_name(name: str) -> str:
    if not name or len(name) > _MAX_NAME or not name.isprintable() or name in (".", ".."):
        raise ApiError(
            400,
            f"a file name is 1 to {_MAX_NAME} printable characters, not . or .. "
            f"(percent-encoded once in the URL), not {name!r}",
        )
    return name


def file_meta(headers: Mapping[str, str]) -> FileMeta:
    """The metadata GenieACS reads from an upload's headers (fileType, oui, productClass,
    version; HTTP header names are case-insensitive)."""
    values: dict[str, str] = {}
    for header, field in _HEADERS.items():
        value = headers.get(header, "")
        if len(value) > _MAX_HEADER[field]:
            raise ApiError(
                400, f"the {header} header holds at most {_MAX_HEADER[field]} characters"
            )
        values[field] = value
    return FileMeta(**values)


def file_document(row: FileRow, projection: Sequence[str] | None = None) -> dict[str, Any]:
    """The file as GenieACS lists one (GridFS's fields); `_id` is always there."""
    fields: dict[str, Any] = {
        "length": row.length,
        "chunkSize": CHUNK_SIZE,
        "uploadDate": iso(row.uploaded),
        "filename": row.name,
        "md5": row.md5,
        "metadata.fileType": row.file_type,
        "metadata.oui": row.oui,
        "metadata.productClass": row.product_class,
        "metadata.version": row.version,
    }
    doc: dict[str, Any] = {"_id": row.name}
    for key, value in fields.items():
        if selects(projection, key):
            parent, _, leaf = key.rpartition(".")
            (doc.setdefault(parent, {}) if parent else doc)[leaf] = value
    return doc
