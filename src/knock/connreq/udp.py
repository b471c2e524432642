"""UDP connection requests (TR-069 Annex G): the signed datagram the ACS builds and the CPE checks.

One datagram carries an HTTP/1.1 GET whose query holds ts, id, un, cn and sig, where sig is the
hex HMAC-SHA1 keyed with the connection-request password over ts‖id‖un‖cn. Nothing answers it;
the ACS repeats it, which is why a CPE must drop what it has already accepted.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import quote, unquote, urlsplit

MAX_DATAGRAM = 4096
"""Far above any real request (a 256-character username percent-encoded is under 800 bytes);
anything larger is refused before it is decoded."""

_REQUEST_LINE = re.compile(r"GET (\S+) HTTP/1\.[01]")
_DECIMAL = re.compile(r"[0-9]{1,20}")
_SIGNATURE = re.compile(r"[0-9a-fA-F]{40}")
_HOSTNAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
_FIELDS = ("ts", "id", "un", "cn", "sig")


class Reason(StrEnum):
    MALFORMED = "malformed"
    BAD_SIGNATURE = "bad-signature"
    WRONG_USERNAME = "wrong-username"
    OLD_TIMESTAMP = "old-timestamp"
    REPEATED_ID = "repeated-id"


class UdpCrRejected(Exception):
    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class UdpCr:
    """An accepted request. The caller records ts and msg_id as the last accepted ones."""

    host: str
    port: int
    ts: int
    msg_id: int
    username: str
    cnonce: str
    signature: str  # lower-case hex


def signature(password: str, ts: int, msg_id: int, username: str, cnonce: str) -> str:
    text = f"{ts}{msg_id}{username}{cnonce}".encode()
    return hmac.new(password.encode(), text, hashlib.sha1).hexdigest()


def build_udp_cr(
    host: str, port: int, username: str, password: str, ts: int, msg_id: int, cnonce: str
) -> bytes:
    """The datagram for the CPE at *host*:*port* (its UDPConnectionRequestAddress)."""
    if ts < 0 or msg_id < 0:
        raise ValueError("ts and id are unsigned")
    if not 0 < port <= 0xFFFF:
        raise ValueError(f"port {port} out of range")
    authority = f"{_host_literal(host)}:{port}"
    sig = signature(password, ts, msg_id, username, cnonce)
    un, cn = quote(username, safe=""), quote(cnonce, safe="")
    uri = f"http://{authority}?ts={ts}&id={msg_id}&un={un}&cn={cn}&sig={sig}"
    return f"GET {uri} HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode()


def _host_literal(host: str) -> str:
    """The host as the URI's authority writes it; anything else could inject header lines."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        if _HOSTNAME.fullmatch(host) is None:
            raise ValueError(f"{host!r} is neither an IP address nor a host name") from None
        return host
    return f"[{ip}]" if ip.version == 6 else str(ip)


def verify_udp_cr(
    datagram: bytes,
    username: str,
    password: str,
    last_ts: int | None,
    last_id: int | None,
    *,
    skip: frozenset[Reason] = frozenset(),
) -> UdpCr:
    """The request in *datagram* if it is new and signed with *password*, else UdpCrRejected.

    The rules of Annex G: *username* must match, the signature (any letter case) must verify,
    and ts must be newer than *last_ts* while the id differs from *last_id*, both from the last
    accepted request (None before the first). The signature is checked first, so a forgery is
    reported as one even when it replays old values. *skip* leaves rules out: only a simulated
    CPE with a defect on purpose (knock.cpe.defects) passes any.
    """
    cr = _parse(datagram)
    if cr.username != username and Reason.WRONG_USERNAME not in skip:
        raise UdpCrRejected(Reason.WRONG_USERNAME, f"un={cr.username!r}")
    expected = signature(password, cr.ts, cr.msg_id, cr.username, cr.cnonce)
    if not hmac.compare_digest(cr.signature, expected) and Reason.BAD_SIGNATURE not in skip:
        raise UdpCrRejected(Reason.BAD_SIGNATURE, "sig does not match the password")
    if last_ts is not None and cr.ts <= last_ts and Reason.OLD_TIMESTAMP not in skip:
        raise UdpCrRejected(Reason.OLD_TIMESTAMP, f"ts={cr.ts}, last accepted {last_ts}")
    if cr.msg_id == last_id and Reason.REPEATED_ID not in skip:
        raise UdpCrRejected(Reason.REPEATED_ID, f"id={cr.msg_id} was the last accepted")
    return cr


def _parse(datagram: bytes) -> UdpCr:
    if len(datagram) > MAX_DATAGRAM:
        raise _malformed(f"{len(datagram)} bytes, more than {MAX_DATAGRAM}")
    try:
        text = datagram.decode("ascii")
    except UnicodeDecodeError:
        raise _malformed("not ASCII") from None
    # Only the request line matters: the signature covers nothing else, so headers and line
    # endings are taken as they come.
    match = _REQUEST_LINE.fullmatch(text.partition("\n")[0].removesuffix("\r"))
    if match is None:
        raise _malformed("the first line is not `GET <absolute URI> HTTP/1.1`")
    try:
        uri = urlsplit(match.group(1))
        host, port = uri.hostname, uri.port
    except ValueError as exc:
        raise _malformed(f"bad URI: {exc}") from None
    if uri.scheme.lower() != "http" or not host or port is None or uri.path not in ("", "/"):
        raise _malformed("the URI is not http://host:port with an empty path")
    fields = _query(uri.query)
    for name in ("ts", "id"):
        if _DECIMAL.fullmatch(fields[name]) is None:
            raise _malformed(f"{name}={fields[name]!r} is not an unsigned decimal")
    if _SIGNATURE.fullmatch(fields["sig"]) is None:
        raise _malformed("sig is not 40 hex digits")
    return UdpCr(
        host=host,
        port=port,
        ts=int(fields["ts"]),
        msg_id=int(fields["id"]),
        username=fields["un"],
        cnonce=fields["cn"],
        signature=fields["sig"].lower(),
    )


def _query(query: str) -> dict[str, str]:
    """The five fields, percent-decoded; '+' stays '+', as the URI (not a form) carries them."""
    fields: dict[str, str] = {}
    for pair in query.split("&"):
        name, equals, value = pair.partition("=")
        if name not in _FIELDS:
            continue  # room for fields a later amendment adds
        if not equals:
            raise _malformed(f"{name} without a value")
        if name in fields:
            raise _malformed(f"{name} given twice")
        try:
            fields[name] = unquote(value, errors="strict")
        except UnicodeDecodeError:
            raise _malformed(f"{name} is not percent-encoded UTF-8") from None
    missing = [name for name in _FIELDS if name not in fields]
    if missing:
        raise _malformed(f"the query lacks {', '.join(missing)}")
    return fields


def _malformed(detail: str) -> UdpCrRejected:
    return UdpCrRejected(Reason.MALFORMED, detail)
