"""Which browser requests the NBI answers: those addressed to one of its own names, and no
state-changing request that another site's page sent.

Without a token the NBI trusts whoever reaches loopback, and a web page the operator opens
reaches loopback too. It can POST a task or a connection request with a text/plain body (a
"simple" request, which the browser sends without asking first), or, through DNS rebinding (its
own name made to resolve to 127.0.0.1), read the NBI as if it were the page's own origin. A
rebound request names the attacker's host in its Host header; a cross-site POST carries
Sec-Fetch-Site and Origin. Scripts and curl send neither of the latter and name the address they
dial, so they pass as before.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from knock.hosts import split_hosts
from knock.nbi.errors import ApiError

SETTING = "nbi_allowed_hosts (--nbi-allowed-hosts, KNOCK_NBI_ALLOWED_HOSTS)"
# Requests a browser sends from any page without consequence: the answer stays unreadable to
# another origin, and these routes change nothing.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Sec-Fetch-Site values of requests the user's own page or the user made ("none": typed or
# bookmarked); same-site is not among them: another port of localhost is the same site.
_OWN = frozenset({"same-origin", "none"})


def host_name(value: str) -> str | None:
    """The name in a Host header or a configured host ("name", "name:port", "[v6]:port"),
    lower case, without brackets; None when it is not of that form."""
    text = value.strip().lower()
    if text.startswith("["):
        end = text.find("]")
        name, port = text[1:end], text[end + 1 :]
        if end < 0 or not _is_ip(name):
            return None
    else:
        name, colon, port = text.partition(":")
        port = colon + port
    if port and not (port[0] == ":" and port[1:].isascii() and port[1:].isdigit()):
        return None
    return name or None


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class AllowedHosts:
    """The host names the NBI answers to besides any IP address: a DNS rebinding attack needs a
    name of the attacker's, so an address typed as such is always the NBI's own."""

    names: frozenset[str]

    @classmethod
    def of(cls, bound: str = "127.0.0.1", extra: str = "") -> AllowedHosts:
        """localhost, the bound address when it is a name, and `extra`: names separated by
        commas (a port given with one is ignored). Raises ValueError naming a bad entry."""
        names = {"localhost"}
        names.update(host.lower() for host in split_hosts(bound) if host and not _is_ip(host))
        for entry in extra.split(","):
            if not entry.strip():
                continue
            name = host_name(entry)
            if name is None or "/" in entry:
                raise ValueError(
                    f"nbi_allowed_hosts entry {entry.strip()!r} is not a host name: give names "
                    "separated by commas, such as acs.example.net,acs"
                )
            names.add(name)
        return cls(frozenset(names))

    def allows(self, host: str) -> bool:
        name = host_name(host)
        return name is not None and (name in self.names or _is_ip(name))


def refusal(method: str, headers: Mapping[str, str], allowed: AllowedHosts) -> ApiError | None:
    """Why the NBI must not answer this request, or None to answer it."""
    host = headers.get("Host", "").strip().lower() or None
    # HTTP/1.0 scripts may send no Host; a browser always sends one.
    if host is not None and not allowed.allows(host):
        return ApiError(
            421,
            f"this NBI is not served under the name {host!r} (a page on another site may be "
            f"posing as it); if it is one of its names, add it to {SETTING}",
        )
    if method.upper() in SAFE_METHODS:
        return None
    site = headers.get("Sec-Fetch-Site")
    origin = headers.get("Origin")
    # The browser sets Sec-Fetch-Site and no page can change it; Origin is the fallback of
    # browsers without it, compared with the Host the page itself was loaded from.
    if site is not None:
        cross = site.strip().lower() not in _OWN
    else:
        # An opaque origin ("null": a sandboxed frame, a file) has no authority and never matches.
        cross = origin is not None and urlsplit(origin.strip()).netloc.lower() != (host or "")
    if cross:
        sender = origin or f"a {site} page"
        return ApiError(
            403,
            f"{method} from {sender} refused: the NBI takes changes only from its own dashboard "
            "and from clients that are not browsers (no Origin or Sec-Fetch-Site header); "
            f"open the dashboard at http://{host or 'the NBI'}/ instead",
        )
    return None


def origin_guard(allowed: AllowedHosts) -> Middleware:
    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        refused = refusal(request.method, request.headers, allowed)
        if refused is not None:
            raise refused
        return await handler(request)

    return guard
