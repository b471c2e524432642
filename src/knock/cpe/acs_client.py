"""The CPE's side of CWMP over HTTP: POST envelopes to the ACS, keep its cookie, authenticate.

The simulated CPE and the tests' scripted CPEs both talk to the ACS through `AcsClient`; what to
send (Inform, responses) is theirs to decide.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import urlsplit

import aiohttp

from knock.auth import AuthError, DigestChallenge, new_cnonce, select_challenge
from knock.cwmp.envelope import Envelope, build_envelope, parse_envelope
from knock.cwmp.rpcs import Rpc

HEADERS = {"Content-Type": 'text/xml; charset="utf-8"', "SOAPAction": ""}


class AcsRefused(RuntimeError):
    """The ACS answered with an HTTP status the CPE cannot go on from."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"ACS answered HTTP {status}: {body[:200]}")
        self.status = status
        self.body = body


@dataclass(frozen=True, slots=True)
class AcsReply:
    status: int
    envelope: Envelope | None  # None for an empty reply (204 or empty 200)


class AcsClient:
    def __init__(
        self,
        url: str,
        *,
        username: str = "",
        password: str = "",
        allow_basic: bool = False,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.url = url
        self._path = urlsplit(url).path or "/"
        self._username = username
        self._password = password
        self._allow_basic = allow_basic
        self._ssl = ssl_context
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._http: aiohttp.ClientSession | None = None
        self._challenge: DigestChallenge | None = None
        self._nc = 0
        self._basic: str | None = None

    async def __aenter__(self) -> AcsClient:
        # unsafe=True: ACS URLs are often bare IP addresses, whose cookies aiohttp drops otherwise.
        self._http = aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True), timeout=self._timeout
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    def new_session(self) -> None:
        """Forget the ACS's session cookie, as a CPE does between sessions."""
        if self._http is not None:
            self._http.cookie_jar.clear()

    async def send(self, rpc: Rpc | None, *, cwmp_ns: str, id: str | None = None) -> AcsReply:
        """POST one envelope (or an empty body when `rpc` is None) and parse the reply."""
        body = b"" if rpc is None else build_envelope(rpc, cwmp_ns=cwmp_ns, id=id)
        return await self.send_bytes(body)

    async def send_bytes(self, body: bytes) -> AcsReply:
        """POST *body* as it is (an envelope, or empty) and parse the reply as `send` does."""
        status, data = await self.post_raw(body)
        if status not in (200, 204) and not (status == 500 and data.strip()):
            raise AcsRefused(status, data.decode(errors="replace"))
        return AcsReply(status, parse_envelope(data) if data.strip() else None)

    async def post_raw(
        self, body: bytes, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        """POST bytes as they are (tests use it for hostile input); answers 401 challenges."""
        assert self._http is not None, "use AcsClient as an async context manager"
        sent_headers = {**HEADERS, **(headers or {})} if body else dict(headers or {})
        for _attempt in range(2):
            auth = self._authorization()
            if auth:
                sent_headers["Authorization"] = auth
            try:
                async with self._http.post(
                    self.url, data=body, headers=sent_headers, ssl=self._ssl if self._ssl else True
                ) as response:
                    data = await response.read()
            except TimeoutError as exc:
                # aiohttp's total timeout is a TimeoutError without a word: say what timed out.
                detail = f" ({exc})" if str(exc) else ""
                raise TimeoutError(
                    f"no complete answer from the ACS at {self.url} within "
                    f"{self._timeout.total:g} s{detail}"
                ) from exc
            if response.status != 401 or not self._password:
                return response.status, data
            self._learn(response.headers.getall("WWW-Authenticate", []))
        return response.status, data

    def _learn(self, challenges: list[str]) -> None:
        try:
            chosen = select_challenge(challenges, allow_basic=self._allow_basic)
        except AuthError as exc:
            raise AcsRefused(401, f"no usable authentication challenge: {exc}") from None
        if isinstance(chosen, DigestChallenge):
            self._challenge, self._nc, self._basic = chosen, 0, None
        else:
            self._basic = chosen.authorization(self._username, self._password)

    def _authorization(self) -> str | None:
        if self._basic is not None:
            return self._basic
        if self._challenge is None:
            return None
        self._nc += 1
        return self._challenge.authorization(
            "POST", self._path, self._username, self._password, cnonce=new_cnonce(), nc=self._nc
        )
