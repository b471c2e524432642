"""Abuse limits of the built-in XMPP server, sans-IO: every decision takes the time as an
argument, nothing here reads a clock or a socket.

* Wrong passwords cost tokens from two buckets, the account's and the source address's (an
  IPv6 address counts by its /64); with either empty, a login is answered temporary-auth-failure
  before any account is looked up, known or not. An address the account logged in from before
  has a bucket of its own for that account, so guesses from elsewhere do not lock the device
  out (see `LoginThrottle`).
* Each device connection's input is shaped (stanzas and bytes a second): over the rate, the
  adapter stops reading it until the debt is paid, so one flooding device slows itself only.
* Device accounts may address only the service accounts (the ACS) and the server: TR-069
  Annex K needs nothing else, and no device can flood or probe another.
* One device account may have `max_sessions` resources bound at once.

Service accounts (the ACS, which talks to every device and may log in from several processes)
are exempt from the shaper, the addressing rule and the session cap.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Final

from knock.xmpp.jid import Jid

# Buckets that have refilled are forgotten once the table grows past this, so a stream of
# made-up user names cannot grow it without bound.
_PRUNE_AT: Final = 4096
_KNOWN_ADDRESSES: Final = 4  # per account, the latest it logged in from


@dataclass(frozen=True, slots=True)
class Limits:
    auth_tries_account: int = 5
    auth_tries_address: int = 20
    auth_window: float = 60.0  # seconds in which a bucket refills from empty
    stanza_rate: float = 50.0  # per second, per device connection
    byte_rate: float = 65536.0
    max_sessions: int = 4  # resources bound at once, per device account
    service_accounts: frozenset[str] = field(default_factory=frozenset)

    def is_service(self, username: str) -> bool:
        return username in self.service_accounts


class Bucket:
    """A token bucket: *burst* tokens, refilled at *rate* a second, that may go into debt."""

    __slots__ = ("_at", "_burst", "_level", "_rate")

    def __init__(self, burst: float, rate: float, now: float) -> None:
        self._burst, self._rate = burst, rate
        self._level, self._at = burst, now

    def level(self, now: float) -> float:
        if now > self._at:
            self._level = min(self._burst, self._level + (now - self._at) * self._rate)
            self._at = now
        return self._level

    def take(self, amount: float, now: float) -> float:
        """Take *amount*; return when the level is back at zero (*now* if it never went below)."""
        self._level = self.level(now) - amount
        return now if self._level >= 0 else now - self._level / self._rate

    def full(self, now: float) -> bool:
        return self.level(now) >= self._burst


def address_key(address: str) -> str:
    """The unit a source address is throttled by: the address, or its /64 for IPv6."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and not ip.is_loopback:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class LoginThrottle:
    """Failed logins per account and per source address, shared by every connection.

    An account and an address it logged in from before are a known pair: a login from there
    is held back only by that pair's own failures, so neither guesses at the account from
    elsewhere nor other accounts' failures behind the same address (a carrier NAT) lock the
    device out. Loopback addresses are not counted as addresses: behind a local proxy every
    client is one."""

    __slots__ = ("_accounts", "_addresses", "_known", "_limits", "_pairs")

    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self._accounts: dict[Hashable, Bucket] = {}
        self._addresses: dict[Hashable, Bucket] = {}
        self._pairs: dict[Hashable, Bucket] = {}
        self._known: dict[str, list[str]] = {}  # account: addresses it logged in from

    def refused(self, username: str, address: str, now: float) -> bool:
        """Whether a login as *username* from *address* is refused before it is checked."""
        key = address_key(address)
        if key in self._known.get(username, ()):
            return _empty(self._pairs, (username, key), now)
        if _empty(self._accounts, username, now):
            return True
        return not _loopback(key) and _empty(self._addresses, key, now)

    def succeeded(self, username: str, address: str) -> None:
        known = self._known.setdefault(username, [])
        key = address_key(address)
        if key in known:
            known.remove(key)
        known.append(key)
        del known[:-_KNOWN_ADDRESSES]

    def failed(self, username: str, address: str, now: float) -> None:
        limits = self._limits
        key = address_key(address)
        self._charge(self._accounts, username, limits.auth_tries_account, now)
        if key in self._known.get(username, ()):
            self._charge(self._pairs, (username, key), limits.auth_tries_account, now)
        if not _loopback(key):
            self._charge(self._addresses, key, limits.auth_tries_address, now)

    def _charge(self, table: dict[Hashable, Bucket], key: Hashable, tries: int, now: float) -> None:
        bucket = table.get(key)
        if bucket is None:
            if len(table) >= _PRUNE_AT:
                for stale in [k for k, b in table.items() if b.full(now)]:
                    del table[stale]
            bucket = table[key] = Bucket(tries, tries / self._limits.auth_window, now)
        bucket.take(1, now)


def _empty(table: dict[Hashable, Bucket], key: Hashable, now: float) -> bool:
    bucket = table.get(key)
    return bucket is not None and bucket.level(now) < 1


def _loopback(key: str) -> bool:
    try:
        return ipaddress.ip_address(key).is_loopback
    except ValueError:
        return False


class Shaper:
    """The input rate of one connection: stanzas and bytes a second, each with two seconds'
    worth of burst (and never less than one largest stanza of bytes)."""

    __slots__ = ("_bytes", "_stanzas")

    def __init__(self, limits: Limits, max_stanza: int, now: float) -> None:
        self._stanzas = Bucket(2 * limits.stanza_rate, limits.stanza_rate, now)
        self._bytes = Bucket(max(2 * limits.byte_rate, max_stanza), limits.byte_rate, now)

    def charge(self, nbytes: int, stanzas: int, now: float) -> float:
        """Count what arrived; return when reading may go on (*now*: at once)."""
        return max(self._bytes.take(nbytes, now), self._stanzas.take(stanzas, now))


class Sessions:
    """Bound resources per account, for the session cap."""

    __slots__ = ("_by_account",)

    def __init__(self) -> None:
        self._by_account: dict[str, set[Jid]] = {}

    def admits(self, jid: Jid, cap: int) -> bool:
        """Whether *jid* may bind: it replaces a resource of its own, or the account has room."""
        bound = self._by_account.get(jid.local, ())
        return jid in bound or len(bound) < cap

    def add(self, jid: Jid) -> None:
        self._by_account.setdefault(jid.local, set()).add(jid)

    def discard(self, jid: Jid) -> None:
        bound = self._by_account.get(jid.local)
        if bound is not None:
            bound.discard(jid)
            if not bound:
                del self._by_account[jid.local]


class Guard:
    """What the connections of one server share to enforce `Limits`."""

    __slots__ = ("limits", "logins", "sessions")

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.logins = LoginThrottle(limits)
        self.sessions = Sessions()
