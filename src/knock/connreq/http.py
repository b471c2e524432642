"""HTTP connection requests (TR-069 §3.2.2): a GET to the device's ConnectionRequestURL, answering
its Digest challenge; Basic only when the configuration allows it.

The transport only says whether the device accepted the request; the dispatcher then waits for the
Inform that proves it.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from urllib.parse import urlsplit

import aiohttp

from knock.auth import AuthError, answer_challenge, select_challenge
from knock.hosts import unbracketed_ipv6
from knock.vocab import CrOutcome


@dataclass(frozen=True, slots=True)
class Sent:
    """How the device answered: accepted (outcome None), or why not."""

    outcome: CrOutcome | None
    detail: str
    # RATE_LIMITED only: the seconds the device asked the ACS to wait (HTTP Retry-After), if it
    # said; the dispatcher waits that long (or its own pause) and asks again within its deadline.
    retry_after: float | None = None

    @property
    def accepted(self) -> bool:
        return self.outcome is None


class HttpConnectionRequester:
    def __init__(self, *, allow_basic: bool = False, timeout: float = 5.0) -> None:
        self._allow_basic = allow_basic
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._http: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    def _client(self) -> aiohttp.ClientSession:
        if self._http is None:
            # Each request goes to a different device: keeping connections open would only hold
            # file descriptors. Cookies mean nothing here.
            self._http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(force_close=True, limit=0),
                cookie_jar=aiohttp.DummyCookieJar(),
                timeout=self._timeout,
                trace_configs=[_connection_trace()],
            )
        return self._http

    async def send(self, url: str, username: str | None, password: str | None) -> Sent:
        parts = urlsplit(url)
        if unbracketed_ipv6(url):
            return Sent(
                CrOutcome.REFUSED,
                f"ConnectionRequestURL {url!r} names an IPv6 address without brackets: a URL "
                "writes it as http://[2001:db8::1]:port/path (RFC 3986 §3.2.2); the device "
                "must report its URL that way",
            )
        if parts.scheme != "http" or not parts.hostname:
            return Sent(
                CrOutcome.REFUSED,
                f"ConnectionRequestURL {url!r} is not an http:// URL (TR-069 §3.2.2 requires one)",
            )
        progress = _Progress()
        try:
            return await self._send(url, parts.path or "/", username, password, progress)
        except TimeoutError:
            if not progress.connected:
                return Sent(
                    CrOutcome.TIMEOUT,
                    f"no connection to {url} within {self._timeout.total} s: nothing answered, "
                    "as when a firewall drops new connections to the device (an IPv6 CPE's "
                    "stateful firewall does) or the device is off; XMPP and UDP connection "
                    "requests get through such a firewall",
                )
            return Sent(CrOutcome.TIMEOUT, f"no answer from {url} within {self._timeout.total} s")
        except aiohttp.ClientConnectionError as exc:
            return Sent(CrOutcome.UNREACHABLE, f"cannot connect to {url}: {exc}")

    async def _send(
        self, url: str, path: str, username: str | None, password: str | None, progress: _Progress
    ) -> Sent:
        answer = await self._get(url, None, progress)
        if answer.status in (200, 204):
            return Sent(
                None, f"{answer.status} without authentication (the device should require it)"
            )
        for _round in range(2):  # a stale nonce earns one more round
            if answer.status != 401:
                return _refusal(answer)
            if username is None or password is None:
                return Sent(
                    CrOutcome.BAD_CREDENTIALS,
                    "the device asks for credentials and Knock holds none for it: it has not "
                    "accepted Knock's ConnectionRequestUsername/Password yet (see cr_provision)",
                )
            try:
                challenge = select_challenge(answer.challenges, allow_basic=self._allow_basic)
            except AuthError as exc:
                return Sent(CrOutcome.REFUSED, f"no usable challenge from the device: {exc}")
            authorization = answer_challenge(challenge, "GET", path, username, password)
            answer = await self._get(url, authorization, progress)
            if answer.status in (200, 204):
                return Sent(None, f"{answer.status} after authentication")
            if answer.status == 401 and not answer.stale:
                return Sent(CrOutcome.BAD_CREDENTIALS, "the device refused the stored credentials")
        return _refusal(answer)

    async def _get(self, url: str, authorization: str | None, progress: _Progress) -> _Answer:
        headers = {"Authorization": authorization} if authorization else {}
        async with self._client().get(
            url, headers=headers, allow_redirects=False, trace_request_ctx=progress
        ) as response:
            await response.read()
            return _Answer(
                response.status,
                response.headers.getall("WWW-Authenticate", []),
                response.headers.get("Retry-After", ""),
            )


@dataclass(slots=True)
class _Progress:
    """How far one connection request got: a timeout before the TCP connection opened means
    nothing answered at all (dropped on the way), after it that the device did not answer."""

    connected: bool = False


def _connection_trace() -> aiohttp.TraceConfig:
    async def connected(
        _session: aiohttp.ClientSession,
        context: SimpleNamespace,
        _params: aiohttp.TraceConnectionCreateEndParams,
    ) -> None:
        if isinstance(context.trace_request_ctx, _Progress):
            context.trace_request_ctx.connected = True

    trace = aiohttp.TraceConfig()
    trace.on_connection_create_end.append(connected)
    return trace


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    challenges: list[str]  # WWW-Authenticate
    retry_after: str

    @property
    def stale(self) -> bool:
        return any("stale=true" in c.lower() for c in self.challenges)


def _refusal(answer: _Answer) -> Sent:
    if answer.status == 503:
        wait = retry_after_seconds(answer.retry_after)
        asked = "" if wait is None else f", Retry-After {wait:g} s"
        return Sent(
            CrOutcome.RATE_LIMITED, f"503: the device is busy or limits requests{asked}", wait
        )
    return Sent(CrOutcome.REFUSED, f"the device answered HTTP {answer.status}")


def retry_after_seconds(value: str) -> float | None:
    """Retry-After as delta-seconds (RFC 9110 §10.2.3); an HTTP-date, which a device's clock
    makes unreliable, or anything else: None."""
    text = value.strip()
    return float(text) if text.isdigit() else None
