from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from knock.xmpp.stream import (
    MAX_HEADER,
    STREAM_CLOSE,
    Stanza,
    StreamClosed,
    StreamCondition,
    StreamError,
    StreamEvent,
    StreamOpened,
    StreamParser,
    serialize,
    stream_error,
    stream_header,
)

HEADER = (
    b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
    b"xmlns:stream='http://etherx.jabber.org/streams' to='knock.test' version='1.0' "
    b"xml:lang='en'>"
)
OPENED = StreamOpened(
    {"to": "knock.test", "version": "1.0", "{http://www.w3.org/XML/1998/namespace}lang": "en"},
    "jabber:client",
)
CONN_REQ = (
    b'<iq type="get" from="acs@xmpp.example/knock" to="cpe-0001@xmpp.example/cwmp" id="cr1">'
    b'<connectionRequest xmlns="urn:broadband-forum-org:cwmp:xmppConnReq-1-0">'
    b"<username>CR username</username><password>CR password</password>"
    b"</connectionRequest></iq>"
)


def collect(chunks: list[bytes], parser: StreamParser | None = None) -> list[object]:
    """Events with each stanza replaced by its bytes, so lists compare by value."""
    parser = parser or StreamParser()
    out: list[object] = []
    for chunk in chunks:
        for event in parser.feed(chunk):
            out.append(serialize(event.element) if isinstance(event, Stanza) else event)
    return out


def errors(data: bytes, **limits: int) -> StreamEvent:
    """The last event of *data* fed at once and byte by byte, which must agree."""
    whole = collect([data], StreamParser(**limits))
    split = collect([data[i : i + 1] for i in range(len(data))], StreamParser(**limits))
    assert whole == split
    last = whole[-1]
    assert isinstance(last, StreamError)
    return last


def test_a_stream_becomes_events_byte_exact() -> None:
    data = HEADER + b"<presence/>\n " + CONN_REQ + b"  " + STREAM_CLOSE
    assert collect([data]) == [OPENED, b"<presence/>", CONN_REQ, StreamClosed()]


def test_stanzas_keep_only_the_namespaces_they_use() -> None:
    header = HEADER.replace(b" to=", b" xmlns:x='urn:x' to=")
    events = collect([header + b"<message><x:ext/><stream:error/></message>"])
    assert events[1] == (
        b'<message xmlns:x="urn:x" xmlns:stream="http://etherx.jabber.org/streams">'
        b"<x:ext/><stream:error/></message>"
    )


def test_text_is_utf8_and_character_data_is_decoded() -> None:
    data = HEADER + "<message><body>é &amp; &#x41; <![CDATA[<&>]]> ></body></message>".encode()
    assert (
        collect([data])[1]
        == "<message><body>é &amp; A &lt;&amp;&gt; &gt;</body></message>".encode()
    )


def test_a_chunk_may_end_inside_a_multibyte_character() -> None:
    data = HEADER + "<message><body>€😀</body></message>".encode()
    euro = data.index("€".encode())
    chunks = [data[: euro + 1], data[euro + 1 : euro + 5], data[euro + 5 :]]
    assert collect(chunks) == collect([data])
    assert collect(chunks)[1] == "<message><body>€😀</body></message>".encode()


def test_quoted_attribute_values_may_hold_markup_characters() -> None:
    stanza = b"<iq id='a>b\"c' type=\"get\" to='x/>'><q xmlns='urn:q' v=\"'>'\"/></iq>"
    data = HEADER + stanza
    expected = b'<iq id="a&gt;b&quot;c" type="get" to="x/&gt;"><q xmlns="urn:q" v="\'&gt;\'"/></iq>'
    assert collect([data])[1] == expected
    assert collect([data[i : i + 1] for i in range(len(data))])[1] == expected


def test_xml_declaration_is_optional_and_whitespace_keepalives_make_no_event() -> None:
    data = HEADER.removeprefix(b"<?xml version='1.0'?>")
    assert collect([data, b" ", b"\n", b"\t \r\n", b"<presence/>", b" "]) == [
        OPENED,
        b"<presence/>",
    ]


def test_an_empty_stream_element_opens_and_closes() -> None:
    assert collect([HEADER[:-1] + b"/>"]) == [OPENED, StreamClosed()]


def test_restart_mid_iteration_reads_the_rest_as_a_new_stream() -> None:
    parser = StreamParser()
    seen: list[object] = []
    data = HEADER + b"<auth/>" + HEADER + b"<presence/>"
    for event in parser.feed(data):
        seen.append(event)
        if isinstance(event, Stanza):
            parser.restart()
    assert [type(e) for e in seen] == [StreamOpened, Stanza, StreamOpened, Stanza]


def test_input_after_the_stream_ends_is_ignored() -> None:
    parser = StreamParser()
    assert collect([HEADER + STREAM_CLOSE + b"<presence/>"], parser)[-1] == StreamClosed()
    assert collect([b"<presence/>"], parser) == []
    assert collect([b"<!DOCTYPE x>"], parser) == []


@pytest.mark.parametrize(
    "data",
    [
        b"<!DOCTYPE stream [<!ENTITY lol 'lol'>]>" + HEADER,
        b"<?xml version='1.0'?><!DOCTYPE stream:stream>",
        HEADER + b"<!-- a comment -->",
        HEADER + b"<message><!-- c --></message>",
        HEADER + b"<message><?php echo 1?></message>",
        HEADER + b"<?xml version='1.0'?>",
        b"<?xml-stylesheet href='x'?>" + HEADER,
        HEADER + b"<message><!ENTITY x 'y'></message>",
    ],
)
def test_dtds_comments_and_processing_instructions_are_restricted(data: bytes) -> None:
    assert errors(data).condition is StreamCondition.RESTRICTED_XML


@pytest.mark.parametrize(
    "data",
    [
        HEADER + b"<message><body></message>",
        HEADER + b"<message>&lol;</message>",
        HEADER + b"<message>\xff\xfe</message>",
        HEADER + b"<y:message/>",
        HEADER + b"</message>",
        HEADER + b"</stream:other>",
        b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams' a='1' a='2'>",
        b"<?xml version='1.0' standalone='perhaps'?>" + HEADER,
    ],
)
def test_malformed_xml_is_not_well_formed(data: bytes) -> None:
    assert errors(data).condition is StreamCondition.NOT_WELL_FORMED


def test_text_between_stanzas_is_bad_format() -> None:
    assert errors(HEADER + b"<presence/>hello").condition is StreamCondition.BAD_FORMAT
    assert errors(HEADER + b"<![CDATA[x]]>").condition is StreamCondition.BAD_FORMAT
    assert errors(b"hello" + HEADER).condition is StreamCondition.BAD_FORMAT


def test_a_stanza_over_the_limit_is_a_policy_violation_whether_complete_or_not() -> None:
    body = b"<message><body>" + b"x" * 2000 + b"</body></message>"
    complete = errors(HEADER + body, max_stanza=1024)
    assert complete.condition is StreamCondition.POLICY_VIOLATION
    parser = StreamParser(max_stanza=1024)
    assert collect([HEADER, b"<message><body>"], parser) == [OPENED]
    events = collect([b"y" * 512] * 3, parser)
    assert events == [StreamError(StreamCondition.POLICY_VIOLATION, "stanza over 1024 bytes")]


def test_a_stanza_at_the_limit_passes() -> None:
    body = b"<message><body></body></message>"
    body = body.replace(b"</body>", b"x" * (1024 - len(body)) + b"</body>")
    assert len(body) == 1024
    assert collect([HEADER + body], StreamParser(max_stanza=1024))[1] == body


def test_nesting_over_the_limit_is_a_policy_violation() -> None:
    assert collect([HEADER + b"<a>" * 4 + b"</a>" * 4], StreamParser(max_depth=4))[1]
    deep = errors(HEADER + b"<a>" * 5, max_depth=4)
    assert deep.condition is StreamCondition.POLICY_VIOLATION
    # Whole stanzas, which the parser frames in one pass, are held to the same limit.
    whole = errors(HEADER + b"<a>" * 5 + b"</a>" * 5, max_depth=4)
    assert whole.condition is StreamCondition.POLICY_VIOLATION
    empty = errors(HEADER + b"<a>" * 4 + b"<b/>" + b"</a>" * 4, max_depth=4)
    assert empty.condition is StreamCondition.POLICY_VIOLATION


def test_an_endless_header_is_a_policy_violation() -> None:
    endless = b"<stream:stream xmlns='jabber:client' a='" + b"x" * MAX_HEADER
    assert errors(endless).condition is StreamCondition.POLICY_VIOLATION


def test_a_stream_in_the_wrong_namespace_or_encoding_is_refused() -> None:
    assert errors(b"<stream xmlns='jabber:client'>").condition is StreamCondition.INVALID_NAMESPACE
    latin = b"<?xml version='1.0' encoding='ISO-8859-1'?>" + HEADER[21:]
    assert errors(latin).condition is StreamCondition.UNSUPPORTED_ENCODING


def test_serializers_byte_exact() -> None:
    assert stream_header(from_="knock.test", stream_id="s1") == (
        b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
        b"xmlns:stream='http://etherx.jabber.org/streams' from='knock.test' id='s1' "
        b"version='1.0' xml:lang='en'>"
    )
    assert stream_header(to="a'b&c").endswith(b" to='a&apos;b&amp;c' version='1.0' xml:lang='en'>")
    assert stream_error(StreamCondition.HOST_UNKNOWN, "not <here> & now") == (
        b"<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
        b"<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>not &lt;here&gt; &amp; now</text>"
        b"</stream:error>"
    )
    assert stream_error(StreamCondition.CONFLICT) == (
        b"<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"
    )


def test_serialize_leaves_out_only_the_streams_own_default_namespace() -> None:
    client = etree.fromstring("<iq xmlns='jabber:client' id='é'><q xmlns='urn:q'/></iq>")
    assert serialize(client) == '<iq id="é"><q xmlns="urn:q"/></iq>'.encode()
    other = etree.fromstring(b"<x xmlns='urn:x'><y xmlns='jabber:client'/></x>")
    assert serialize(other) == b'<x xmlns="urn:x"><y xmlns="jabber:client"/></x>'


# --- any chunking gives the same events, and the framing agrees with a whole-document parse --

_names = st.sampled_from(["a", "b", "x:c", "message", "body"])
# Markup characters are drawn often: they are what the framing must get right.
_text = st.text(
    alphabet=st.one_of(
        st.sampled_from("<>&'\"]/ "),
        st.characters(blacklist_categories=["Cs", "Cc"], blacklist_characters="\ufffe\uffff"),
    ),
    max_size=12,
)


def _escape(text: str, quote: str = "") -> str:
    text = text.replace("&", "&amp;").replace("<", "&lt;")
    return text.replace(quote, "&apos;" if quote == "'" else "&quot;") if quote else text


@st.composite
def _element(draw: st.DrawFn, depth: int = 0) -> str:
    name = draw(_names)
    attrs = ""
    for index in range(draw(st.integers(0, 2))):
        quote = draw(st.sampled_from(["'", '"']))
        value = draw(st.one_of(_text, st.sampled_from([">", "/>", "'>'", '">"'])))
        attrs += f" k{index}={quote}{_escape(value, quote)}{quote}"
    parts = []
    for _ in range(draw(st.integers(0, 3 if depth < 3 else 0))):
        kind = draw(st.sampled_from(["text", "cdata", "element"]))
        if kind == "text":
            parts.append(_escape(draw(_text)).replace("]]>", "]]&gt;"))
        elif kind == "cdata":
            parts.append("<![CDATA[" + draw(_text).replace("]]>", "") + "]]>")
        else:
            parts.append(draw(_element(depth + 1)))
    if not parts and draw(st.booleans()):
        return f"<{name}{attrs}/>"
    return f"<{name}{attrs}>{''.join(parts)}</{name} >"


@st.composite
def _stream(draw: st.DrawFn) -> tuple[bytes, list[int]]:
    stanzas = draw(st.lists(_element(), min_size=1, max_size=5))
    spaces = draw(st.lists(st.sampled_from(["", " ", "\n", " \t\r\n"]), min_size=5, max_size=5))
    body = "".join(s + w for s, w in zip(stanzas, spaces, strict=False))
    header = HEADER.replace(b" to=", b" xmlns:x='urn:x' to=")
    data = header + body.encode() + STREAM_CLOSE
    cuts = draw(st.lists(st.integers(0, len(data)), max_size=12))
    return data, sorted(set(cuts))


@given(_stream())
@settings(max_examples=200, deadline=None)
def test_any_chunking_gives_the_same_events(case: tuple[bytes, list[int]]) -> None:
    data, cuts = case
    bounds = [0, *cuts, len(data)]
    chunks = [data[a:b] for a, b in itertools.pairwise(bounds)]
    whole = collect([data])
    assert collect(chunks) == whole
    reference = etree.fromstring(data)
    expected = [etree.tostring(child, method="c14n", exclusive=True) for child in reference]
    parser = StreamParser()
    got = [
        etree.tostring(event.element, method="c14n", exclusive=True)
        for event in parser.feed(data)
        if isinstance(event, Stanza)
    ]
    assert got == expected
    assert whole[-1] == StreamClosed()
