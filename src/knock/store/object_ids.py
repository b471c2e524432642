"""Task ids as the NBI shows them: opaque, never reused, shaped like MongoDB's ObjectIds.

GenieACS's task ids are ObjectIds (24 lowercase hex digits) and scripts check that shape. An
ObjectId is 4 bytes of Unix seconds, 5 random bytes fixed per process and a 3-byte counter
that starts at random: ids made in one process never repeat (until the counter wraps within
one second, 16 million ids), and two processes sharing one PostgreSQL differ in their random
bytes. The store's unique index catches the rest.
"""

from __future__ import annotations

import itertools
import os
import re
from datetime import datetime

OBJECT_ID = re.compile(r"[0-9a-f]{24}")
EXAMPLE = "6656f3a2c1d4e5f6a7b8c9d0"  # for messages and the OpenAPI description


class _Source:
    """This process's random bytes and counter."""

    def __init__(self) -> None:
        self.process = os.urandom(5)
        self.counter = itertools.count(int.from_bytes(os.urandom(3), "big"))


_source = _Source()


def _after_fork() -> None:
    # `knock serve --workers` forks after import: each worker needs bytes of its own, or two
    # workers hand out the same ids in the same second.
    global _source
    _source = _Source()


os.register_at_fork(after_in_child=_after_fork)


def new_object_id(now: datetime) -> str:
    seconds = int(now.timestamp()) & 0xFFFFFFFF
    source = _source
    count = next(source.counter) & 0xFFFFFF
    return (seconds.to_bytes(4, "big") + source.process + count.to_bytes(3, "big")).hex()
