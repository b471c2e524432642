"""CPE-to-ACS authentication (none, Basic or Digest) as the CWMP service applies it.

The decisions come from `knock.auth`; this module only maps them to HTTP replies and keeps the
rule that a per-device credential may only speak for its own device, while the shared pair (when
one is set beside them) speaks for any.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from aiohttp import web

from knock.auth import (
    AuthError,
    DigestServer,
    Verdict,
    basic_challenge,
    parse_basic,
    parse_credentials,
)
from knock.config import Settings

log = logging.getLogger("knock.acs.auth")

REALM = "Knock ACS"
_USER_KEY = web.RequestKey("knock_cpe_user", str)

BindUser = Callable[[str, str], Awaitable[str]]
"""(username, device_id) -> the device the username speaks for, the first bound winning
(Store.bind_cwmp_user)."""


@dataclass
class CpeAuthenticator:
    mode: str  # "none", "basic" or "digest"
    credentials: Mapping[str, str] = field(default_factory=dict)  # username -> password
    per_device: bool = False  # usernames name devices: each may only inform as itself
    shared_user: str | None = None  # the shared pair's username, which speaks for any device
    bind_user: BindUser | None = None  # needed for per-device usernames that are serial numbers
    digest: DigestServer = field(default_factory=lambda: DigestServer(REALM))
    # (username, device id) pairs the store has bound, to spare a read per session.
    _bound: set[tuple[str, str]] = field(default_factory=set, init=False, repr=False)

    @classmethod
    def from_settings(
        cls, settings: Settings, bind_user: BindUser | None = None
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
        )

    def check(self, request: web.Request) -> web.Response | None:
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
            if decision.verdict is Verdict.STALE:
                return self._challenge(stale=True)
            user = decision.username if decision.ok else None
            if header and not decision.ok:
                log.warning("CPE at %s failed Digest: %s", request.remote, decision.verdict)
        if user is None:
            return self._challenge()
        request[_USER_KEY] = user
        return None

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
