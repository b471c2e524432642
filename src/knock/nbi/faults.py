"""GenieACS's fault documents: each faulted task is one fault on its channel "task_<id>"."""

from __future__ import annotations

from typing import Any

from knock.nbi.documents import iso
from knock.store.rows import TaskRow


def fault_code(code: str | None) -> str:
    """A device's CWMP fault as GenieACS names it ("cwmp.9005"); Knock's own ("knock", a
    session's end such as "timeout") as they are."""
    text = code or ""
    return f"cwmp.{text}" if text.isdigit() else text


def fault_document(row: TaskRow) -> dict[str, Any]:
    channel = f"task_{row.public_id}"
    return {
        "_id": f"{row.device_id}:{channel}",
        "device": row.device_id,
        "channel": channel,
        "code": fault_code(row.fault_code),
        "message": row.fault_string or "",
        "detail": row.fault_detail,
        "retries": row.attempts,
        "timestamp": iso(row.finished or row.created),
    }
