"""XML namespaces of the XMPP core (RFC 6120) and of the few extensions the server answers."""

from __future__ import annotations

from typing import cast

STREAMS = "http://etherx.jabber.org/streams"
CLIENT = "jabber:client"
STREAM_ERRORS = "urn:ietf:params:xml:ns:xmpp-streams"
STANZA_ERRORS = "urn:ietf:params:xml:ns:xmpp-stanzas"
TLS = "urn:ietf:params:xml:ns:xmpp-tls"
SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
BIND = "urn:ietf:params:xml:ns:xmpp-bind"
SESSION = "urn:ietf:params:xml:ns:xmpp-session"
ROSTER = "jabber:iq:roster"
DISCO_INFO = "http://jabber.org/protocol/disco#info"
PING = "urn:xmpp:ping"
XML = "http://www.w3.org/XML/1998/namespace"


def qname(namespace: str, local: str) -> str:
    """The Clark-notation name lxml uses for an element or attribute."""
    return f"{{{namespace}}}{local}"


def default(namespace: str) -> dict[str, str]:
    """An nsmap making *namespace* the default one: lxml's key for it is None, which its type
    stubs do not allow."""
    return cast("dict[str, str]", {None: namespace})
