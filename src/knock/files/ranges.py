"""HTTP Range requests (RFC 9110 §14) of one byte range, sans-IO."""

from __future__ import annotations

import re
from dataclasses import dataclass

_ONE_RANGE = re.compile(r"bytes=([0-9]{0,19})-([0-9]{0,19})")


class Unsatisfiable(ValueError):
    """A range that lies past the end of the file: the answer is 416."""


@dataclass(frozen=True, slots=True)
class ByteRange:
    start: int
    end: int  # exclusive

    def content_range(self, length: int) -> str:
        return f"bytes {self.start}-{self.end - 1}/{length}"


def parse_range(header: str | None, length: int) -> ByteRange | None:
    """The one range *header* asks for in a file of *length* bytes; None for the whole file
    (no header, several ranges or a form this server does not read: RFC 9110 lets a server
    ignore Range). Raises Unsatisfiable when the range starts past the end."""
    if header is None:
        return None
    match = _ONE_RANGE.fullmatch(header.strip().replace(" ", ""))
    if match is None:
        return None
    first, last = match.groups()
    if not first:
        if not last:
            return None
        suffix = int(last)  # the last N bytes
        if suffix == 0:
            raise Unsatisfiable(header)
        return ByteRange(max(0, length - suffix), length)
    start = int(first)
    end = length if not last else min(length, int(last) + 1)
    if last and int(last) < start:
        return None  # invalid: ignored, the whole file is sent
    if start >= length:
        raise Unsatisfiable(header)
    return ByteRange(start, end)
