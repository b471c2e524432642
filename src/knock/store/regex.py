"""GenieACS's `$regex` at a bounded cost on both stores.

PostgreSQL matches with its own engine (`~`, `~*`), stopped by the NBI's statement timeout.
SQLite has no engine of its own and would call Python's `re`, whose backtracking a pattern such
as `(a+)+b` makes exponential, out of reach of the progress handler (it runs between SQLite's
steps, not inside one call): SQLite gets `knock_regex`, RE2, which runs in time linear in the
text. Patterns are held to what both engines read alike (`check_pattern`), so that a query
answers the same on either store.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import re2
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import Boolean

MAX_PATTERN = 256  # characters; a prefix or pattern search needs far fewer
MAX_REPEAT = 255  # PostgreSQL's largest {m,n}
SQLITE_FUNCTION = "knock_regex"
_RE2_MEMORY = 1 << 20  # bytes per compiled pattern

# What PostgreSQL's AREs and RE2 read alike: an escape of punctuation, or one of the classes
# \d \D \w \W \s \S (\b, \A, \x.. and the like mean other things, or nothing, in one of them).
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_SAFE_ESCAPES = frozenset("dDwWsS")
_REPEAT = re.compile(r"\{(\d+)(?:,(\d*))?\}")


class PatternError(ValueError):
    """A $regex pattern refused; the message says what to change."""


def check_pattern(pattern: str) -> str:
    """`pattern` if both stores can match it at a bounded cost and read it alike."""
    if len(pattern) > MAX_PATTERN:
        raise PatternError(f"is {len(pattern)} characters long; the limit is {MAX_PATTERN}")
    for escape in _ESCAPE.finditer(pattern):
        char = escape.group(1)
        if char.isalnum() and char not in _SAFE_ESCAPES:
            raise PatternError(
                f"uses \\{char}, which PostgreSQL and SQLite read differently; use \\d \\w \\s "
                "(or their capitals), a class such as [0-9], or escape punctuation only"
            )
    if "(?" in pattern.replace("\\(", "").replace("(?:", ""):
        raise PatternError(
            "uses a (?...) construct; groups are (...) or (?:...), and for case-insensitive "
            'matching give "$options": "i"'
        )
    for repeat in _REPEAT.finditer(pattern):
        if any(int(n) > MAX_REPEAT for n in repeat.groups() if n):
            raise PatternError(f"repeats {repeat.group()}; at most {MAX_REPEAT} times")
    try:
        _compiled(pattern)
    except re2.error as exc:
        raise PatternError(f"is not a regular expression Knock can run: {exc}") from None
    return pattern


def with_options(pattern: str, options: str) -> str:
    """A checked pattern with MongoDB's $options: "i" (ignore case) becomes the leading
    "(?i)" both engines take; other options are refused."""
    if options not in ("", "i"):
        raise PatternError(f'takes "$options": "i" (ignore case) or none, not {options!r}')
    return "(?i)" + pattern if options == "i" else pattern


@functools.lru_cache(maxsize=64)
def _compiled(pattern: str) -> Any:
    options = re2.Options()
    options.max_mem = _RE2_MEMORY
    options.log_errors = False
    return re2.compile(pattern, options)


def sqlite_match(pattern: str | None, value: str | None) -> int | None:
    """SQLite's `knock_regex(pattern, value)`: NULL for a NULL value, as SQL compares."""
    if pattern is None or value is None:
        return None
    return int(_compiled(pattern).search(value) is not None)


class regex_match(FunctionElement[bool]):
    """regex_match(value, pattern): `value` matches the pattern (`check_pattern`, then
    `with_options`) somewhere in it, as MongoDB's $regex."""

    type = Boolean()
    inherit_cache = True
    name = "regex_match"


@compiles(regex_match, "postgresql")
def _postgresql(element: regex_match, compiler: SQLCompiler, **kw: Any) -> str:
    value, pattern = element.clauses
    return f"({compiler.process(value, **kw)} ~ {compiler.process(pattern, **kw)})"


@compiles(regex_match, "sqlite")
def _sqlite(element: regex_match, compiler: SQLCompiler, **kw: Any) -> str:
    value, pattern = element.clauses
    return f"{SQLITE_FUNCTION}({compiler.process(pattern, **kw)}, {compiler.process(value, **kw)})"
