"""Attribute types and values of classic STUN (RFC 3489) and TR-111.

Encoders write RFC 3489's form, every value a multiple of 4 bytes; decoders raise ValueError
with a short reason, which the parser turns into a BadAttribute.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum

CRB_VALUE = b"dslforum.org/TR-111 "
"""The value TR-111 fixes for CONNECTION-REQUEST-BINDING, its trailing space included."""

MAC_SIZE = 20
OPTIONAL_FROM = 0x8000  # RFC 3489 §11.2: types at or above may be ignored when not understood

_V4, _V6 = socket.AF_INET, socket.AF_INET6
_FAMILIES = {b"\x01": (8, _V4), b"\x02": (20, _V6)}  # family: (value size, socket family)

Address = tuple[str, int]
"""(host, port) with the host as an IP literal, as asyncio reports a datagram's source."""


class AttributeType(IntEnum):
    MAPPED_ADDRESS = 0x0001
    RESPONSE_ADDRESS = 0x0002
    CHANGE_REQUEST = 0x0003
    SOURCE_ADDRESS = 0x0004
    CHANGED_ADDRESS = 0x0005
    USERNAME = 0x0006
    PASSWORD = 0x0007
    MESSAGE_INTEGRITY = 0x0008
    ERROR_CODE = 0x0009
    UNKNOWN_ATTRIBUTES = 0x000A
    REFLECTED_FROM = 0x000B
    # TR-111: comprehension-optional by number, yet understood here.
    CONNECTION_REQUEST_BINDING = 0xC001
    BINDING_CHANGE = 0xC002


KNOWN = frozenset(AttributeType)

ERROR_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    420: "Unknown Attribute",
    430: "Stale Credentials",
    431: "Integrity Check Failure",
    432: "Missing Username",
    433: "Use TLS",
    500: "Server Error",
    600: "Global Failure",
}
"""The reason phrases RFC 3489 §11.2.9 recommends."""


@dataclass(frozen=True, slots=True)
class ChangeRequest:
    change_ip: bool = False
    change_port: bool = False

    @property
    def requested(self) -> bool:
        return self.change_ip or self.change_port


@dataclass(frozen=True, slots=True)
class ErrorCode:
    code: int
    reason: str


def pad4(value: bytes, fill: bytes) -> bytes:
    return value + fill * (-len(value) % 4)


def canonical(address: Address) -> Address:
    """The address with an IPv4-mapped IPv6 host written as IPv4: a dual-stack socket reports
    IPv4 peers that way, and MAPPED-ADDRESS must name them as IPv4."""
    host, port = address
    if ":" not in host:
        return address  # the common case stays cheap: this runs for every datagram
    ip = ipaddress.IPv6Address(host)
    return (str(ip.ipv4_mapped) if ip.ipv4_mapped else socket.inet_ntop(_V6, ip.packed)), port


def _packed(host: str) -> bytes:
    try:
        return socket.inet_pton(_V6 if ":" in host else _V4, host)
    except OSError:
        raise ValueError(f"{host!r} is not an IP address") from None


def encode_address(address: Address) -> bytes:
    host, port = canonical(address)
    if not 0 <= port <= 0xFFFF:
        raise ValueError(f"port {port} out of range")
    packed = _packed(host)
    return struct.pack("!BBH", 0, 1 if len(packed) == 4 else 2, port) + packed


def decode_address(value: bytes) -> Address:
    """The host in the form the kernel reports a peer's, so the two compare as strings."""
    # The first byte is ignored (RFC 3489 §11.2.1); family 2 is RFC 5389's IPv6.
    form = _FAMILIES.get(value[1:2])
    if form is None or form[0] != len(value):
        raise ValueError(f"{len(value)} bytes with family {value[1:2].hex() or 'none'}")
    return socket.inet_ntop(form[1], value[4:]), int.from_bytes(value[2:4], "big")


def encode_change_request(request: ChangeRequest) -> bytes:
    return struct.pack("!I", (4 if request.change_ip else 0) | (2 if request.change_port else 0))


def decode_change_request(value: bytes) -> ChangeRequest:
    if len(value) != 4:
        raise ValueError(f"{len(value)} bytes instead of 4")
    flags = value[3]
    return ChangeRequest(change_ip=bool(flags & 4), change_port=bool(flags & 2))


def encode_username(username: str, pad: bytes = b"\0") -> bytes:
    # RFC 3489 makes the value itself a multiple of 4 bytes and names no padding byte: NULs by
    # default, as stund's CPEs do; spaces, as other deployed clients do.
    return pad4(username.encode(), pad)


def decode_username(value: bytes) -> str:
    # Trailing NULs and spaces are padding, whichever byte the client chose (see encode_username).
    try:
        return value.rstrip(b" \0").decode()
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 (byte {exc.start})") from None


def decode_integrity(value: bytes) -> bytes:
    if len(value) != MAC_SIZE:
        raise ValueError(f"{len(value)} bytes instead of {MAC_SIZE}")
    return value


def encode_error(code: int, reason: str) -> bytes:
    if not 100 <= code <= 699:
        raise ValueError(f"error code {code} out of range 100..699")
    # RFC 3489 §11.2.9 pads the reason phrase with spaces to a multiple of 4 bytes.
    return struct.pack("!HBB", 0, code // 100, code % 100) + pad4(reason.encode(), b" ")


def decode_error(value: bytes) -> ErrorCode:
    if len(value) < 4:
        raise ValueError(f"{len(value)} bytes, fewer than 4")
    klass, number = value[2] & 0x07, value[3]
    if not 1 <= klass <= 6 or number > 99:
        raise ValueError(f"class {klass} number {number} is no code in 100..699")
    return ErrorCode(klass * 100 + number, value[4:].decode().rstrip(" \0"))


def encode_unknown(kinds: Sequence[int]) -> bytes:
    if not kinds:
        raise ValueError("a 420 lists at least one unknown attribute")
    # RFC 3489 §11.2.10: an odd count repeats one entry to keep the value 4-byte aligned.
    padded = [*kinds, kinds[0]] if len(kinds) % 2 else list(kinds)
    return struct.pack(f"!{len(padded)}H", *padded)


def decode_unknown(value: bytes) -> tuple[int, ...]:
    if len(value) % 2:
        raise ValueError(f"{len(value)} bytes, not a list of 16-bit types")
    kinds = struct.unpack(f"!{len(value) // 2}H", value)
    return tuple(dict.fromkeys(kinds))  # the alignment repeat is not a second entry


DECODERS: dict[int, Callable[[bytes], object]] = {
    AttributeType.MAPPED_ADDRESS: decode_address,
    AttributeType.RESPONSE_ADDRESS: decode_address,
    AttributeType.SOURCE_ADDRESS: decode_address,
    AttributeType.CHANGED_ADDRESS: decode_address,
    AttributeType.REFLECTED_FROM: decode_address,
    AttributeType.CHANGE_REQUEST: decode_change_request,
    AttributeType.USERNAME: decode_username,
    AttributeType.MESSAGE_INTEGRITY: decode_integrity,
    AttributeType.ERROR_CODE: decode_error,
    AttributeType.UNKNOWN_ATTRIBUTES: decode_unknown,
}
"""The values with a structure to check. PASSWORD is opaque, and TR-111's two attributes signal by
their presence: a CPE writing CONNECTION-REQUEST-BINDING without the trailing space still asks
for a binding."""
