"""CPE-to-ACS authentication (none, Basic or Digest) as the CWMP service applies it.

The decisions come from `knock.auth`; this module only maps them to HTTP replies and keeps the
rule that a per-device credential may only speak for its own device, while the shared pair (when
one is set beside them) speaks for any.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from aiohttp import web

from knock.auth import (
    AuthError,
    DigestServer,
    NonceUse,
    Verdict,
    basic_challenge,
    parse_basic,
    parse_credentials,
)
from knock.config import Settings
from knock.store import Store

log = logging.getLogger("knock.acs.auth")

REALM = "Knock ACS"
_USER_KEY = web.RequestKey("knock_cpe_user", str)

BindUser = Callable[[str, str], Awaitable[str]]
"""(username, device_id) -> the device the username speaks for, the first bound winning
(Store.bind_cwmp_user)."""

_NONCE_LIFETIME_S = 300
_NONCE_PRUNE_EVERY_S = 60
_CLOCK_SLACK_S = 60  # between the clocks of the processes that issue and check nonces


@dataclass
class SharedNonces:
    """The Digest nonce key and nonce counts of every ACS process on one PostgreSQL database:
    a CPE's answer to a challenge comes on a new TCP connection, which may reach another worker
    (or machine) than the one that issued the nonce, and a replay must fail on all of them."""

    key: bytes
    store: Store
    _next_prune: float = 0.0

    @classmethod
    async def of(cls, store: Store) -> SharedNonces:
        key = await store.shared_secret("cwmp_digest_key", lambda: secrets.token_urlsafe(32))
        return cls(key.encode(), store)

    def server(self) -> DigestServer:
        return DigestServer(
            REALM, nonce_lifetime=_NONCE_LIFETIME_S, secret=self.key, count_nonces=False
        )

    async def record(self, use: NonceUse) -> bool:
        """True when this count is the highest yet for its nonce, in any process."""
        now = time.time()
        forget_before = None
        if now >= self._next_prune:
            self._next_prune = now + _NONCE_PRUNE_EVERY_S
            forget_before = int(now) - _NONCE_LIFETIME_S - _CLOCK_SLACK_S
        return await self.store.advance_digest_nonce(use.nonce, use.issued, use.nc, forget_before)


@dataclass
class CpeAuthenticator:
    mode: str  # "none", "basic" or "digest"
    credentials: Mapping[str, str] = field(default_factory=dict)  # username -> password
    per_device: bool = False  # usernames name devices: each may only inform as itself
    shared_user: str | None = None  # the shared pair's username, which speaks for any device
    bind_user: BindUser | None = None  # needed for per-device usernames that are serial numbers
    shared_nonces: SharedNonces | None = None  # several processes answer the same CPEs
    digest: DigestServer = field(init=False, repr=False)
    # (username, device id) pairs the store has bound, to spare a read per session.
    _bound: set[tuple[str, str]] = field(default_factory=set, init=False, repr=False)

    def __post_init__(self) -> None:
        shared = self.shared_nonces
        self.digest = DigestServer(REALM) if shared is None else shared.server()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        bind_user: BindUser | None = None,
        shared_nonces: SharedNonces | None = None,
    ) -> CpeAuthenticator:
        creds = dict(settings.cwmp_credentials)
        shared_user = None
        if settings.cwmp_password:
            creds[settings.cwmp_username] = settings.cwmp_password
            shared_user = settings.cwmp_username
        return cls(
            settings.cwmp_auth,
            creds,
            per_device=bool(settings.cwmp_credentials),
            shared_user=shared_user,
            bind_user=bind_user,
            shared_nonces=shared_nonces,
        )

    async def check(self, request: web.Request) -> web.Response | None:
        """None when the request may proceed; otherwise the 401 to send."""
        if self.mode == "none":
            return None
        header = request.headers.get("Authorization")
        if self.mode == "basic":
            user = self._basic_user(header)
        else:
            decision = self.digest.verify(
                header,
                method=request.method,
                uri=request.path_qs,
                lookup=self.credentials.get,
                now=time.time(),
            )
            use = decision.nonce_use
            shared = self.shared_nonces
            if use is not None and shared is not None and not await shared.record(use):
                return self._challenge(stale=True)  # a replay, here or in another process
            if decision.verdict is Verdict.STALE:
                return self._challenge(stale=True)
            user = decision.username if decision.ok else None
            if header and not decision.ok:
                log.warning("CPE at %s failed Digest: %s", request.remote, decision.verdict)
        if user is None:
            return self._challenge()
        request[_USER_KEY] = user
        return None

    def user(self, request: web.Request) -> str | None:
        """The username *request* authenticated with (after `check`); None without auth."""
        return request.get(_USER_KEY)

    def pair(self, user: str | None) -> tuple[str, str] | None:
        """*user*'s credentials: what its device gives the file server (files_device_auth)."""
        password = None if user is None else self.credentials.get(user)
        return None if user is None or password is None else (user, password)

    async def check_device(
        self, request: web.Request, device_id: str, serial: str
    ) -> web.Response | None:
        """With per-device credentials, the authenticated user must be this device: its device
        id, or its serial number once bound to the first device id that informed with it."""
        user = request.get(_USER_KEY)
        if not self.per_device or user is None or user in (device_id, self.shared_user):
            return None
        if user == serial and await self._bound_to(user, device_id):
            return None
        log.warning("credentials of %r used to inform as device %s: refused", user, device_id)
        return web.Response(
            status=403,
            text=f"credentials of {user!r} do not belong to device {device_id}\n",
        )

    async def _bound_to(self, user: str, device_id: str) -> bool:
        if (user, device_id) in self._bound:
            return True
        if self.bind_user is None or await self.bind_user(user, device_id) != device_id:
            return False
        self._bound.add((user, device_id))
        return True

    def _basic_user(self, header: str | None) -> str | None:
        if not header:
            return None
        try:
            parsed = parse_credentials(header)
            if parsed.scheme != "basic":
                return None
            creds = parse_basic(parsed.token68)
        except AuthError:
            return None
        expected = self.credentials.get(creds.username)
        if expected is None or not _same(expected, creds.password):
            return None
        return creds.username

    def _challenge(self, stale: bool = False) -> web.Response:
        if self.mode == "basic":
            values = [basic_challenge(REALM)]
        else:
            values = self.digest.challenge(time.time(), stale=stale)
        response = web.Response(status=401, text="authentication required\n")
        for value in values:
            response.headers.add("WWW-Authenticate", value)
        return response


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
