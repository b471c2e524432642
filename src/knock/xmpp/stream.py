"""The XMPP stream, sans-IO: bytes of one stream in, events out; stanzas and headers to bytes.

Framing and parsing are split. A byte scanner finds where each top-level element (a stanza)
begins and ends, following only tags, quoted attribute values and CDATA; lxml then parses each
complete stanza on its own, wrapped in the stream's opening tag so that the prefixes the stream
declared resolve, with the hardened settings of `knock.xmlsafe`. Why not one lxml pull parser per
stream: it holds about 10 KB for every connection, which an idle device keeps for hours, and it
cannot say where a stanza began, so a size limit could only be guessed. Here an idle stream holds
its opening tag and an empty buffer, and a stanza's exact size is known before lxml sees it.

`<`, `>`, quotes and `]]>` are ASCII and never occur inside a multi-byte UTF-8 sequence, so the
scanner works on raw bytes and a chunk may end anywhere.
"""

from __future__ import annotations

import copy
import enum
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Final

from lxml import etree

from knock.xmpp import ns

DEFAULT_MAX_STANZA = 64 * 1024
DEFAULT_MAX_DEPTH = 32
# An opening tag (with its XML declaration) is a few hundred bytes; it is also re-parsed with
# every stanza, so a large one would multiply the cost of each.
MAX_HEADER = 4096

STREAM_TAG = ns.qname(ns.STREAMS, "stream")


class StreamCondition(enum.StrEnum):
    """Stream error conditions (RFC 6120 §4.9.3) that Knock sends."""

    BAD_FORMAT = "bad-format"
    CONFLICT = "conflict"
    CONNECTION_TIMEOUT = "connection-timeout"
    HOST_UNKNOWN = "host-unknown"
    INTERNAL_SERVER_ERROR = "internal-server-error"
    INVALID_NAMESPACE = "invalid-namespace"
    NOT_AUTHORIZED = "not-authorized"
    NOT_WELL_FORMED = "not-well-formed"
    POLICY_VIOLATION = "policy-violation"
    RESOURCE_CONSTRAINT = "resource-constraint"
    RESTRICTED_XML = "restricted-xml"
    SYSTEM_SHUTDOWN = "system-shutdown"
    UNSUPPORTED_ENCODING = "unsupported-encoding"
    UNSUPPORTED_STANZA_TYPE = "unsupported-stanza-type"
    UNSUPPORTED_VERSION = "unsupported-version"


@dataclass(frozen=True, slots=True)
class StreamOpened:
    """The peer's opening `<stream:stream>` tag.

    ``attrs`` uses lxml's names: ``to``, ``from``, ``version``, ``id`` and
    ``{http://www.w3.org/XML/1998/namespace}lang``. ``namespace`` is the default namespace the
    stanzas are in (``jabber:client`` on a client stream), or None when undeclared.
    """

    attrs: Mapping[str, str]
    namespace: str | None


@dataclass(frozen=True, slots=True)
class Stanza:
    """One complete top-level element, detached from the stream and carrying only the
    namespace declarations it uses."""

    element: etree._Element


@dataclass(frozen=True, slots=True)
class StreamClosed:
    """The peer sent `</stream:stream>`."""


@dataclass(frozen=True, slots=True)
class StreamError:
    """The bytes broke a rule; the stream is over and the caller sends this condition."""

    condition: StreamCondition
    text: str = ""


StreamEvent = StreamOpened | Stanza | StreamClosed | StreamError


class _Phase(enum.Enum):
    PROLOG = enum.auto()  # before the opening tag
    OPEN = enum.auto()
    CLOSING = enum.auto()  # an empty `<stream:stream/>` was read: StreamClosed comes next
    ENDED = enum.auto()


_PARSER: Final = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    dtd_validation=False,
    load_dtd=False,
    huge_tree=False,
    collect_ids=False,
)
_TAG_STOP: Final = re.compile(rb"[\"'>]")
_NAME_END: Final = re.compile(rb"[ \t\r\n/>]")
_NON_SPACE: Final = re.compile(rb"[^ \t\r\n]")
# Any text, then one start, end or empty-element tag: quoted values may hold '>', nothing in a
# tag may hold '<'. Comments, CDATA and processing instructions do not match.
_PLAIN_TAG: Final = re.compile(rb"[^<]*<(/?)[^\s!?/<>'\"](?:[^'\"<>]|'[^'<]*'|\"[^\"<]*\")*>")
_CDATA_OPEN: Final = b"<![CDATA["
_XML_DECL: Final = b"<?xml"
_SPACE: Final = b" \t\r\n"
_SLASH, _BANG, _QUESTION = b"/!?"


class _Incomplete:
    """The markup at the current position is not all here yet."""


_INCOMPLETE: Final = _Incomplete()


class StreamParser:
    """Incremental parser of one direction of an XMPP stream.

    ``for event in parser.feed(chunk)`` yields the events the bytes so far complete. Events are
    parsed as they are iterated: a caller that restarts the stream (`restart`) after the stanza
    that negotiated SASL, in the middle of the loop, has the bytes after that stanza parsed as
    the new stream. After a StreamError or StreamClosed, input is ignored.
    """

    __slots__ = (
        "_buf",
        "_close",
        "_decl_allowed",
        "_header",
        "_max_depth",
        "_max_stanza",
        "_phase",
        "_pos",
        "_quote",
        "_resume",
        "_start",
        "_tags",
    )

    def __init__(
        self, max_stanza: int = DEFAULT_MAX_STANZA, max_depth: int = DEFAULT_MAX_DEPTH
    ) -> None:
        self._max_stanza = max_stanza
        self._max_depth = max_depth
        self._buf = bytearray()
        self._tags: list[bytes] = []  # names of the stanza's elements not yet closed
        self._pos = 0
        self.restart()

    def restart(self) -> None:
        """Expect a new stream (RFC 6120 §4.3.3), keeping the bytes after the last event.

        Call it between events: right after the element that ended the old stream's use.
        """
        del self._buf[: self._pos]
        self._pos = 0
        self._start = 0  # where the stanza being read begins, while _tags is not empty
        self._tags.clear()
        self._resume = -1  # >= 0: the markup at _pos is incomplete; scanning continues here
        self._quote = 0  # the quote an incomplete tag is inside, if any
        self._phase = _Phase.PROLOG
        self._decl_allowed = True
        self._header = b""
        self._close = b""

    def feed(self, data: bytes) -> Iterator[StreamEvent]:
        if self._phase is not _Phase.ENDED:
            self._buf += data
        return self._events()

    def _events(self) -> Iterator[StreamEvent]:
        while (event := self._next()) is not None:
            yield event

    def _next(self) -> StreamEvent | None:
        buf = self._buf
        while self._phase is not _Phase.ENDED:
            if self._phase is _Phase.CLOSING:
                self._phase = _Phase.ENDED
                return StreamClosed()
            if self._resume < 0:
                lt = buf.find(b"<", self._pos)
                end = len(buf) if lt < 0 else lt
                if not self._tags and _NON_SPACE.search(buf, self._pos, end):
                    return self._fail(StreamCondition.BAD_FORMAT, "text outside a stanza")
                self._pos = end
                if lt < 0:
                    return self._need_more()
                if not self._tags and self._phase is _Phase.OPEN:
                    whole = self._whole_stanza(lt)
                    if whole > 0:
                        self._start = lt
                        self._consumed(whole - 1)
                        return self._stanza(whole)
                self._resume = lt + 1
            event = self._markup()
            if isinstance(event, _Incomplete):
                return self._need_more()
            if event is not None:
                return event
        return None

    def _whole_stanza(self, at: int) -> int:
        """Where the stanza starting at *at* ends, when all of it is here and plain (tags and
        text, within the limits): one regex call a tag instead of the resumable scan, which is
        most of the parser's time on small stanzas. -1 leaves the stanza to that scan."""
        buf, match, max_depth = self._buf, _PLAIN_TAG.match, self._max_depth
        limit = min(len(buf), at + self._max_stanza)
        pos, depth = at, 0
        while (tag := match(buf, pos, limit)) is not None:
            pos = tag.end()
            if tag.group(1):
                depth -= 1
                if depth < 0:
                    return -1
            elif depth >= max_depth:
                return -1
            elif buf[pos - 2] != _SLASH:
                depth += 1
            if depth == 0:
                return pos
        return -1

    def _markup(self) -> StreamEvent | _Incomplete | None:
        """Read the markup starting at `_pos`: an event, None when it needs no event."""
        buf, at = self._buf, self._pos
        if len(buf) < at + 2:
            return _INCOMPLETE
        kind = buf[at + 1]
        if kind == _SLASH:
            gt = buf.find(b">", self._resume)
            if gt < 0:
                self._resume = len(buf)
                return _INCOMPLETE
            return self._end_tag(at, gt)
        if kind == _BANG:
            return self._bang(at)
        if kind == _QUESTION:
            return self._declaration(at)
        gt = self._tag_end()
        if gt < 0:
            return _INCOMPLETE
        return self._start_tag(at, gt)

    def _consumed(self, last: int) -> None:
        self._pos = last + 1
        self._resume = -1
        self._quote = 0

    def _tag_end(self) -> int:
        """The position of the `>` closing the start tag at `_pos`, or -1 if not here yet.

        Resumable, so that a tag arriving a byte at a time is scanned once, not once per byte.
        """
        buf, i, quote = self._buf, self._resume, self._quote
        while True:
            if quote:
                j = buf.find(quote, i)
                if j < 0:
                    break
                i, quote = j + 1, 0
                continue
            match = _TAG_STOP.search(buf, i)
            if match is None:
                break
            i = match.start()
            if buf[i] == 0x3E:  # '>'
                return i
            quote, i = buf[i], i + 1
        self._resume, self._quote = len(buf), quote
        return -1

    def _start_tag(self, at: int, gt: int) -> StreamEvent | None:
        empty = self._buf[gt - 1] == _SLASH
        self._consumed(gt)
        if self._phase is _Phase.PROLOG:
            return self._open(bytes(self._buf[at : gt + 1]), empty)
        if len(self._tags) >= self._max_depth:
            return self._fail(
                StreamCondition.POLICY_VIOLATION, f"elements nested over {self._max_depth} deep"
            )
        if not self._tags:
            self._start = at
        if empty:
            return None if self._tags else self._stanza(gt + 1)
        name_end = _NAME_END.search(self._buf, at + 1, gt + 1)
        self._tags.append(bytes(self._buf[at + 1 : name_end.start() if name_end else gt]))
        return None

    def _end_tag(self, at: int, gt: int) -> StreamEvent | None:
        self._consumed(gt)
        name = bytes(self._buf[at + 2 : gt]).rstrip(_SPACE)
        if self._tags and self._tags[-1] == name:
            self._tags.pop()
            return None if self._tags else self._stanza(gt + 1)
        if self._tags or self._phase is _Phase.PROLOG or b"</" + name + b">" != self._close:
            return self._fail(StreamCondition.NOT_WELL_FORMED, "end tag matches no start tag")
        self._phase = _Phase.ENDED
        del self._buf[:]
        return StreamClosed()

    def _bang(self, at: int) -> StreamEvent | _Incomplete | None:
        buf = self._buf
        head = bytes(buf[at : at + len(_CDATA_OPEN)])
        if head != _CDATA_OPEN:
            if _CDATA_OPEN.startswith(head):
                return _INCOMPLETE
            return self._fail(
                StreamCondition.RESTRICTED_XML, "DOCTYPE, DTD declarations and comments are refused"
            )
        if not self._tags:
            return self._fail(StreamCondition.BAD_FORMAT, "text outside a stanza")
        body = at + len(_CDATA_OPEN)
        end = buf.find(b"]]>", max(self._resume, body))
        if end < 0:
            self._resume = max(body, len(buf) - 2)
            return _INCOMPLETE
        self._consumed(end + 2)
        return None

    def _declaration(self, at: int) -> StreamEvent | _Incomplete | None:
        """`<?xml ...?>` may open a stream; any other processing instruction is refused."""
        buf = self._buf
        allowed = self._phase is _Phase.PROLOG and self._decl_allowed
        head = bytes(buf[at : at + len(_XML_DECL) + 1])
        if allowed and _XML_DECL.startswith(head):
            return _INCOMPLETE
        if not (allowed and head[:-1] == _XML_DECL and head[-1] in _SPACE):
            return self._fail(StreamCondition.RESTRICTED_XML, "processing instructions are refused")
        end = buf.find(b"?>", max(self._resume, at + 5))
        if end < 0:
            self._resume = max(at + 5, len(buf) - 1)
            return _INCOMPLETE
        self._consumed(end + 1)
        self._decl_allowed = False
        try:
            encoding = etree.fromstring(bytes(buf[at : end + 2]) + b"<x/>", _PARSER)
        except etree.XMLSyntaxError as exc:
            return self._fail(StreamCondition.NOT_WELL_FORMED, f"XML declaration: {exc}")
        if (encoding.getroottree().docinfo.encoding or "UTF-8").upper() not in ("UTF-8", "UTF8"):
            return self._fail(StreamCondition.UNSUPPORTED_ENCODING, "XMPP streams are UTF-8")
        return None

    def _open(self, header: bytes, empty: bool) -> StreamEvent:
        match = _NAME_END.search(header, 1)
        name = header[1 : match.start() if match else -1]
        close = b"</" + name + b">"
        try:
            root = etree.fromstring(header if empty else header + close, _PARSER)
        except etree.XMLSyntaxError as exc:
            return self._fail(StreamCondition.NOT_WELL_FORMED, f"stream header: {exc}")
        if root.tag != STREAM_TAG:
            return self._fail(
                StreamCondition.INVALID_NAMESPACE, f"a stream is {STREAM_TAG}, not {root.tag}"
            )
        self._header, self._close = header, close
        self._phase = _Phase.CLOSING if empty else _Phase.OPEN
        return StreamOpened({str(k): str(v) for k, v in root.attrib.items()}, root.nsmap.get(None))

    def _stanza(self, end: int) -> StreamEvent:
        start = self._start
        if end - start > self._max_stanza:
            return self._too_large()
        try:
            wrapper = etree.fromstring(self._header + self._buf[start:end] + self._close, _PARSER)
        except etree.XMLSyntaxError as exc:
            return self._fail(StreamCondition.NOT_WELL_FORMED, str(exc))
        # The copy declares only the namespaces the stanza uses, not every one of the stream's.
        # lxml's shallow copy copies the whole subtree too, without copy.deepcopy's memo (half
        # the time, on every stanza).
        return Stanza(copy.copy(wrapper[0]))

    def _need_more(self) -> StreamEvent | None:
        hold = self._start if self._tags else self._pos
        if self._phase is _Phase.OPEN:
            if len(self._buf) - hold > self._max_stanza:
                return self._too_large()
        elif len(self._buf) - hold > MAX_HEADER:
            return self._fail(
                StreamCondition.POLICY_VIOLATION, f"stream header over {MAX_HEADER} bytes"
            )
        if hold:
            del self._buf[:hold]
            self._pos -= hold
            self._start -= hold if self._tags else 0
            self._resume -= hold if self._resume >= 0 else 0
        return None

    def _too_large(self) -> StreamError:
        return self._fail(StreamCondition.POLICY_VIOLATION, f"stanza over {self._max_stanza} bytes")

    def _fail(self, condition: StreamCondition, text: str) -> StreamError:
        self._phase = _Phase.ENDED
        del self._buf[:]
        self._tags.clear()
        return StreamError(condition, text)


# --- serializing ------------------------------------------------------------------------------

STREAM_CLOSE: Final = b"</stream:stream>"
_CLIENT_XMLNS: Final = b' xmlns="jabber:client"'
_ATTR_ESCAPES: Final = str.maketrans({"&": "&amp;", "<": "&lt;", "'": "&apos;", '"': "&quot;"})
_TEXT_ESCAPES: Final = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


def stream_header(
    *,
    to: str | None = None,
    from_: str | None = None,
    stream_id: str | None = None,
    lang: str = "en",
) -> bytes:
    """An XML declaration and opening `<stream:stream>` tag of a client stream."""
    attrs = [("from", from_), ("to", to), ("id", stream_id), ("version", "1.0"), ("xml:lang", lang)]
    rendered = "".join(f" {k}='{v.translate(_ATTR_ESCAPES)}'" for k, v in attrs if v is not None)
    return (
        f"<?xml version='1.0'?><stream:stream xmlns='{ns.CLIENT}' "
        f"xmlns:stream='{ns.STREAMS}'{rendered}>"
    ).encode()


def escape_text(text: str) -> str:
    return text.translate(_TEXT_ESCAPES)


def stream_error(condition: StreamCondition, text: str = "") -> bytes:
    """A `<stream:error>` element; the caller follows it with STREAM_CLOSE."""
    described = f"<text xmlns='{ns.STREAM_ERRORS}'>{escape_text(text)}</text>" if text else ""
    return (
        f"<stream:error><{condition} xmlns='{ns.STREAM_ERRORS}'/>{described}</stream:error>"
    ).encode()


def serialize(element: etree._Element) -> bytes:
    """A stanza as UTF-8 bytes for a client stream.

    The stream already makes `jabber:client` the default namespace, so the stanza does not
    declare it again: embedded XMPP stacks with hand-written parsers expect bare stanzas.
    """
    data: bytes = etree.tostring(element, encoding="UTF-8", xml_declaration=False)
    head_end = data.find(b">")
    at = data.find(_CLIENT_XMLNS, 0, head_end)
    if at < 0:
        return data
    return data[:at] + data[at + len(_CLIENT_XMLNS) :]
