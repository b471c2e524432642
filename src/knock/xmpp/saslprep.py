"""SASLprep (RFC 4013): the form of user names and passwords that SCRAM and PLAIN hash.

Client libraries apply it before hashing, so a server that skipped it would refuse a non-ASCII
password its own users typed correctly.
"""

from __future__ import annotations

import stringprep
import unicodedata
from collections.abc import Callable
from typing import Final

_PROHIBITED: Final[tuple[Callable[[str], bool], ...]] = (
    stringprep.in_table_c12,
    stringprep.in_table_c21,
    stringprep.in_table_c22,
    stringprep.in_table_c3,
    stringprep.in_table_c4,
    stringprep.in_table_c5,
    stringprep.in_table_c6,
    stringprep.in_table_c7,
    stringprep.in_table_c8,
    stringprep.in_table_c9,
)


class SaslprepError(ValueError):
    """The string holds a character SASLprep prohibits."""


def saslprep(text: str, *, stored: bool = False) -> str:
    """*text* prepared for comparison; *stored* also refuses unassigned code points (§7)."""
    if text.isascii() and text.isprintable():
        return text  # printable ASCII maps to itself, and is most of what devices use
    mapped = "".join(
        " " if stringprep.in_table_c12(c) else c for c in text if not stringprep.in_table_b1(c)
    )
    prepared = unicodedata.normalize("NFKC", mapped)
    for char in prepared:
        if any(table(char) for table in _PROHIBITED):
            raise SaslprepError(f"prohibited character U+{ord(char):04X}")
        if stored and stringprep.in_table_a1(char):
            raise SaslprepError(f"unassigned character U+{ord(char):04X}")
    if any(stringprep.in_table_d1(c) for c in prepared):
        if any(stringprep.in_table_d2(c) for c in prepared):
            raise SaslprepError("mixes right-to-left and left-to-right characters")
        if not (stringprep.in_table_d1(prepared[0]) and stringprep.in_table_d1(prepared[-1])):
            raise SaslprepError("right-to-left text must start and end right-to-left")
    return prepared
