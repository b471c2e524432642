"""What the server answers on its own behalf: just enough that ordinary clients (slixmpp,
CPE stacks) finish logging in — session establishment, an empty roster, disco#info and ping."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from lxml import etree

from knock.xmpp import ns
from knock.xmpp.stanzas import payload, reply

FEATURES: Final = (ns.DISCO_INFO, ns.PING)


def _empty(iq: etree._Element) -> etree._Element:
    return reply(iq)


def _roster(iq: etree._Element) -> etree._Element:
    # Devices and the ACS address each other by full JID; nobody has contacts to list.
    answer = reply(iq)
    payload(answer, ns.ROSTER, "query")
    return answer


def _disco_info(iq: etree._Element) -> etree._Element:
    answer = reply(iq)
    query = payload(answer, ns.DISCO_INFO, "query")
    etree.SubElement(
        query, ns.qname(ns.DISCO_INFO, "identity"), category="server", type="im", name="Knock"
    )
    for feature in FEATURES:
        etree.SubElement(query, ns.qname(ns.DISCO_INFO, "feature"), var=feature)
    return answer


_HANDLERS: Final[dict[tuple[str | None, str], Callable[[etree._Element], etree._Element]]] = {
    ("get", ns.qname(ns.PING, "ping")): _empty,
    ("set", ns.qname(ns.SESSION, "session")): _empty,
    ("get", ns.qname(ns.ROSTER, "query")): _roster,
    ("get", ns.qname(ns.DISCO_INFO, "query")): _disco_info,
}


def answer(iq: etree._Element) -> etree._Element | None:
    """The result for a get or set IQ (one child) sent to the server or to the sender's own
    account, or None when the server offers no such service."""
    handler = _HANDLERS.get((iq.get("type"), str(iq[0].tag)))
    return handler(iq) if handler else None
