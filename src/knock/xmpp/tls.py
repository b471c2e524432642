"""Server-side TLS over memory buffers: ciphertext in, plaintext out, and back.

asyncio's TLS transport keeps a 256 KiB read buffer for every connection (2.5 GB for 10,000
idle devices); this layer keeps only OpenSSL's own state. It also makes STARTTLS a change of
mode inside the connection instead of a swap of transports under it.
"""

from __future__ import annotations

import ssl

READ_SIZE = 16 * 1024  # one TLS record's worth of plaintext


class TlsError(Exception):
    """The peer broke the TLS protocol: the connection cannot go on."""


class TlsLayer:
    __slots__ = ("_incoming", "_outgoing", "_ready", "_tls", "eof")

    def __init__(self, context: ssl.SSLContext) -> None:
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_side=True)
        self._ready = False
        self.eof = False  # the peer sent close_notify

    def receive(self, data: bytes) -> bytes:
        """Feed ciphertext; return the plaintext it completed (often none during the
        handshake). Then write `outgoing()`, which may hold handshake messages."""
        self._incoming.write(data)
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
            raise TlsError(str(exc)) from exc
        return b"".join(chunks)

    def send(self, plaintext: bytes) -> None:
        """Encrypt *plaintext* into `outgoing()`. Before the handshake ends there is no one to
        send to (only a stream error for a connection being dropped can come that early)."""
        if self._ready:
            self._tls.write(plaintext)

    def outgoing(self) -> bytes:
        return self._outgoing.read()
