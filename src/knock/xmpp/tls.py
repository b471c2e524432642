"""Server-side TLS over memory buffers: ciphertext in, plaintext out, and back.

asyncio's TLS transport keeps a 256 KiB read buffer for every connection (2.5 GB for 10,000
idle devices); this layer keeps only OpenSSL's own state. It also makes STARTTLS a change of
mode inside the connection instead of a swap of transports under it.
"""

from __future__ import annotations

import ssl
from typing import Final

READ_SIZE = 16 * 1024  # one TLS record's worth of plaintext
CLOSED_IN_HANDSHAKE: Final = "CLOSED_IN_HANDSHAKE"


class TlsError(Exception):
    """The peer broke the TLS protocol: the connection cannot go on. *reason* is OpenSSL's
    (`TLSV1_ALERT_UNKNOWN_CA`, ...) when it gave one."""

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason

    @property
    def refusal(self) -> str | None:
        """What the peer said of our certificate when it aborted the handshake for it
        (RFC 8446 §6.2 alerts: unknown-ca, bad-certificate, ...), else None."""
        return CERTIFICATE_ALERTS.get(self.reason or "")


# The alerts a client sends when it does not accept the server's certificate, as OpenSSL names
# them when it receives one.
CERTIFICATE_ALERTS: Final = {
    "TLSV1_ALERT_UNKNOWN_CA": "unknown-ca",
    "SSLV3_ALERT_BAD_CERTIFICATE": "bad-certificate",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN": "certificate-unknown",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": "certificate-expired",
    "SSLV3_ALERT_CERTIFICATE_REVOKED": "certificate-revoked",
    "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE": "unsupported-certificate",
    "TLSV1_ALERT_ACCESS_DENIED": "access-denied",
    # No alert: the client closed the connection once it had the server's certificate, as
    # clients on asyncio's TLS do when they refuse it.
    CLOSED_IN_HANDSHAKE: "closed-in-handshake",
}


class TlsLayer:
    __slots__ = ("_incoming", "_outgoing", "_ready", "_tls", "eof", "started")

    def __init__(self, context: ssl.SSLContext, server_hostname: str | None = None) -> None:
        """The server end; with *server_hostname*, the client end checking that name."""
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = context.wrap_bio(
            self._incoming,
            self._outgoing,
            server_side=server_hostname is None,
            server_hostname=server_hostname,
        )
        self._ready = False
        self.eof = False  # the peer sent close_notify
        self.started = False  # the peer's first handshake message came

    @property
    def in_handshake(self) -> bool:
        """Begun by the peer and not finished."""
        return self.started and not self._ready

    def receive(self, data: bytes) -> bytes:
        """Feed ciphertext; return the plaintext it completed (often none during the
        handshake). Then write `outgoing()`, which may hold handshake messages."""
        self._incoming.write(data)
        self.started = self.started or bool(data)
        chunks = []
        try:
            if not self._ready:
                self._tls.do_handshake()
                self._ready = True
            while chunk := self._tls.read(READ_SIZE):
                chunks.append(chunk)
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLZeroReturnError:
            self.eof = True
        except ssl.SSLError as exc:
            raise TlsError(str(exc), exc.reason) from exc
        return b"".join(chunks)

    def send(self, plaintext: bytes) -> None:
        """Encrypt *plaintext* into `outgoing()`. Before the handshake ends there is no one to
        send to (only a stream error for a connection being dropped can come that early)."""
        if self._ready:
            self._tls.write(plaintext)

    def outgoing(self) -> bytes:
        return self._outgoing.read()
