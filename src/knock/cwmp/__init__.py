"""Sans-IO CWMP (TR-069) SOAP codec: envelope bytes to message dataclasses and back.

`parse_envelope` and `build_envelope` serve both ends, the ACS and the simulated CPE.
"""

from knock.cwmp import rpcs
from knock.cwmp.deviceid import device_key
from knock.cwmp.envelope import (
    CwmpError,
    Envelope,
    InvalidArguments,
    MalformedEnvelope,
    UnknownMethod,
    build_envelope,
    parse_envelope,
)
from knock.cwmp.faults import (
    AcsFault,
    CpeFault,
    acs_fault,
    cpe_fault,
    fault_string,
    soap_faultcode,
)
from knock.cwmp.namespaces import CWMP_1_0, CWMP_1_1, CWMP_1_2, CWMP_NAMESPACES
from knock.cwmp.rpcs import *  # noqa: F403  (every message class is public API)
from knock.cwmp.values import InvalidValue, XsdType, from_python, to_python

__all__ = [
    "CWMP_1_0",
    "CWMP_1_1",
    "CWMP_1_2",
    "CWMP_NAMESPACES",
    "AcsFault",
    "CpeFault",
    "CwmpError",
    "Envelope",
    "InvalidArguments",
    "InvalidValue",
    "MalformedEnvelope",
    "UnknownMethod",
    "XsdType",
    "acs_fault",
    "build_envelope",
    "cpe_fault",
    "device_key",
    "fault_string",
    "from_python",
    "parse_envelope",
    "soap_faultcode",
    "to_python",
]
__all__ += rpcs.__all__
