"""Building stanzas: replies, stanza errors (RFC 6120 §8.3) and the server's own pings."""

from __future__ import annotations

import enum
from typing import Final

from lxml import etree

from knock.xmpp import ns

IQ: Final = ns.qname(ns.CLIENT, "iq")
MESSAGE: Final = ns.qname(ns.CLIENT, "message")
PRESENCE: Final = ns.qname(ns.CLIENT, "presence")
_NSMAP: Final = ns.default(ns.CLIENT)


class StanzaCondition(enum.StrEnum):
    """Stanza error conditions (RFC 6120 §8.3.3) that Knock sends, with their error types."""

    BAD_REQUEST = "bad-request"
    JID_MALFORMED = "jid-malformed"
    NOT_ALLOWED = "not-allowed"
    RESOURCE_CONSTRAINT = "resource-constraint"  # RFC 6120 §7.6.2.1: too many resources
    REMOTE_SERVER_NOT_FOUND = "remote-server-not-found"
    SERVICE_UNAVAILABLE = "service-unavailable"

    @property
    def error_type(self) -> str:
        if self is StanzaCondition.RESOURCE_CONSTRAINT:
            return "wait"
        return "modify" if self in _MODIFY else "cancel"


_MODIFY: Final = frozenset({StanzaCondition.BAD_REQUEST, StanzaCondition.JID_MALFORMED})


def payload(parent: etree._Element, namespace: str, local: str) -> etree._Element:
    """A child element in *namespace*, declared as its default as XMPP payloads are written."""
    return etree.SubElement(parent, ns.qname(namespace, local), nsmap=ns.default(namespace))


def reply(stanza: etree._Element, type_: str = "result") -> etree._Element:
    """An empty answer to *stanza*: same kind and id, addresses swapped."""
    answer = etree.Element(stanza.tag, nsmap=_NSMAP)
    for name, value in (
        ("type", type_),
        ("id", stanza.get("id")),
        ("from", stanza.get("to")),
        ("to", stanza.get("from")),
    ):
        if value is not None:
            answer.set(name, value)
    return answer


def error_reply(stanza: etree._Element, condition: StanzaCondition) -> etree._Element:
    """The error answer to *stanza*. The original payload is not echoed back: a connection
    request carries credentials, and the sender has them already."""
    answer = reply(stanza, "error")
    error = etree.SubElement(answer, ns.qname(ns.CLIENT, "error"), type=condition.error_type)
    payload(error, ns.STANZA_ERRORS, condition.value)
    return answer


def ping(sender: str, to: str, stanza_id: str) -> etree._Element:
    """An XEP-0199 ping IQ."""
    iq = etree.Element(IQ, {"type": "get", "id": stanza_id, "from": sender, "to": to}, nsmap=_NSMAP)
    payload(iq, ns.PING, "ping")
    return iq
