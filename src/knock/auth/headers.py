"""Parsing and rendering of HTTP authentication headers (RFC 7235 §2.1, §4.1).

`WWW-Authenticate` and `Authorization` share one grammar: an auth-scheme followed by either a
token68 or a comma-separated list of auth-params. Commas also separate challenges, so a comma
ends the current challenge only when what follows it is not ``name=``.

The parser is lenient where deployed CPEs are sloppy (whitespace around ``=`` and commas, empty
list elements, any letter case in scheme and parameter names, unquoted values holding characters
a token may not) and strict where leniency would be unsafe (control characters, unterminated
quoted strings, duplicate parameters). Every failure is an `AuthError`, never another exception.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TOKEN68_ALONE = re.compile(r"([A-Za-z0-9\-._~+/]+=*)[ \t]*(?=,|$)")
_PARAM_START = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+[ \t]*=")
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"', re.DOTALL)
_QUOTED_PAIR = re.compile(r"\\(.)", re.DOTALL)
_BARE_VALUE = re.compile(r'[^\s,"]+')
_OWS = re.compile(r"[ \t]*")
_SEPARATORS = re.compile(r"[ \t,]*")
# A CR or LF inside a value would let a caller that copies it into a response split headers;
# a lone surrogate (an undecodable byte smuggled through surrogateescape) could not be hashed.
_FORBIDDEN = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\ud800-\udfff]")


class AuthError(ValueError):
    """An authentication header that cannot be parsed or answered."""


@dataclass(frozen=True)
class Challenge:
    """One challenge of `WWW-Authenticate`, or the credentials of `Authorization`.

    ``scheme`` and the parameter names are lower-cased; values are unquoted and unescaped.
    """

    scheme: str
    params: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    token68: str | None = None


class _Cursor:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos : self.pos + 1]

    def take(self, pattern: re.Pattern[str]) -> re.Match[str] | None:
        match = pattern.match(self.text, self.pos)
        if match:
            self.pos = match.end()
        return match

    def looking_at(self, pattern: re.Pattern[str]) -> bool:
        return pattern.match(self.text, self.pos) is not None


def parse_challenges(value: str) -> list[Challenge]:
    """Parse a `WWW-Authenticate` value holding one or more challenges."""
    if _FORBIDDEN.search(value):
        raise AuthError("control character or undecodable byte in header")
    cursor = _Cursor(value)
    challenges: list[Challenge] = []
    cursor.take(_SEPARATORS)
    while not cursor.at_end():
        challenges.append(_challenge(cursor))
        cursor.take(_SEPARATORS)
    if not challenges:
        raise AuthError("no authentication scheme")
    return challenges


def parse_credentials(value: str) -> Challenge:
    """Parse an `Authorization` value: exactly one scheme with its parameters or token68."""
    challenges = parse_challenges(value)
    if len(challenges) != 1:
        raise AuthError("more than one authentication scheme")
    return challenges[0]


def _challenge(cursor: _Cursor) -> Challenge:
    scheme = cursor.take(_TOKEN)
    if scheme is None:
        raise AuthError(f"expected an authentication scheme at offset {cursor.pos}")
    if cursor.at_end() or cursor.peek() == ",":
        return Challenge(scheme[0].lower())
    if cursor.peek() not in (" ", "\t"):
        raise AuthError(f"expected a space after the scheme {scheme[0]!r}")
    cursor.take(_OWS)
    if cursor.at_end() or cursor.peek() == ",":
        return Challenge(scheme[0].lower())
    token68 = cursor.take(_TOKEN68_ALONE)
    if token68:
        return Challenge(scheme[0].lower(), token68=token68[1])
    params: dict[str, str] = {}
    while True:
        name, value = _param(cursor)
        if name in params:
            raise AuthError(f"parameter {name!r} given twice")
        params[name] = value
        cursor.take(_OWS)
        if cursor.at_end():
            break
        if cursor.peek() != ",":
            raise AuthError(f"expected a comma after parameter {name!r}")
        after_value = cursor.pos
        cursor.take(_SEPARATORS)
        if cursor.at_end() or not cursor.looking_at(_PARAM_START):
            cursor.pos = after_value
            break
    return Challenge(scheme[0].lower(), MappingProxyType(params))


def _param(cursor: _Cursor) -> tuple[str, str]:
    name = cursor.take(_TOKEN)
    if name is None:
        raise AuthError(f"expected a parameter name at offset {cursor.pos}")
    cursor.take(_OWS)
    if cursor.peek() != "=":
        raise AuthError(f"expected '=' after {name[0]!r}")
    cursor.pos += 1
    cursor.take(_OWS)
    if cursor.peek() == '"':
        quoted = cursor.take(_QUOTED)
        if quoted is None:
            raise AuthError(f"unterminated quoted string for {name[0]!r}")
        return name[0].lower(), _QUOTED_PAIR.sub(r"\1", quoted[1])
    bare = cursor.take(_BARE_VALUE)
    if bare is None:
        raise AuthError(f"no value for {name[0]!r}")
    return name[0].lower(), bare[0]


def quote(value: str) -> str:
    """Render *value* as a quoted-string."""
    if _FORBIDDEN.search(value):
        raise AuthError("control character or undecodable byte in header value")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def auth_param(name: str, value: str, *, quoted: bool = True) -> str:
    """Render one ``name=value`` pair; unquoted values must be tokens."""
    if quoted:
        return f"{name}={quote(value)}"
    if not _TOKEN.fullmatch(value):
        raise AuthError(f"{value!r} is not a token")
    return f"{name}={value}"
