"""HTTP Digest authentication (RFC 7616, interoperable with RFC 2617 and RFC 2069 peers).

Strings are hashed as UTF-8, which RFC 7616 makes the norm and which equals ISO-8859-1 for the
ASCII credentials CPEs use in practice.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from urllib.parse import urlsplit

from knock.auth.basic import BasicChallenge, BasicCredentials, basic_challenge, parse_basic
from knock.auth.headers import (
    AuthError,
    Challenge,
    auth_param,
    parse_challenges,
    parse_credentials,
    quote,
)

Lookup = Callable[[str], str | None]
"""Maps a username to its password, or None when the user is unknown."""


class Algorithm(StrEnum):
    MD5 = "MD5"
    MD5_SESS = "MD5-sess"
    SHA256 = "SHA-256"
    SHA256_SESS = "SHA-256-sess"

    @classmethod
    def parse(cls, name: str) -> Algorithm:
        for algorithm in cls:
            if algorithm.value.lower() == name.lower():
                return algorithm
        raise AuthError(f"unsupported algorithm {name!r}")

    @property
    def hash_name(self) -> str:
        return "sha256" if self.value.startswith("SHA-256") else "md5"

    @property
    def sess(self) -> bool:
        return self.value.endswith("-sess")

    @property
    def strength(self) -> int:
        """Rank by hash function; a -sess variant protects the password no better."""
        return 1 if self.hash_name == "sha256" else 0

    def hexdigest(self, text: str) -> str:
        return hashlib.new(self.hash_name, text.encode()).hexdigest()


@dataclass(frozen=True)
class DigestCredentials:
    """The parameters of a Digest `Authorization` value.

    ``algorithm`` None means the peer named none: MD5, and no algorithm parameter on the wire.
    ``qop`` None is the RFC 2069 form, without nc and cnonce.
    """

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: Algorithm | None = None
    qop: str | None = None
    nc: str | None = None
    cnonce: str | None = None
    opaque: str | None = None

    @property
    def effective_algorithm(self) -> Algorithm:
        return self.algorithm or Algorithm.MD5

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> DigestCredentials:
        missing = [
            name for name in ("username", "realm", "nonce", "uri", "response") if name not in params
        ]
        if "qop" in params:
            missing += [name for name in ("nc", "cnonce") if name not in params]
        if missing:
            raise AuthError(f"missing {', '.join(missing)}")
        algorithm = params.get("algorithm")
        return cls(
            username=params["username"],
            realm=params["realm"],
            nonce=params["nonce"],
            uri=params["uri"],
            response=params["response"],
            algorithm=None if algorithm is None else Algorithm.parse(algorithm),
            qop=params.get("qop"),
            nc=params.get("nc"),
            cnonce=params.get("cnonce"),
            opaque=params.get("opaque"),
        )

    def expected_response(self, method: str, password: str) -> str:
        """The response a peer knowing *password* computes for these parameters (RFC 7616 §3.4)."""
        algorithm = self.effective_algorithm
        ha1 = algorithm.hexdigest(f"{self.username}:{self.realm}:{password}")
        if algorithm.sess:
            ha1 = algorithm.hexdigest(f"{ha1}:{self.nonce}:{self.cnonce}")
        ha2 = algorithm.hexdigest(f"{method}:{self.uri}")
        if self.qop is None:
            return algorithm.hexdigest(f"{ha1}:{self.nonce}:{ha2}")
        return algorithm.hexdigest(f"{ha1}:{self.nonce}:{self.nc}:{self.cnonce}:{self.qop}:{ha2}")

    def render(self) -> str:
        """The `Authorization` header value."""
        parts = [
            auth_param("username", self.username),
            auth_param("realm", self.realm),
            auth_param("nonce", self.nonce),
            auth_param("uri", self.uri),
        ]
        if self.algorithm is not None:
            parts.append(auth_param("algorithm", self.algorithm, quoted=False))
        if self.qop is not None:
            # Unquoted qop and nc: several embedded HTTP servers reject the quoted forms.
            parts.append(auth_param("qop", self.qop, quoted=False))
            parts.append(auth_param("nc", self.nc or "", quoted=False))
            parts.append(auth_param("cnonce", self.cnonce or ""))
        parts.append(auth_param("response", self.response))
        if self.opaque is not None:
            parts.append(auth_param("opaque", self.opaque))
        return "Digest " + ", ".join(parts)


# --- client side ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DigestChallenge:
    """A Digest challenge as a client answers it.

    ``stale`` True tells the client its password was right and only the nonce was old, so it
    may retry at once without asking anyone for credentials again.
    """

    realm: str
    nonce: str
    algorithm: Algorithm | None = None
    qop: str | None = None
    opaque: str | None = None
    stale: bool = False

    @property
    def effective_algorithm(self) -> Algorithm:
        return self.algorithm or Algorithm.MD5

    @classmethod
    def from_challenge(cls, challenge: Challenge) -> DigestChallenge:
        params = challenge.params
        if "realm" not in params or "nonce" not in params:
            raise AuthError("Digest challenge without realm or nonce")
        algorithm = params.get("algorithm")
        qop: str | None = None
        if "qop" in params:
            offered = [option.strip().lower() for option in params["qop"].split(",")]
            if "auth" not in offered:
                raise AuthError(f"Digest challenge offers qop {params['qop']!r}, not auth")
            qop = "auth"
        result = cls(
            realm=params["realm"],
            nonce=params["nonce"],
            algorithm=None if algorithm is None else Algorithm.parse(algorithm),
            qop=qop,
            opaque=params.get("opaque"),
            stale=params.get("stale", "").lower() == "true",
        )
        if result.effective_algorithm.sess and qop is None:
            # -sess hashes the cnonce, which RFC 2617 forbids sending without a qop.
            raise AuthError("Digest challenge pairs a -sess algorithm with no qop")
        return result

    def authorization(
        self, method: str, uri: str, username: str, password: str, *, cnonce: str, nc: int = 1
    ) -> str:
        """The `Authorization` value answering this challenge.

        The caller keeps *nc* counting up for each request that reuses this challenge's nonce.
        *cnonce* is ignored when the server offered no qop (RFC 2069).
        """
        if not 0 < nc <= 0xFFFFFFFF:
            raise ValueError(f"nonce count {nc} out of range")
        credentials = DigestCredentials(
            username=username,
            realm=self.realm,
            nonce=self.nonce,
            uri=uri,
            response="",
            algorithm=self.algorithm,
            qop=self.qop,
            nc=None if self.qop is None else f"{nc:08x}",
            cnonce=None if self.qop is None else cnonce,
            opaque=self.opaque,
        )
        return replace(
            credentials, response=credentials.expected_response(method, password)
        ).render()


def new_cnonce() -> str:
    return secrets.token_hex(16)


def select_challenge(
    www_authenticate: str | Iterable[str], *, allow_basic: bool = False
) -> DigestChallenge | BasicChallenge:
    """Pick the challenge to answer from one or several `WWW-Authenticate` values.

    Digest with the strongest algorithm wins, the server's order breaking ties; Basic only when
    *allow_basic* and no Digest challenge is usable, so a server cannot downgrade a client that
    did not agree to send its password in clear. Raises `AuthError` when nothing is usable.
    """
    values = [www_authenticate] if isinstance(www_authenticate, str) else list(www_authenticate)
    digests: list[DigestChallenge] = []
    basic: BasicChallenge | None = None
    problems: list[str] = []
    for value in values:
        try:
            challenges = parse_challenges(value)
        except AuthError as exc:
            problems.append(str(exc))
            continue
        for challenge in challenges:
            if challenge.scheme == "digest":
                try:
                    digests.append(DigestChallenge.from_challenge(challenge))
                except AuthError as exc:
                    problems.append(str(exc))
            elif challenge.scheme == "basic" and basic is None:
                basic = BasicChallenge(challenge.params.get("realm", ""))
    if digests:
        return max(digests, key=lambda digest: digest.effective_algorithm.strength)
    if allow_basic and basic is not None:
        return basic
    raise AuthError("no usable challenge" + "".join(f"; {problem}" for problem in problems))


def answer_challenge(
    challenge: DigestChallenge | BasicChallenge,
    method: str,
    uri: str,
    username: str,
    password: str,
) -> str:
    """The `Authorization` of one request answering the challenge `select_challenge` chose
    (a Digest nonce used once, nc 1; a client reusing it counts with `DigestChallenge`)."""
    if isinstance(challenge, BasicChallenge):
        return challenge.authorization(username, password)
    return challenge.authorization(method, uri, username, password, cnonce=new_cnonce())


# --- server side ------------------------------------------------------------------------------


class Verdict(StrEnum):
    OK = "ok"
    MISSING = "missing"
    MALFORMED = "malformed"
    BAD_CREDENTIALS = "bad-credentials"
    STALE = "stale"


@dataclass(frozen=True)
class NonceUse:
    """A nonce count a Digest answer used, for the caller to record where a server that does
    not count nonces itself (``count_nonces=False``) shares the counts with other processes."""

    nonce: str
    issued: int  # Unix seconds, from the nonce
    nc: int


@dataclass(frozen=True)
class Decision:
    """What the server concluded about a request's `Authorization` value.

    Anything but OK is answered with 401 and `DigestServer.challenge`, passing
    ``stale=True`` for STALE (RFC 7616 allows 400 for MALFORMED). A Digest OK from a server
    with ``count_nonces=False`` carries ``nonce_use``: it stands only once the caller has
    recorded that count as higher than any before (else the answer is a replay: STALE).
    """

    verdict: Verdict
    username: str | None = None
    reason: str = ""
    nonce_use: NonceUse | None = None

    @property
    def ok(self) -> bool:
        return self.verdict is Verdict.OK


_NONCE_TEXT = re.compile(r"[A-Za-z0-9_-]{48}")
_STAMP_BYTES = 8
_SALT_BYTES = 12
_MAC_BYTES = 16
_NC = re.compile(r"[0-9a-fA-F]{8}")


class _NonceCounts:
    """The highest nonce count accepted per nonce, for a bounded number of nonces.

    A nonce pushed out of the table is forgotten, so a replay of it could no longer be told
    apart from its first use. ``floor`` closes that hole: it is the latest issue time of any
    evicted nonce, and an unknown nonce issued no later than that counts as replayed. Least
    recently used goes first, and issue times are whole seconds, so an active client loses at
    most one request to a re-authentication.
    """

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._highest: OrderedDict[str, tuple[int, int]] = OrderedDict()
        self._floor = -1

    def advance(self, nonce: str, issued: int, nc: int) -> bool:
        """Record *nc* for *nonce* if it is higher than any seen; False for a replay."""
        seen = self._highest.get(nonce)
        if seen is None and issued <= self._floor:
            return False
        if nc <= (0 if seen is None else seen[1]):
            return False
        self._highest[nonce] = (issued, nc)
        self._highest.move_to_end(nonce)
        while len(self._highest) > self._capacity:
            _, (evicted_issued, _) = self._highest.popitem(last=False)
            self._floor = max(self._floor, evicted_issued)
        return True


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _origin_form(uri: str) -> str:
    """Reduce an absolute URI to path and query, which is what a client behind a proxy signs."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return uri
    if not (parts.scheme and parts.netloc):
        return uri
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


@dataclass(eq=False)
class DigestServer:
    """Issues Digest challenges and verifies `Authorization` values against them.

    Nonces carry their issue time and an HMAC under ``secret``, so any process sharing the
    secret can verify them without a nonce table. ``secret`` defaults to ``random_bytes(32)``;
    share one explicitly when several processes answer the same clients, and then set
    ``count_nonces=False`` and record each OK decision's ``nonce_use`` where all of them see it
    (the ACS: `Store.advance_digest_nonce`): counts kept per process would let a replay through
    once on every process, and again after a restart.
    """

    realm: str
    algorithms: Sequence[Algorithm] = (Algorithm.SHA256, Algorithm.MD5)
    nonce_lifetime: float = 300.0
    opaque: str | None = None
    allow_basic: bool = False
    secret: bytes | None = field(default=None, repr=False)
    random_bytes: Callable[[int], bytes] = field(default=secrets.token_bytes, repr=False)
    max_tracked_nonces: int = 4096
    count_nonces: bool = True

    def __post_init__(self) -> None:
        if not self.algorithms:
            raise ValueError("a DigestServer needs at least one algorithm")
        # RFC 7616 §3.7: one challenge per algorithm, most preferred first.
        self.algorithms = sorted(self.algorithms, key=lambda a: a.strength, reverse=True)
        self._secret = self.secret if self.secret is not None else self.random_bytes(32)
        self._counts = _NonceCounts(self.max_tracked_nonces)

    def challenge(self, now: float, *, stale: bool = False) -> list[str]:
        """`WWW-Authenticate` values, one per header, all sharing one fresh nonce."""
        common = [auth_param("qop", "auth"), auth_param("nonce", self._issue_nonce(now))]
        if self.opaque is not None:
            common.append(auth_param("opaque", self.opaque))
        if stale:
            common.append(auth_param("stale", "true", quoted=False))
        values = [
            ", ".join(
                [
                    f"Digest realm={quote(self.realm)}",
                    auth_param("algorithm", algorithm, quoted=False),
                    *common,
                ]
            )
            for algorithm in self.algorithms
        ]
        if self.allow_basic:
            values.append(basic_challenge(self.realm))
        return values

    def verify(
        self, authorization: str | None, *, method: str, uri: str, lookup: Lookup, now: float
    ) -> Decision:
        """Judge the `Authorization` value of a request for *method* and *uri*.

        Never raises for any header value: problems come back as a `Decision`.
        """
        if authorization is None or not authorization.strip():
            return Decision(Verdict.MISSING)
        try:
            credentials = self._parse(authorization, uri)
        except AuthError as exc:
            return Decision(Verdict.MALFORMED, reason=str(exc))
        if isinstance(credentials, BasicCredentials):
            password = lookup(credentials.username)
            if password is None or not _same(password, credentials.password):
                return Decision(Verdict.BAD_CREDENTIALS, credentials.username)
            return Decision(Verdict.OK, credentials.username)
        return self._verify_digest(credentials, method, lookup, now)

    def _parse(self, authorization: str, uri: str) -> DigestCredentials | BasicCredentials:
        parsed = parse_credentials(authorization)
        if parsed.scheme == "basic" and self.allow_basic:
            return parse_basic(parsed.token68)
        if parsed.scheme != "digest":
            raise AuthError(f"scheme {parsed.scheme!r} not accepted")
        credentials = DigestCredentials.from_params(parsed.params)
        if credentials.effective_algorithm not in self.algorithms:
            raise AuthError(f"algorithm {credentials.effective_algorithm} not offered")
        if credentials.realm != self.realm:
            raise AuthError(f"realm {credentials.realm!r} is not {self.realm!r}")
        if self.opaque is not None and credentials.opaque != self.opaque:
            raise AuthError("opaque not echoed")
        # Without qop there is no nonce count, hence no replay protection: refuse RFC 2069.
        if (credentials.qop or "").lower() != "auth":
            raise AuthError(f"qop {credentials.qop!r} is not auth")
        if not _NC.fullmatch(credentials.nc or ""):
            raise AuthError(f"nonce count {credentials.nc!r} is not 8 hex digits")
        if _origin_form(credentials.uri) != _origin_form(uri):
            raise AuthError(f"digest uri {credentials.uri!r} is not the request's {uri!r}")
        return credentials

    def _verify_digest(
        self, credentials: DigestCredentials, method: str, lookup: Lookup, now: float
    ) -> Decision:
        username = credentials.username
        password = lookup(username)
        if password is None or not _same(
            credentials.expected_response(method, password), credentials.response.lower()
        ):
            return Decision(Verdict.BAD_CREDENTIALS, username)
        # Only now that the response is proven right does the nonce matter: RFC 7616 asks for
        # stale=true exactly when the credentials were good and the nonce was not.
        issued = self._nonce_issued(credentials.nonce)
        if issued is None:
            return Decision(Verdict.STALE, username, "nonce not issued here")
        if issued < now - self.nonce_lifetime:
            return Decision(Verdict.STALE, username, "nonce expired")
        # The count is recorded only after the response checked out, so a forger cannot burn
        # a genuine client's counts.
        nc = int(credentials.nc or "0", 16)
        if not self.count_nonces:
            return Decision(Verdict.OK, username, nonce_use=NonceUse(credentials.nonce, issued, nc))
        if not self._counts.advance(credentials.nonce, issued, nc):
            return Decision(Verdict.STALE, username, "nonce count replayed")
        return Decision(Verdict.OK, username)

    def _mac(self, body: bytes) -> bytes:
        return hmac.digest(self._secret, body, "sha256")[:_MAC_BYTES]

    def _issue_nonce(self, now: float) -> str:
        body = int(now).to_bytes(_STAMP_BYTES, "big") + self.random_bytes(_SALT_BYTES)
        return base64.urlsafe_b64encode(body + self._mac(body)).decode("ascii")

    def _nonce_issued(self, nonce: str) -> int | None:
        if not _NONCE_TEXT.fullmatch(nonce):
            return None
        raw = base64.urlsafe_b64decode(nonce)
        body, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
        if not hmac.compare_digest(mac, self._mac(body)):
            return None
        return int.from_bytes(body[:_STAMP_BYTES], "big")


def claimed_username(authorization: str | None) -> str | None:
    """The username an `Authorization` value claims, unverified.

    Lets an asynchronous caller fetch that user's password before calling the synchronous
    `DigestServer.verify`.
    """
    try:
        parsed = parse_credentials(authorization or "")
        if parsed.scheme == "basic":
            return parse_basic(parsed.token68).username
    except AuthError:
        return None
    if parsed.scheme == "digest":
        return parsed.params.get("username")
    return None
