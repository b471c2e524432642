"""CWMP fault codes (TR-069 Annex A.5) and the SOAP faultcode each one travels with."""

from __future__ import annotations

from enum import IntEnum
from typing import Final

from knock.cwmp.rpcs import Fault, SetParameterValuesFault, SoapFaultCode


class AcsFault(IntEnum):
    """Faults the ACS answers a CPE request with."""

    METHOD_NOT_SUPPORTED = 8000
    REQUEST_DENIED = 8001
    INTERNAL_ERROR = 8002
    INVALID_ARGUMENTS = 8003
    RESOURCES_EXCEEDED = 8004
    RETRY_REQUEST = 8005
    ACS_VERSION_INCOMPATIBLE = 8006


class CpeFault(IntEnum):
    """Faults a CPE answers an ACS request with."""

    METHOD_NOT_SUPPORTED = 9000
    REQUEST_DENIED = 9001
    INTERNAL_ERROR = 9002
    INVALID_ARGUMENTS = 9003
    RESOURCES_EXCEEDED = 9004
    INVALID_PARAMETER_NAME = 9005
    INVALID_PARAMETER_TYPE = 9006
    INVALID_PARAMETER_VALUE = 9007
    NON_WRITABLE_PARAMETER = 9008
    NOTIFICATION_REQUEST_REJECTED = 9009
    FILE_TRANSFER_FAILURE = 9010
    UPLOAD_FAILURE = 9011
    FILE_TRANSFER_AUTHENTICATION_FAILURE = 9012
    UNSUPPORTED_TRANSFER_PROTOCOL = 9013
    MULTICAST_JOIN_FAILURE = 9014
    FILE_SERVER_UNREACHABLE = 9015
    FILE_ACCESS_FAILURE = 9016
    DOWNLOAD_INCOMPLETE = 9017
    FILE_CORRUPTED = 9018
    FILE_AUTHENTICATION_FAILURE = 9019
    TIME_WINDOW_EXPIRED = 9020
    CANCELATION_NOT_PERMITTED = 9021
    INVALID_UUID_FORMAT = 9022
    UNKNOWN_EXECUTION_ENVIRONMENT = 9023
    DISABLED_EXECUTION_ENVIRONMENT = 9024
    DU_EE_MISMATCH = 9025
    DUPLICATE_DEPLOYMENT_UNIT = 9026
    SYSTEM_RESOURCES_EXCEEDED = 9027
    UNKNOWN_DEPLOYMENT_UNIT = 9028
    INVALID_DU_STATE = 9029
    DU_DOWNGRADE_NOT_PERMITTED = 9030
    DU_VERSION_NOT_SPECIFIED = 9031
    DU_VERSION_EXISTS = 9032


# Fault strings as TR-069 words them.
FAULT_STRINGS: Final[dict[int, str]] = {
    8000: "Method not supported",
    8001: "Request denied",
    8002: "Internal error",
    8003: "Invalid arguments",
    8004: "Resources exceeded",
    8005: "Retry request",
    8006: "ACS version incompatible with CPE",
    9000: "Method not supported",
    9001: "Request denied",
    9002: "Internal error",
    9003: "Invalid arguments",
    9004: "Resources exceeded",
    9005: "Invalid parameter name",
    9006: "Invalid parameter type",
    9007: "Invalid parameter value",
    9008: "Attempt to set a non-writable parameter",
    9009: "Notification request rejected",
    9010: "File transfer failure",
    9011: "Upload failure",
    9012: "File transfer server authentication failure",
    9013: "Unsupported protocol for file transfer",
    9014: "File transfer failure: unable to join multicast group",
    9015: "File transfer failure: unable to contact file server",
    9016: "File transfer failure: unable to access file",
    9017: "File transfer failure: unable to complete download",
    9018: "File transfer failure: file corrupted",
    9019: "File transfer failure: file authentication failure",
    9020: "File transfer failure: unable to complete download within specified time windows",
    9021: "Cancelation of file transfer not permitted in current transfer state",
    9022: "Invalid UUID format",
    9023: "Unknown Execution Environment",
    9024: "Disabled Execution Environment",
    9025: "Deployment Unit to Execution Environment mismatch",
    9026: "Duplicate Deployment Unit",
    9027: "System resources exceeded",
    9028: "Unknown Deployment Unit",
    9029: "Invalid Deployment Unit state",
    9030: "Invalid Deployment Unit update: downgrade not permitted",
    9031: "Invalid Deployment Unit update: version not specified",
    9032: "Invalid Deployment Unit update: version already exists",
}

# Faults the sender of the request caused (TR-069 marks them "Client"); all others are "Server".
_CLIENT_FAULTS: Final = frozenset(
    {8003, 9003, 9005, 9006, 9007, 9008, 9021, 9022, 9023, 9024, 9025, 9026}
    | set(range(9028, 9033))
)

VENDOR_FAULTS: Final = range(9800, 9900)
ACS_VENDOR_FAULTS: Final = range(8800, 8900)


def is_vendor_fault(code: int) -> bool:
    """Whether *code* lies in a vendor-extension range (CPE 9800-9899, ACS 8800-8899)."""
    return code in VENDOR_FAULTS or code in ACS_VENDOR_FAULTS


def soap_faultcode(code: int) -> SoapFaultCode:
    """The SOAP faultcode for CWMP fault *code*; vendor codes default to "Server"."""
    return "Client" if code in _CLIENT_FAULTS else "Server"


def fault_string(code: int) -> str:
    """TR-069's wording for *code*, or a generic one for codes it does not name."""
    if code in FAULT_STRINGS:
        return FAULT_STRINGS[code]
    return f"Vendor fault {code}" if is_vendor_fault(code) else f"Fault {code}"


def acs_fault(code: int, message: str | None = None) -> Fault:
    """The Fault the ACS answers a CPE request with; TR-069's wording unless given *message*."""
    return _fault(code, message, [])


def cpe_fault(
    code: int,
    message: str | None = None,
    set_parameter_values_faults: list[SetParameterValuesFault] | None = None,
) -> Fault:
    """The Fault a CPE answers an ACS request with; a SetParameterValues fault names each
    rejected parameter in *set_parameter_values_faults*."""
    return _fault(code, message, set_parameter_values_faults or [])


def _fault(code: int, message: str | None, spv_faults: list[SetParameterValuesFault]) -> Fault:
    text = fault_string(code) if message is None else message
    return Fault(soap_faultcode(code), code, text, spv_faults)
