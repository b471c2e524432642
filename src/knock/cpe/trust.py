"""What a simulated device trusts when it opens TLS to the ACS (HTTPS) or its XMPP server.

As a real device: the CAs of its firmware (here, the system's) and the ones its operator
installed (`knock sim --ca`, e.g. Knock's lab CA), checked against the name it connects to
(RFC 6125; for XMPP the domain, RFC 6120 §13.7.2). With `Defect.NO_CERT_CHECK`, the device
accepts any certificate, as some deployed stacks do.
"""

from __future__ import annotations

import ssl

from knock.cpe.defects import Defect, Defects


def device_tls(ca_file: str = "", defects: Defects = frozenset()) -> ssl.SSLContext:
    """Raises `OSError` or `ssl.SSLError` for a CA file that cannot be read."""
    context = ssl.create_default_context()
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    if Defect.NO_CERT_CHECK in defects:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
