"""The NBI's task ids: ObjectId-shaped, unique within a process and across forked workers."""

from __future__ import annotations

import os
from datetime import UTC, datetime

from knock.store.object_ids import OBJECT_ID, new_object_id

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def test_an_id_is_an_object_id_whose_first_bytes_are_the_time() -> None:
    made = new_object_id(NOW)
    assert OBJECT_ID.fullmatch(made)
    assert int(made[:8], 16) == int(NOW.timestamp())


def test_ids_made_in_one_second_differ() -> None:
    made = [new_object_id(NOW) for _ in range(10_000)]
    assert len(set(made)) == len(made)


def test_a_forked_worker_makes_ids_of_its_own() -> None:
    """`knock serve --workers` forks after import; a worker must not repeat the parent's ids."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next id and leave at once
        os.write(write, new_object_id(NOW).encode())
        os._exit(0)
    os.close(write)
    mine = new_object_id(NOW)
    with os.fdopen(read, "rb") as pipe:
        theirs = pipe.read().decode()
    os.waitpid(pid, 0)
    assert OBJECT_ID.fullmatch(theirs)
    assert theirs[8:18] != mine[8:18]  # the per-process bytes
