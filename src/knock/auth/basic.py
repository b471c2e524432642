"""HTTP Basic authentication (RFC 7617), for peers that cannot do Digest.

Basic sends the password in clear, so both sides use it only when their caller opts in.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

from knock.auth.headers import AuthError, auth_param, quote


def basic_challenge(realm: str) -> str:
    """The `WWW-Authenticate` value inviting Basic credentials for *realm*."""
    return f"Basic realm={quote(realm)}, {auth_param('charset', 'UTF-8')}"


def basic_authorization(username: str, password: str) -> str:
    """The `Authorization` value carrying *username* and *password*."""
    if ":" in username:
        raise AuthError("a Basic username cannot contain ':'")
    pair = f"{username}:{password}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


@dataclass(frozen=True)
class BasicCredentials:
    username: str
    password: str = field(repr=False)


def parse_basic(token68: str | None) -> BasicCredentials:
    """Decode the token68 of Basic credentials."""
    if token68 is None:
        raise AuthError("Basic credentials without a token")
    try:
        pair = base64.b64decode(token68, validate=True).decode()
    except ValueError as exc:
        raise AuthError("Basic credentials are not base64 of UTF-8") from exc
    username, colon, password = pair.partition(":")
    if not colon:
        raise AuthError("Basic credentials without ':'")
    return BasicCredentials(username, password)


@dataclass(frozen=True)
class BasicChallenge:
    """A Basic challenge a client chose to answer."""

    realm: str

    def authorization(self, username: str, password: str) -> str:
        return basic_authorization(username, password)
