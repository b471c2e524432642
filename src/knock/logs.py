"""Log set-up for the long-running commands: text for people, JSON lines for log collectors.

A record's structured fields travel in `extra=fields(...)`: the text format shows only the
message (which already says it all), the JSON format adds each field beside ts, level, logger and
msg. Fields hold ids, outcomes and figures, never credentials.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Final, TextIO

FORMATS: Final = ("text", "json")
LEVELS: Final = ("debug", "info", "warning", "error")
_FIELDS: Final = "knock_fields"
_TEXT: Final = "%(asctime)s %(levelname)s %(name)s %(message)s"


def fields(**values: Any) -> dict[str, Any]:
    """`extra=` for a log call whose JSON line carries these fields."""
    return {_FIELDS: values}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts (UTC, ISO 8601), level, logger, msg, then the fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name, value in getattr(record, _FIELDS, {}).items():
            line.setdefault(name, value)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def setup_logging(level: str, format: str, stream: TextIO | None = None) -> None:
    """Send every logger's records at *level* and above to *stream* (stderr) as *format*."""
    if format not in FORMATS:
        raise ValueError(f"log format {format!r}: use text or json")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if format == "json" else logging.Formatter(_TEXT))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
