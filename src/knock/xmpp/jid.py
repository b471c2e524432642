"""JIDs (RFC 7622): parsing and the comparison form a router keys sessions by.

Knock applies the parts of the PRECIS profiles that decide whether two addresses are the same
(Unicode NFC; case-insensitive local and domain parts, case-sensitive resource) and refuses the
characters RFC 7622 forbids. Device and ACS accounts are ASCII in practice, so the finer points
of PRECIS (width mapping, bidi rules) are left out.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Final

MAX_PART_BYTES = 1023
_LOCAL_FORBIDDEN: Final = re.compile(r"[\"&'/:<>@\s\x00-\x1f\x7f]")
_DOMAIN_FORBIDDEN: Final = re.compile(r"[@/\s\x00-\x1f\x7f]")
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")


class JidError(ValueError):
    """Not a valid JID (the stanza error is `jid-malformed`)."""


@dataclass(frozen=True, slots=True)
class Jid:
    local: str
    domain: str
    resource: str = ""

    @property
    def bare(self) -> Jid:
        return Jid(self.local, self.domain)

    @property
    def is_full(self) -> bool:
        return bool(self.resource)

    def __str__(self) -> str:
        text = f"{self.local}@{self.domain}" if self.local else self.domain
        return f"{text}/{self.resource}" if self.resource else text


def _bounded(part: str, what: str) -> str:
    if not part:
        raise JidError(f"empty {what}")
    if len(part.encode()) > MAX_PART_BYTES:
        raise JidError(f"{what} over {MAX_PART_BYTES} bytes")
    return part


def localpart(text: str) -> str:
    part = _bounded(unicodedata.normalize("NFC", text).lower(), "localpart")
    if _LOCAL_FORBIDDEN.search(part):
        raise JidError(f"localpart {text!r} holds a forbidden character")
    return part


def domainpart(text: str) -> str:
    part = _bounded(unicodedata.normalize("NFC", text).lower().removesuffix("."), "domainpart")
    if _DOMAIN_FORBIDDEN.search(part):
        raise JidError(f"domainpart {text!r} holds a forbidden character")
    return part


def resourcepart(text: str) -> str:
    part = _bounded(unicodedata.normalize("NFC", text), "resourcepart")
    if _CONTROL.search(part):
        raise JidError("resourcepart holds a control character")
    return part


def parse_jid(text: str) -> Jid:
    """Split and normalize `[local@]domain[/resource]` (RFC 7622 §3.1)."""
    bare, slash, resource = text.partition("/")
    local, at, domain = bare.rpartition("@")
    return Jid(
        localpart(local) if at else "",
        domainpart(domain),
        resourcepart(resource) if slash else "",
    )


def allowed_sender(sender: str, allowed: str) -> bool:
    """Whether ConnReqAllowedJabberIDs (*allowed*, comma-separated) admits *sender* (Annex K):
    an empty list allows all; a full JID matches exactly, a bare one any resource of it. JIDs
    compare normalized (RFC 7622), never by prefix."""
    entries = [entry.strip() for entry in allowed.split(",") if entry.strip()]
    if not entries:
        return True
    try:
        jid = parse_jid(sender)
    except JidError:
        return False
    return any(_admits(entry, jid) for entry in entries)


def _admits(entry: str, jid: Jid) -> bool:
    try:
        allowed = parse_jid(entry)
    except JidError:
        return False
    return jid == allowed or (not allowed.is_full and jid.bare == allowed)
