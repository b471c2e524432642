"""Carrying out what a sans-IO connection core returns, for the server's and the client's
adapters alike."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

A = TypeVar("A")


def carry_out(
    outputs: Iterable[A], write: Callable[[bytes], None], act: Callable[[A], None]
) -> None:
    """Write the bytes and perform the actions in order; consecutive bytes go out in one write,
    since a stanza often comes in several pieces and every write is a system call (or a TLS
    record)."""
    pending: list[bytes] = []
    for output in outputs:
        if isinstance(output, bytes):
            pending.append(output)
            continue
        if pending:
            write(b"".join(pending))
            pending.clear()
        act(output)
    if pending:
        write(b"".join(pending))
