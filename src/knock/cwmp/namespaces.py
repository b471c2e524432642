"""XML namespaces of SOAP 1.1 and CWMP, and the prefixes Knock writes them with."""

from __future__ import annotations

from typing import Final

SOAP_ENV: Final = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP_ENC: Final = "http://schemas.xmlsoap.org/soap/encoding/"
XSD: Final = "http://www.w3.org/2001/XMLSchema"
XSI: Final = "http://www.w3.org/2001/XMLSchema-instance"

# Pre-2001 SOAP toolkits, still found in old CPE firmware, type values with these.
XSD_1999: Final = "http://www.w3.org/1999/XMLSchema"
XSI_1999: Final = "http://www.w3.org/1999/XMLSchema-instance"

CWMP_1_0: Final = "urn:dslforum-org:cwmp-1-0"
CWMP_1_1: Final = "urn:dslforum-org:cwmp-1-1"
CWMP_1_2: Final = "urn:dslforum-org:cwmp-1-2"

# CWMP 1.3 and 1.4 kept the cwmp-1-2 URI; a few CPEs invent these anyway, so they are
# accepted and answered in kind.
CWMP_1_3: Final = "urn:dslforum-org:cwmp-1-3"
CWMP_1_4: Final = "urn:dslforum-org:cwmp-1-4"

CWMP_NAMESPACES: Final = frozenset({CWMP_1_0, CWMP_1_1, CWMP_1_2, CWMP_1_3, CWMP_1_4})

# Namespaces whose type names an xsi:type may use for a parameter value.
TYPE_NAMESPACES: Final = frozenset({XSD, XSD_1999, SOAP_ENC})


# The declarations of every envelope Knock builds, one map per CWMP namespace, made once.
NSMAPS: Final[dict[str, dict[str, str]]] = {
    ns: {"soap-env": SOAP_ENV, "soap-enc": SOAP_ENC, "xsd": XSD, "xsi": XSI, "cwmp": ns}
    for ns in CWMP_NAMESPACES
}
