"""From a download task naming a stored file (GenieACS's `{"name": "download", "file": ...}`)
to the Download RPC's fields: where the file server serves it, its type, size and credentials."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from knock.store.files import FileRow


@dataclass(frozen=True, slots=True)
class FileLinks:
    """How CPEs reach the file server."""

    base_url: str  # ends in "/"
    username: str = ""  # a shared pair every device is given
    password: str = ""
    per_device: bool = False  # instead, each device its own CWMP pair (files_device_auth)

    def url(self, name: str) -> str:
        return self.base_url + quote(name, safe="")


def stored_file_name(spec: Mapping[str, Any]) -> str | None:
    """The stored file a download task names: `file`, or a `fileName` given without a `url`
    (older scripts' form); None when it gives the device a URL of its own."""
    if spec.get("name") != "download" or spec.get("url"):
        return None
    name = spec.get("file") or spec.get("fileName")
    return str(name) if name else None


def resolve_download(
    spec: Mapping[str, Any],
    row: FileRow,
    links: FileLinks,
    device_pair: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """The task with the stored file filled in; what the task gives itself wins (a fileType
    other than the upload's, credentials of another server). *device_pair*: the CWMP
    credentials the device authenticated its session with, given when `links.per_device`."""
    filled: dict[str, Any] = {
        "url": links.url(row.name),
        "fileType": row.file_type,
        "fileSize": row.length,
    }
    shared = (links.username, links.password)
    username, password = device_pair if links.per_device and device_pair else shared
    if password:
        filled |= {"username": username, "password": password}
    return filled | {
        k: v for k, v in spec.items() if k not in ("file", "fileName") and v not in ("", None)
    }
