"""SOAP envelopes to and from the message dataclasses of `knock.cwmp.rpcs`.

Parsing is tolerant, because deployed CPEs vary: any prefixes, RPC children qualified or
not, extra or reordered elements, no soap-enc:arrayType, xsi:type with any prefix (or
none: the value is then an xsd:string). Building is strict and always the same shape.

Each message class is described once, at import, by a `_Shape` derived from its dataclass
fields and type hints; one generic walker builds and parses every message with it.
"""

from __future__ import annotations

from dataclasses import MISSING, Field, dataclass, fields, is_dataclass
from itertools import chain
from typing import Any, Final, get_args, get_origin, get_type_hints

from lxml import etree

from knock.cwmp.faults import soap_faultcode
from knock.cwmp.namespaces import (
    CWMP_NAMESPACES,
    NSMAPS,
    SOAP_ENC,
    SOAP_ENV,
    TYPE_NAMESPACES,
    XSI,
    XSI_1999,
)
from knock.cwmp.rpcs import RPC_TYPES, Fault, ParameterValueStruct, Rpc, SoapFaultCode
from knock.cwmp.values import InvalidValue, canonical_type, parse_boolean, parse_int
from knock.xmlsafe import DEFAULT_MAX_BYTES, parse_xml

_Element = etree._Element


class CwmpError(ValueError):
    """Well-formed XML that is not an acceptable CWMP message.

    `cwmp_ns` and `envelope_id` (the header's cwmp:ID) are filled in when they could be
    read, so the caller can answer with a fault in the peer's namespace, echoing its ID.
    """

    def __init__(
        self, message: str, *, cwmp_ns: str | None = None, envelope_id: str | None = None
    ) -> None:
        super().__init__(message)
        self.cwmp_ns = cwmp_ns
        self.envelope_id = envelope_id


class MalformedEnvelope(CwmpError):
    """No SOAP Envelope with a Body holding one message (answer fault 8003 / 9003)."""


class EmptyBody(MalformedEnvelope):
    """A SOAP Body holding no message: some CPEs end their turn so, where TR-069 asks for an
    empty HTTP POST."""


class InvalidArguments(CwmpError):
    """A known message with a required element missing or a value of the wrong type
    (answer fault 8003 / 9003)."""


class UnknownMethod(CwmpError):
    """The Body holds a message this codec does not know (answer fault 8000 / 9000)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"unknown CWMP method {name!r}")
        self.name = name


@dataclass(frozen=True, slots=True)
class Envelope:
    cwmp_ns: str
    id: str | None
    hold_requests: bool | None
    session_timeout: int | None
    body: Rpc


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _ns(tag: str) -> str | None:
    return tag[1 : tag.index("}")] if tag.startswith("{") else None


# --- Codecs: how one element maps to one Python value ------------------------------------


class _Codec:
    """Builds *value* as a child element of *parent*, and parses an element back.

    `parse` receives the path of the enclosing element, only for error messages.
    """

    __slots__ = ()

    def build(self, parent: _Element, tag: str, value: Any) -> None:
        raise NotImplementedError

    def parse(self, el: _Element, path: str) -> Any:
        raise NotImplementedError


class _Text(_Codec):
    __slots__ = ()

    def build(self, parent: _Element, tag: str, value: Any) -> None:
        etree.SubElement(parent, tag).text = value

    def parse(self, el: _Element, path: str) -> str:
        return el.text or ""


class _Int(_Codec):
    __slots__ = ()

    def build(self, parent: _Element, tag: str, value: Any) -> None:
        etree.SubElement(parent, tag).text = str(value)

    def parse(self, el: _Element, path: str) -> int:
        try:
            return parse_int(el.text or "")
        except InvalidValue as exc:
            raise InvalidArguments(f"{path}/{_local(el.tag)}: {exc}") from None


class _Bool(_Codec):
    __slots__ = ()

    def build(self, parent: _Element, tag: str, value: Any) -> None:
        # 1/0 rather than true/false: some CPE firmware reads booleans with atoi().
        etree.SubElement(parent, tag).text = "1" if value else "0"

    def parse(self, el: _Element, path: str) -> bool:
        try:
            return parse_boolean(el.text or "")
        except InvalidValue as exc:
            raise InvalidArguments(f"{path}/{_local(el.tag)}: {exc}") from None


class _Struct(_Codec):
    __slots__ = ("shape",)

    def __init__(self, shape: _Shape) -> None:
        self.shape = shape

    def build(self, parent: _Element, tag: str, value: Any) -> None:
        self.shape.build_into(etree.SubElement(parent, tag), value)

    def parse(self, el: _Element, path: str) -> Any:
        return self.shape.parse(el, f"{path}/{_local(el.tag)}")


class _Array(_Codec):
    """A SOAP-encoded array: a wrapper element around one element per item."""

    __slots__ = ("array_type", "item", "item_tag")

    def __init__(self, item: _Codec, item_tag: str, array_type: str) -> None:
        self.item = item
        self.item_tag = item_tag
        self.array_type = array_type

    def build(self, parent: _Element, tag: str, value: Any) -> None:
        array = etree.SubElement(parent, tag, {_ARRAY_TYPE: f"{self.array_type}[{len(value)}]"})
        for item in value:
            self.item.build(array, self.item_tag, item)

    def parse(self, el: _Element, path: str) -> list[Any]:
        # Item element names vary among CPEs (string, xsd:string, ...); only order counts.
        here = f"{path}/{_local(el.tag)}"
        return [self.item.parse(child, f"{here}[{i}]") for i, child in enumerate(el)]


class _ParameterValue(_Codec):
    """ParameterValueStruct, whose Value carries its type in an xsi:type attribute."""

    # Element names held as data, like every _Shape's, so tests/cwmp/test_mutants.py can
    # rename them and see the goldens fail.
    __slots__ = ("name_tag", "value_tag")

    def __init__(self) -> None:
        self.name_tag = "Name"
        self.value_tag = "Value"

    def build(self, parent: _Element, tag: str, value: Any) -> None:
        struct = etree.SubElement(parent, tag)
        etree.SubElement(struct, self.name_tag).text = value.name
        typed = etree.SubElement(struct, self.value_tag, {_XSI_TYPE: canonical_type(value.type)})
        typed.text = value.value

    def parse(self, el: _Element, path: str) -> ParameterValueStruct:
        name = value = None
        type_ = "xsd:string"
        name_tag, value_tag = self.name_tag, self.value_tag
        for child in el:
            tag = child.tag
            if tag == name_tag or _local(tag) == name_tag:
                name = child.text or ""
            elif tag == value_tag or _local(tag) == value_tag:
                value = child.text or ""
                type_ = _value_type(child)
        if name is None or value is None:
            missing = name_tag if name is None else value_tag
            raise InvalidArguments(f"{path}: missing required element {missing}")
        return ParameterValueStruct(name, value, type_)


def _value_type(el: _Element) -> str:
    raw = el.get(_XSI_TYPE)
    if raw is None:
        raw = el.get(_XSI_1999_TYPE)
        if raw is None:
            return "xsd:string"
    raw = raw.strip()
    # Nobody binds "xsd" to anything but XML Schema; trusting it skips a namespace lookup
    # on the hottest path of parsing.
    if raw.startswith("xsd:") and len(raw) > 4:
        return raw
    prefix, _, local = raw.rpartition(":")
    # An undeclared prefix is taken for XML Schema: CPEs that forget the declaration mean it.
    ns = el.nsmap.get(prefix or None)
    if not local or (ns is not None and ns not in TYPE_NAMESPACES):
        return "xsd:string"
    return f"xsd:{local}"


_XSI_TYPE: Final = f"{{{XSI}}}type"
_XSI_1999_TYPE: Final = f"{{{XSI_1999}}}type"
_ARRAY_TYPE: Final = f"{{{SOAP_ENC}}}arrayType"
_TEXT: Final = _Text()
_INT: Final = _Int()
_BOOL: Final = _Bool()
_PARAMETER_VALUE: Final = _ParameterValue()

# --- Shapes: how one dataclass maps to one element's children ----------------------------

# Words whose CamelCase form is not simply capitalised.
_ACRONYMS: Final = {"url": "URL", "oui": "OUI"}


def _xml_name(attr: str) -> str:
    return "".join(_ACRONYMS.get(word, word.capitalize()) for word in attr.split("_"))


@dataclass(frozen=True, slots=True)
class _Field:
    attr: str
    tag: str
    codec: _Codec
    required: bool
    repeated: bool


class _Shape:
    __slots__ = ("by_tag", "cls", "fields", "required")

    def __init__(self, cls: type[Any]) -> None:
        hints = get_type_hints(cls)
        self.cls = cls
        self.fields = tuple(
            _field(f, hints[f.name]) for f in fields(cls) if f.metadata.get("xml", "") is not None
        )
        self.by_tag = {f.tag: f for f in self.fields}
        self.required = tuple(f for f in self.fields if f.required)

    def build_into(self, el: _Element, obj: Any) -> None:
        for f in self.fields:
            value = getattr(obj, f.attr)
            if f.repeated:
                for item in value:
                    f.codec.build(el, f.tag, item)
            else:
                f.codec.build(el, f.tag, value)

    def parse_values(self, el: _Element, path: str) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for child in el:
            f = self.by_tag.get(child.tag) or self.by_tag.get(_local(child.tag))
            if f is None:
                continue
            if f.repeated:
                values.setdefault(f.attr, []).append(f.codec.parse(child, path))
            else:
                values[f.attr] = f.codec.parse(child, path)
        for f in self.required:
            if f.attr not in values:
                raise InvalidArguments(f"{path}: missing required element {f.tag}")
        return values

    def parse(self, el: _Element, path: str) -> Any:
        return self.cls(**self.parse_values(el, path))


def _field(f: Field[Any], hint: Any) -> _Field:
    # A repeated field is a run of sibling elements, one per item, with no array wrapper.
    repeated = bool(f.metadata.get("repeated"))
    return _Field(
        attr=f.name,
        tag=f.metadata.get("xml", _xml_name(f.name)),
        codec=_codec_for(get_args(hint)[0] if repeated else hint),
        required=f.default is MISSING and f.default_factory is MISSING,
        repeated=repeated,
    )


_SHAPE_CACHE: dict[type[Any], _Shape] = {}


def _shape(cls: type[Any]) -> _Shape:
    if cls not in _SHAPE_CACHE:
        _SHAPE_CACHE[cls] = _Shape(cls)
    return _SHAPE_CACHE[cls]


def _item_codec(hint: Any) -> tuple[_Codec, str, str]:
    """The codec, element name and arrayType of one item of an array of *hint*."""
    if hint is str:
        return _TEXT, "string", "xsd:string"
    name = hint.__name__
    codec = _PARAMETER_VALUE if hint is ParameterValueStruct else _Struct(_shape(hint))
    return codec, name, f"cwmp:{name}"


def _codec_for(hint: Any) -> _Codec:
    # bool before int: bool is an int subclass.
    if hint is str:
        return _TEXT
    if hint is bool:
        return _BOOL
    if hint is int:
        return _INT
    if get_origin(hint) is list:
        return _Array(*_item_codec(get_args(hint)[0]))
    if isinstance(hint, type) and is_dataclass(hint):
        return _Struct(_shape(hint))
    raise TypeError(f"no XML codec for {hint!r}")


_METHODS: Final = {cls.__name__: _shape(cls) for cls in RPC_TYPES if cls is not Fault}
_FAULT: Final = _shape(Fault)

# --- Envelope -----------------------------------------------------------------------------

_ENVELOPE: Final = f"{{{SOAP_ENV}}}Envelope"
_HEADER: Final = f"{{{SOAP_ENV}}}Header"
_BODY: Final = f"{{{SOAP_ENV}}}Body"
_SOAP_FAULT: Final = f"{{{SOAP_ENV}}}Fault"
_MUST_UNDERSTAND: Final = f"{{{SOAP_ENV}}}mustUnderstand"
# Local names of the CWMP headers and the SOAP Fault's parts, read at each call (as the
# qualified names above are) so tests/cwmp/test_mutants.py can rename them.
_ID: Final = "ID"
_HOLD_REQUESTS: Final = "HoldRequests"
_SESSION_TIMEOUT: Final = "SessionTimeout"
_FAULTCODE: Final = "faultcode"
_FAULTSTRING: Final = "faultstring"
_DETAIL: Final = "detail"
_DECLARATION: Final = b'<?xml version="1.0" encoding="UTF-8"?>\n'
_SOAP_FAULTCODES: Final[dict[str, SoapFaultCode]] = {"Client": "Client", "Server": "Server"}


def build_envelope(
    body: Rpc,
    *,
    cwmp_ns: str,
    id: str | None,
    hold_requests: bool | None = None,
    session_timeout: int | None = None,
) -> bytes:
    """Serialise *body* as a complete SOAP envelope in namespace *cwmp_ns*.

    Raises `CwmpError` when a string holds a character XML cannot carry.
    """
    nsmap = NSMAPS.get(cwmp_ns)
    if nsmap is None:
        raise CwmpError(f"not a CWMP namespace: {cwmp_ns!r}")
    root = etree.Element(_ENVELOPE, nsmap=nsmap)
    try:
        if id is not None or hold_requests is not None or session_timeout is not None:
            header = etree.SubElement(root, _HEADER)
            if id is not None:
                _header(header, cwmp_ns, _ID, id, "1")
            if hold_requests is not None:
                _header(header, cwmp_ns, _HOLD_REQUESTS, "1" if hold_requests else "0", "1")
            if session_timeout is not None:
                _header(header, cwmp_ns, _SESSION_TIMEOUT, str(session_timeout), "0")
        body_el = etree.SubElement(root, _BODY)
        if isinstance(body, Fault):
            _build_fault(body_el, body, cwmp_ns)
        else:
            name = type(body).__name__
            _METHODS[name].build_into(etree.SubElement(body_el, f"{{{cwmp_ns}}}{name}"), body)
    except ValueError as exc:
        raise CwmpError(f"cannot encode {type(body).__name__}: {exc}") from exc
    return _DECLARATION + etree.tostring(root, encoding="UTF-8")


def _header(parent: _Element, cwmp_ns: str, name: str, text: str, must: str) -> None:
    etree.SubElement(parent, f"{{{cwmp_ns}}}{name}", {_MUST_UNDERSTAND: must}).text = text


def _build_fault(body: _Element, fault: Fault, cwmp_ns: str) -> None:
    soap_fault = etree.SubElement(body, _SOAP_FAULT)
    etree.SubElement(soap_fault, _FAULTCODE).text = fault.faultcode
    etree.SubElement(soap_fault, _FAULTSTRING).text = "CWMP fault"
    detail = etree.SubElement(soap_fault, _DETAIL)
    _FAULT.build_into(etree.SubElement(detail, f"{{{cwmp_ns}}}Fault"), fault)


def parse_envelope(data: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> Envelope:
    """Parse one SOAP envelope holding one CWMP message.

    Raises `knock.xmlsafe.XmlError` (`XmlTooLarge` over *max_bytes*) for bytes that are
    not acceptable XML, and a `CwmpError` for XML that is not an acceptable message.
    An empty HTTP body (the end of the CPE's requests) is not an envelope: check first.
    """
    root = parse_xml(data, max_bytes)
    if _local(root.tag) != "Envelope":
        raise MalformedEnvelope(f"root element is {_local(root.tag)!r}, not a SOAP Envelope")
    parts = _children(root)
    headers = _children(parts["Header"]) if "Header" in parts else {}
    id_el = headers.get(_ID)
    id_ = None if id_el is None else id_el.text or ""
    body = parts.get("Body")
    message = None if body is None else next(iter(body), None)
    cwmp_ns = _cwmp_ns(root, message, id_el)
    try:
        if body is None:
            raise MalformedEnvelope("no SOAP Body")
        if message is None:
            raise EmptyBody("empty SOAP Body")
        if cwmp_ns is None:
            raise MalformedEnvelope("no CWMP namespace in the envelope")
        hold = _optional(headers, _HOLD_REQUESTS, _BOOL)
        timeout = _optional(headers, _SESSION_TIMEOUT, _INT)
        name = _local(message.tag)
        if name == "Fault":
            rpc: Rpc = _parse_fault(message)
        elif name in _METHODS:
            rpc = _METHODS[name].parse(message, name)
        else:
            raise UnknownMethod(name)
    except CwmpError as exc:
        exc.cwmp_ns, exc.envelope_id = cwmp_ns, id_
        raise
    return Envelope(cwmp_ns, id_, hold, timeout, rpc)


def _children(el: _Element) -> dict[str, _Element]:
    """Child elements by local name; the first of a name wins."""
    found: dict[str, _Element] = {}
    for child in el:
        found.setdefault(_local(child.tag), child)
    return found


def _optional(headers: dict[str, _Element], name: str, codec: _Codec) -> Any:
    el = headers.get(name)
    return None if el is None else codec.parse(el, "Header")


def _cwmp_ns(root: _Element, message: _Element | None, id_el: _Element | None) -> str | None:
    """The CWMP namespace the peer spoke: its message's, its ID's, or else any it used
    (a SOAP Fault's is on the detail, and a few CPEs leave the message unqualified)."""
    for el in (message, id_el):
        ns = None if el is None else _ns(el.tag)
        if ns in CWMP_NAMESPACES:
            return ns
    used = (_ns(el.tag) for el in root.iter())
    return next((ns for ns in chain(used, root.nsmap.values()) if ns in CWMP_NAMESPACES), None)


def _parse_fault(el: _Element) -> Fault:
    parts = _children(el)
    detail = parts.get(_DETAIL)
    cwmp_fault = None if detail is None else _children(detail).get("Fault")
    if cwmp_fault is None:
        raise InvalidArguments("Fault: no CWMP Fault in the SOAP Fault detail")
    values = _FAULT.parse_values(cwmp_fault, "Fault")
    # Some CPEs qualify the faultcode (soap:Client); the CWMP meaning is in the local part.
    faultcode = parts.get(_FAULTCODE)
    text = "" if faultcode is None else faultcode.text or ""
    soap_code = _SOAP_FAULTCODES.get(text.strip().rpartition(":")[2])
    return Fault(soap_code or soap_faultcode(values["fault_code"]), **values)
