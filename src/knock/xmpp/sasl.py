"""SASL for XMPP, sans-IO: SCRAM-SHA-1 (RFC 5802) and PLAIN (RFC 4616), server side, and a
SCRAM-SHA-1 client for tests and benchmarks.

The server keeps SCRAM credentials (salt, iteration count, StoredKey, ServerKey), never a
password: PLAIN is checked by deriving StoredKey from the password it carries.

A server mechanism is driven by the stream: `start` with the initial response (None when the
client sent none), `respond` with each later response, and `credentials` with what the account
lookup found once a step asked for it with NeedCredentials. Every call returns the next Step.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from typing import ClassVar, Final, Protocol

from knock.xmpp.saslprep import SaslprepError, saslprep

DEFAULT_ITERATIONS = 4096  # RFC 5802 §5.1 asks for at least 4096
_DECOY_KEY: Final = secrets.token_bytes(32)


class SaslCondition(enum.StrEnum):
    """SASL failure conditions (RFC 6120 §6.5) that Knock sends."""

    ABORTED = "aborted"
    ENCRYPTION_REQUIRED = "encryption-required"
    INCORRECT_ENCODING = "incorrect-encoding"
    INVALID_MECHANISM = "invalid-mechanism"
    MALFORMED_REQUEST = "malformed-request"
    NOT_AUTHORIZED = "not-authorized"
    TEMPORARY_AUTH_FAILURE = "temporary-auth-failure"


class SaslError(ValueError):
    """A SCRAM server's message the client cannot accept."""


def _hmac(key: bytes, message: bytes) -> bytes:
    return hmac.digest(key, message, "sha1")


def salted_password(password: str, salt: bytes, iterations: int) -> bytes:
    """SaltedPassword := Hi(Normalize(password), salt, i) (RFC 5802 §3)."""
    return hashlib.pbkdf2_hmac("sha1", saslprep(password).encode(), salt, iterations)


@dataclass(frozen=True, slots=True)
class ScramCredentials:
    """What a server stores for one account: enough to verify a client, not to be one."""

    salt: bytes
    iterations: int
    stored_key: bytes = field(repr=False)
    server_key: bytes = field(repr=False)

    @classmethod
    def from_password(
        cls, password: str, *, salt: bytes | None = None, iterations: int = DEFAULT_ITERATIONS
    ) -> ScramCredentials:
        salt = secrets.token_bytes(16) if salt is None else salt
        salted = salted_password(password, salt, iterations)
        return cls(
            salt,
            iterations,
            hashlib.sha1(_hmac(salted, b"Client Key")).digest(),
            _hmac(salted, b"Server Key"),
        )

    def matches(self, password: str) -> bool:
        """Whether *password* derives this StoredKey: how PLAIN is checked."""
        salted = salted_password(password, self.salt, self.iterations)
        stored = hashlib.sha1(_hmac(salted, b"Client Key")).digest()
        return hmac.compare_digest(stored, self.stored_key)


def _decoy(username: str) -> ScramCredentials:
    """Credentials for an unknown user: the exchange runs to the end and fails like a wrong
    password, with the same salt each time, so a client cannot tell which users exist."""
    salt = _hmac(_DECOY_KEY, username.encode())[:16]
    return ScramCredentials(salt, DEFAULT_ITERATIONS, b"", b"")


# --- steps ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NeedCredentials:
    """Look the user up and pass the result (None if unknown) to `credentials`."""

    username: str


@dataclass(frozen=True, slots=True)
class Challenge:
    data: bytes


@dataclass(frozen=True, slots=True)
class Success:
    username: str
    authzid: str  # the identity the client asked to act as; empty for its own
    data: bytes = b""  # additional data for <success/>


@dataclass(frozen=True, slots=True)
class Failure:
    condition: SaslCondition
    text: str = ""


Step = NeedCredentials | Challenge | Success | Failure


class Mechanism(Protocol):
    name: ClassVar[str]

    def start(self, initial: bytes | None) -> Step: ...

    def respond(self, data: bytes) -> Step: ...

    def credentials(self, found: ScramCredentials | None) -> Step: ...


def _malformed(text: str) -> Failure:
    return Failure(SaslCondition.MALFORMED_REQUEST, text)


_OUT_OF_ORDER: Final = _malformed("message out of order")


def _decode_saslname(value: str) -> str:
    """RFC 5802 §5.1: ',' and '=' travel as '=2C' and '=3D'; any other '=' is an error."""
    if value.replace("=2C", "").replace("=3D", "").count("="):
        raise ValueError("bad '=' escape in a name")
    return saslprep(value.replace("=2C", ",").replace("=3D", "="))


def _encode_saslname(value: str) -> str:
    return saslprep(value).replace("=", "=3D").replace(",", "=2C")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _attributes(message: str) -> list[tuple[str, str]]:
    pairs = []
    for item in message.split(","):
        key, eq, value = item.partition("=")
        if len(key) != 1 or not eq:
            raise ValueError(f"bad attribute {item!r}")
        pairs.append((key, value))
    return pairs


class _ScramState(enum.Enum):
    CLIENT_FIRST = enum.auto()
    LOOKUP = enum.auto()
    CLIENT_FINAL = enum.auto()
    DONE = enum.auto()


class ScramSha1Server:
    """The server side of one SCRAM-SHA-1 exchange (without channel binding)."""

    name: ClassVar[str] = "SCRAM-SHA-1"
    __slots__ = (
        "_authzid",
        "_client_first_bare",
        "_creds",
        "_gs2_header",
        "_nonce",
        "_server_first",
        "_server_nonce",
        "_state",
        "_username",
    )

    def __init__(self, server_nonce: str | None = None) -> None:
        self._server_nonce = server_nonce or secrets.token_urlsafe(18)
        self._state = _ScramState.CLIENT_FIRST
        self._username = self._authzid = self._nonce = ""
        self._gs2_header = self._client_first_bare = self._server_first = ""
        self._creds: ScramCredentials | None = None

    def start(self, initial: bytes | None) -> Step:
        return Challenge(b"") if initial is None else self.respond(initial)

    def respond(self, data: bytes) -> Step:
        try:
            message = data.decode("utf-8")
            if self._state is _ScramState.CLIENT_FIRST:
                return self._client_first(message)
            if self._state is _ScramState.CLIENT_FINAL:
                return self._client_final(message)
        except ValueError as exc:  # binascii, Unicode and SASLprep errors are ValueErrors
            self._state = _ScramState.DONE
            return _malformed(str(exc))
        return _OUT_OF_ORDER

    def _client_first(self, message: str) -> Step:
        cbind, _, rest = message.partition(",")
        authzid_field, _, bare = rest.partition(",")
        if cbind not in ("n", "y"):
            # "y" only says the client could bind; "p" asks for binding, which Knock never offers.
            raise ValueError("channel binding was not offered")
        if authzid_field and not authzid_field.startswith("a="):
            raise ValueError("bad authzid field")
        attrs = _attributes(bare)
        if len(attrs) < 2 or attrs[0][0] != "n" or attrs[1][0] != "r" or not attrs[1][1]:
            # Also refuses "m=": a mandatory extension Knock does not know.
            raise ValueError("client-first-message needs n= then r=")
        self._username = _decode_saslname(attrs[0][1])
        self._authzid = _decode_saslname(authzid_field[2:]) if authzid_field else ""
        self._nonce = attrs[1][1] + self._server_nonce
        self._gs2_header = f"{cbind},{authzid_field},"
        self._client_first_bare = bare
        self._state = _ScramState.LOOKUP
        return NeedCredentials(self._username)

    def credentials(self, found: ScramCredentials | None) -> Step:
        if self._state is not _ScramState.LOOKUP:
            return _OUT_OF_ORDER
        self._creds = found or _decoy(self._username)
        self._server_first = (
            f"r={self._nonce},s={_b64(self._creds.salt)},i={self._creds.iterations}"
        )
        self._state = _ScramState.CLIENT_FINAL
        return Challenge(self._server_first.encode())

    def _client_final(self, message: str) -> Step:
        self._state = _ScramState.DONE
        without_proof, sep, proof_b64 = message.rpartition(",p=")
        attrs = dict(_attributes(without_proof)) if sep else {}
        if attrs.get("c") != _b64(self._gs2_header.encode()) or attrs.get("r") != self._nonce:
            return _malformed("client-final-message with wrong c= or r=")
        proof = base64.b64decode(proof_b64, validate=True)
        creds = self._creds
        assert creds is not None  # set by credentials(), which CLIENT_FINAL follows
        auth_message = f"{self._client_first_bare},{self._server_first},{without_proof}".encode()
        signature = _hmac(creds.stored_key, auth_message)
        client_key = bytes(a ^ b for a, b in zip(proof, signature, strict=False))
        if len(proof) != len(signature) or not hmac.compare_digest(
            hashlib.sha1(client_key).digest(), creds.stored_key
        ):
            return Failure(SaslCondition.NOT_AUTHORIZED)
        verifier = _b64(_hmac(creds.server_key, auth_message))
        return Success(self._username, self._authzid, f"v={verifier}".encode())


class PlainServer:
    """PLAIN: `authzid NUL authcid NUL password`, checked against the SCRAM credentials."""

    name: ClassVar[str] = "PLAIN"
    __slots__ = ("_authzid", "_password", "_username")

    def __init__(self) -> None:
        self._username = self._authzid = self._password = ""

    def start(self, initial: bytes | None) -> Step:
        return Challenge(b"") if initial is None else self.respond(initial)

    def respond(self, data: bytes) -> Step:
        if self._username:
            return _OUT_OF_ORDER
        try:
            authzid, authcid, password = data.decode("utf-8").split("\0")
            self._username = saslprep(authcid)
        except (ValueError, SaslprepError):
            return _malformed("PLAIN needs authzid NUL authcid NUL password in UTF-8")
        if not self._username:
            return _malformed("empty user name")
        self._authzid, self._password = authzid, password
        return NeedCredentials(self._username)

    def credentials(self, found: ScramCredentials | None) -> Step:
        password, self._password = self._password, ""
        # An unknown user costs the same derivation as a known one (against a decoy that never
        # matches), so the time of the failure does not tell which users exist.
        matches = (found or _decoy(self._username)).matches(password)
        if found is None or not matches:
            return Failure(SaslCondition.NOT_AUTHORIZED)
        return Success(self._username, self._authzid)


# --- client -----------------------------------------------------------------------------------


class ScramClient:
    """The client side of SCRAM-SHA-1, for tests and benchmarks that play devices."""

    __slots__ = ("_client_first_bare", "_nonce", "_password", "_salted", "_verifier")

    def __init__(
        self,
        username: str,
        password: str,
        *,
        nonce: str | None = None,
        salted_password: bytes | None = None,
    ) -> None:
        """*salted_password*: the SaltedPassword already derived for this account's salt and
        count, which RFC 5802 §5.1 lets a client cache to skip the slow derivation."""
        self._nonce = nonce or secrets.token_urlsafe(18)
        self._password = password
        self._salted = salted_password
        self._client_first_bare = f"n={_encode_saslname(username)},r={self._nonce}"
        self._verifier = b""

    def first(self) -> bytes:
        return f"n,,{self._client_first_bare}".encode()

    def final(self, server_first: bytes) -> bytes:
        text = server_first.decode("utf-8")
        try:
            attrs = dict(_attributes(text))
            nonce, salt, iterations = attrs["r"], base64.b64decode(attrs["s"]), int(attrs["i"])
        except (KeyError, ValueError, binascii.Error) as exc:
            raise SaslError(f"bad server-first-message {text!r}") from exc
        if not nonce.startswith(self._nonce) or nonce == self._nonce:
            raise SaslError("the server's nonce does not extend the client's")
        salted = self._salted or salted_password(self._password, salt, iterations)
        without_proof = f"c=biws,r={nonce}"
        auth_message = f"{self._client_first_bare},{text},{without_proof}".encode()
        client_key = _hmac(salted, b"Client Key")
        signature = _hmac(hashlib.sha1(client_key).digest(), auth_message)
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        self._verifier = b"v=" + base64.b64encode(_hmac(_hmac(salted, b"Server Key"), auth_message))
        return f"{without_proof},p={_b64(proof)}".encode()

    def verify(self, server_final: bytes) -> None:
        """Raise SaslError unless the server proved it knows the credentials too."""
        if not self._verifier or not hmac.compare_digest(server_final, self._verifier):
            raise SaslError("the server's signature is wrong")
