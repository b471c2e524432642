"""Classic STUN (RFC 3489) messages with TR-111's two attributes: datagrams to messages and back.

RFC 3489 has no magic cookie: the transaction id is 16 opaque bytes, and RFC 5389 clients (whose
ids start with the cookie) are answered the same way. Knock writes every attribute the 3489 way,
its value padded to a multiple of 4 bytes inside the length, and reads RFC 5389's way too (the
exact length, then padding), which lets CPEs built on modern STUN libraries through.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum

from knock.stun.attributes import (
    CRB_VALUE,
    DECODERS,
    ERROR_REASONS,
    KNOWN,
    MAC_SIZE,
    OPTIONAL_FROM,
    Address,
    AttributeType,
    ChangeRequest,
    ErrorCode,
    decode_address,
    decode_change_request,
    decode_error,
    decode_unknown,
    decode_username,
    encode_address,
    encode_error,
    encode_unknown,
    encode_username,
)

DEFAULT_PORT = 3478
HEADER_SIZE = 20
TXID_SIZE = 16

_HEADER = struct.Struct("!HH16s")
_ATTR_HEADER = struct.Struct("!HH")
_INTEGRITY_SIZE = _ATTR_HEADER.size + MAC_SIZE
_MAX_BODY = 0xFFFF


class MessageType(IntEnum):
    BINDING_REQUEST = 0x0001
    BINDING_RESPONSE = 0x0101
    BINDING_ERROR_RESPONSE = 0x0111
    SHARED_SECRET_REQUEST = 0x0002
    SHARED_SECRET_RESPONSE = 0x0102
    SHARED_SECRET_ERROR_RESPONSE = 0x0112


_MESSAGE_TYPES = frozenset(MessageType)


# --- errors -----------------------------------------------------------------------------------


class StunError(ValueError):
    """The datagram is not a STUN message Knock can act on; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Truncated(StunError):
    """The datagram ends before its header, its announced body or one of its attributes."""


class WrongLength(StunError):
    """More bytes follow than the header's length announces."""


class BadPadding(StunError):
    """The body cannot end on the 4-byte boundary every attribute is aligned to."""


class NotStun(StunError):
    """The message type is none of RFC 3489's six."""


class BadAttribute(StunError):
    """A well-framed message with a known attribute whose value is invalid.

    The header is sound, so a request can still be answered 400.
    """

    def __init__(self, reason: str, kind: MessageType, txid: bytes) -> None:
        super().__init__(reason)
        self.kind = kind
        self.txid = txid


class UnknownAttributes(StunError):
    """A valid message carrying comprehension-required attributes Knock does not understand.

    ``message`` is complete, because RFC 3489 §8.1 checks integrity before answering 420.
    """

    def __init__(self, message: Message, unknown: tuple[int, ...]) -> None:
        names = ", ".join(f"0x{kind:04x}" for kind in unknown)
        super().__init__(f"unknown comprehension-required attributes {names}")
        self.message = message
        self.unknown = unknown


# --- messages ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Attribute:
    type: int
    value: bytes


@dataclass(frozen=True, slots=True)
class Message:
    """A parsed message. Attributes after MESSAGE-INTEGRITY are left out: RFC 3489 forbids them
    and RFC 5389 has receivers ignore them."""

    kind: MessageType
    txid: bytes
    attributes: tuple[Attribute, ...] = ()
    raw: bytes = field(default=b"", repr=False)
    integrity_at: int | None = None  # offset of MESSAGE-INTEGRITY in raw

    def first(self, kind: int) -> bytes | None:
        """The value of the first attribute of this type; RFC 5389 ignores repeats."""
        for attribute in self.attributes:
            if attribute.type == kind:
                return attribute.value
        return None

    def has(self, kind: int) -> bool:
        return self.first(kind) is not None

    def address(self, kind: AttributeType) -> Address | None:
        value = self.first(kind)
        return None if value is None else decode_address(value)

    @property
    def username(self) -> str | None:
        value = self.first(AttributeType.USERNAME)
        return None if value is None else decode_username(value)

    @property
    def integrity(self) -> bytes | None:
        return self.first(AttributeType.MESSAGE_INTEGRITY)

    @property
    def change_request(self) -> ChangeRequest:
        value = self.first(AttributeType.CHANGE_REQUEST)
        return ChangeRequest() if value is None else decode_change_request(value)

    @property
    def error(self) -> ErrorCode | None:
        value = self.first(AttributeType.ERROR_CODE)
        return None if value is None else decode_error(value)

    @property
    def unknown_attributes(self) -> tuple[int, ...]:
        value = self.first(AttributeType.UNKNOWN_ATTRIBUTES)
        return () if value is None else decode_unknown(value)

    @property
    def connection_request_binding(self) -> bool:
        return self.has(AttributeType.CONNECTION_REQUEST_BINDING)

    @property
    def binding_change(self) -> bool:
        return self.has(AttributeType.BINDING_CHANGE)


def parse(datagram: bytes) -> Message:
    """The message in *datagram*, or a StunError subclass saying what is wrong with it."""
    if len(datagram) < HEADER_SIZE:
        raise Truncated(f"{len(datagram)} bytes, shorter than the {HEADER_SIZE}-byte header")
    kind_value, length, txid = _HEADER.unpack_from(datagram)
    if kind_value not in _MESSAGE_TYPES:
        raise NotStun(f"message type 0x{kind_value:04x} is not one of RFC 3489's")
    kind = MessageType(kind_value)
    body = len(datagram) - HEADER_SIZE
    if length > body:
        raise Truncated(f"the header announces {length} bytes of attributes, {body} arrived")
    if length < body:
        raise WrongLength(f"the header announces {length} bytes of attributes, {body} follow")
    if length % 4:
        raise BadPadding(f"{length} bytes of attributes cannot all be 4-byte aligned")
    attributes: list[Attribute] = []
    unknown: list[int] = []
    integrity_at: int | None = None
    pos = HEADER_SIZE
    # Every attribute starts 4-byte aligned and the body ends so: 4 header bytes always remain.
    while pos < len(datagram):
        attr_type, attr_length = _ATTR_HEADER.unpack_from(datagram, pos)
        start = pos + _ATTR_HEADER.size
        end = start + attr_length
        if end > len(datagram):
            raise Truncated(
                f"attribute 0x{attr_type:04x} at offset {pos} announces {attr_length} bytes, "
                f"{len(datagram) - start} remain"
            )
        if integrity_at is None:
            value = datagram[start:end]
            _check_value(attr_type, value, kind, txid)
            attributes.append(Attribute(attr_type, value))
            if attr_type not in KNOWN and attr_type < OPTIONAL_FROM:
                unknown.append(attr_type)
            if attr_type == AttributeType.MESSAGE_INTEGRITY:
                integrity_at = pos
        pos = start + (attr_length + 3) // 4 * 4
    message = Message(kind, txid, tuple(attributes), datagram, integrity_at)
    if unknown:
        raise UnknownAttributes(message, tuple(dict.fromkeys(unknown)))
    return message


def _check_value(attr_type: int, value: bytes, kind: MessageType, txid: bytes) -> None:
    decode = DECODERS.get(attr_type)
    if decode is None:
        return
    try:
        decode(value)
    except ValueError as exc:
        name = AttributeType(attr_type).name.replace("_", "-")
        raise BadAttribute(f"{name}: {exc}", kind, txid) from exc


# --- integrity --------------------------------------------------------------------------------


def _mac(key: bytes, text: bytes) -> bytes:
    return hmac.new(key, text, hashlib.sha1).digest()


def _rfc3489_text(text: bytes) -> bytes:
    """RFC 3489 §11.2.8: the message up to MESSAGE-INTEGRITY, zero-padded to a multiple of 64."""
    return text + bytes(-len(text) % 64)


def check_integrity(message: Message, password: str) -> bool:
    """Whether MESSAGE-INTEGRITY is the HMAC-SHA1 of the message keyed with *password*.

    Both RFCs hash the header with its length as sent, which counts MESSAGE-INTEGRITY although
    the hashed text stops before it. RFC 3489 then zero-pads the text to a multiple of 64 bytes;
    RFC 5389 does not, and stacks built on it are common in CPEs, so either form passes.
    """
    mac, at = message.integrity, message.integrity_at
    if mac is None or at is None:
        return False
    key = password.encode()
    as_sent = message.raw[:at]
    rfc5389_text = bytearray(as_sent)
    # RFC 5389 counts up to the end of MESSAGE-INTEGRITY even when attributes follow it.
    struct.pack_into("!H", rfc5389_text, 2, at + _INTEGRITY_SIZE - HEADER_SIZE)
    rfc3489 = hmac.compare_digest(mac, _mac(key, _rfc3489_text(as_sent)))
    rfc5389 = hmac.compare_digest(mac, _mac(key, bytes(rfc5389_text)))
    return rfc3489 | rfc5389  # both computed, so timing does not tell which form matched


# --- building ---------------------------------------------------------------------------------


def encode(
    kind: MessageType,
    txid: bytes,
    attributes: Iterable[tuple[int, bytes]] = (),
    *,
    password: str | None = None,
) -> bytes:
    """A message with these attributes in order, each value a multiple of 4 bytes, and
    MESSAGE-INTEGRITY keyed with *password* last when one is given."""
    if len(txid) != TXID_SIZE:
        raise ValueError(f"a transaction id has {TXID_SIZE} bytes, not {len(txid)}")
    body = b"".join(_ATTR_HEADER.pack(t, len(v)) + v for t, v in _checked(attributes))
    length = len(body) + (_INTEGRITY_SIZE if password is not None else 0)
    if length > _MAX_BODY:
        raise ValueError(f"{length} bytes of attributes do not fit a STUN message")
    message = _HEADER.pack(kind, length, txid) + body
    if password is None:
        return message
    mac = _mac(password.encode(), _rfc3489_text(message))
    return message + _ATTR_HEADER.pack(AttributeType.MESSAGE_INTEGRITY, MAC_SIZE) + mac


def _checked(attributes: Iterable[tuple[int, bytes]]) -> Iterable[tuple[int, bytes]]:
    for attr_type, value in attributes:
        if len(value) % 4 or len(value) > _MAX_BODY:
            raise ValueError(f"attribute 0x{attr_type:04x}: {len(value)} bytes is no 3489 length")
        yield attr_type, value


def binding_request(
    txid: bytes,
    *,
    username: str | None = None,
    username_pad: bytes = b"\0",
    password: str | None = None,
    connection_request_binding: bool = False,
    binding_change: bool = False,
) -> bytes:
    """A Binding Request as a TR-111 CPE sends it; *password* adds MESSAGE-INTEGRITY.
    *username_pad*: the byte that fills USERNAME to a multiple of 4 (RFC 3489 names none)."""
    attributes: list[tuple[int, bytes]] = []
    if username is not None:
        attributes.append((AttributeType.USERNAME, encode_username(username, username_pad)))
    if connection_request_binding:
        attributes.append((AttributeType.CONNECTION_REQUEST_BINDING, CRB_VALUE))
    if binding_change:
        attributes.append((AttributeType.BINDING_CHANGE, b""))
    return encode(MessageType.BINDING_REQUEST, txid, attributes, password=password)


def binding_response(
    txid: bytes,
    mapped: Address,
    *,
    source: Address | None = None,
    changed: Address | None = None,
    reflected_from: Address | None = None,
    password: str | None = None,
) -> bytes:
    """A Binding Response (RFC 3489 §8.1): MAPPED-ADDRESS, then the addresses the server knows,
    and MESSAGE-INTEGRITY keyed like the request's when it carried one."""
    addresses = [
        (AttributeType.MAPPED_ADDRESS, mapped),
        (AttributeType.SOURCE_ADDRESS, source),
        (AttributeType.CHANGED_ADDRESS, changed),
        (AttributeType.REFLECTED_FROM, reflected_from),
    ]
    attributes = [(kind, encode_address(a)) for kind, a in addresses if a is not None]
    return encode(MessageType.BINDING_RESPONSE, txid, attributes, password=password)


def binding_error(
    txid: bytes, code: int, reason: str | None = None, unknown: Sequence[int] = ()
) -> bytes:
    """A Binding Error Response; a 420 lists the *unknown* attribute types."""
    if (code == 420) != bool(unknown):
        raise ValueError("UNKNOWN-ATTRIBUTES belongs to a 420 and a 420 needs it")
    text = ERROR_REASONS.get(code, "") if reason is None else reason
    attributes = [(AttributeType.ERROR_CODE, encode_error(code, text))]
    if unknown:
        attributes.append((AttributeType.UNKNOWN_ATTRIBUTES, encode_unknown(unknown)))
    return encode(MessageType.BINDING_ERROR_RESPONSE, txid, attributes)
