"""One frozen dataclass per CWMP message (TR-069 Annex A), named as the standard names them.

Field order is the element order on the wire; each field's XML name is its name in
CamelCase (``url`` -> ``URL``) unless its metadata gives ``xml`` (``None``: not a child
element; the envelope code handles it). A field with a default may be absent from a
received message; one without is required. dateTime fields hold
their lexical text (see `knock.cwmp.values`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, TypeAlias, get_args

from knock.cwmp.values import UNKNOWN_TIME

__all__ = [
    "RPC_TYPES",
    "AddObject",
    "AddObjectResponse",
    "AllQueuedTransferStruct",
    "ArgStruct",
    "AutonomousTransferComplete",
    "AutonomousTransferCompleteResponse",
    "CancelTransfer",
    "CancelTransferResponse",
    "DeleteObject",
    "DeleteObjectResponse",
    "DeviceIdStruct",
    "Download",
    "DownloadResponse",
    "EventStruct",
    "FactoryReset",
    "FactoryResetResponse",
    "Fault",
    "GetAllQueuedTransfers",
    "GetAllQueuedTransfersResponse",
    "GetParameterAttributes",
    "GetParameterAttributesResponse",
    "GetParameterNames",
    "GetParameterNamesResponse",
    "GetParameterValues",
    "GetParameterValuesResponse",
    "GetQueuedTransfers",
    "GetQueuedTransfersResponse",
    "GetRPCMethods",
    "GetRPCMethodsResponse",
    "Inform",
    "InformResponse",
    "Kicked",
    "KickedResponse",
    "ParameterAttributeStruct",
    "ParameterInfoStruct",
    "ParameterValueStruct",
    "QueuedTransferStruct",
    "Reboot",
    "RebootResponse",
    "RequestDownload",
    "RequestDownloadResponse",
    "Rpc",
    "ScheduleDownload",
    "ScheduleDownloadResponse",
    "ScheduleInform",
    "ScheduleInformResponse",
    "SetParameterAttributes",
    "SetParameterAttributesResponse",
    "SetParameterAttributesStruct",
    "SetParameterValues",
    "SetParameterValuesFault",
    "SetParameterValuesResponse",
    "SoapFaultCode",
    "TimeWindowStruct",
    "TransferComplete",
    "TransferCompleteFaultStruct",
    "TransferCompleteResponse",
    "Upload",
    "UploadResponse",
]

SoapFaultCode: TypeAlias = Literal["Client", "Server"]

# --- Structures carried inside messages -------------------------------------------------


@dataclass(frozen=True, slots=True)
class ParameterValueStruct:
    name: str
    value: str
    type: str = "xsd:string"
    """The xsi:type as ``xsd:<name>``; a value sent without one is an xsd:string."""


@dataclass(frozen=True, slots=True)
class DeviceIdStruct:
    manufacturer: str
    oui: str
    product_class: str
    serial_number: str


@dataclass(frozen=True, slots=True)
class EventStruct:
    event_code: str
    command_key: str = ""


@dataclass(frozen=True, slots=True)
class ParameterInfoStruct:
    name: str
    writable: bool


@dataclass(frozen=True, slots=True)
class SetParameterAttributesStruct:
    name: str
    notification_change: bool
    notification: int
    access_list_change: bool
    access_list: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ParameterAttributeStruct:
    name: str
    notification: int
    access_list: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class TimeWindowStruct:
    window_start: int
    window_end: int
    window_mode: str
    user_message: str = ""
    max_retries: int = 0


@dataclass(frozen=True, slots=True)
class QueuedTransferStruct:
    command_key: str
    state: int


@dataclass(frozen=True, slots=True)
class AllQueuedTransferStruct:
    command_key: str
    state: int
    is_download: bool
    file_type: str
    file_size: int
    target_file_name: str


@dataclass(frozen=True, slots=True)
class TransferCompleteFaultStruct:
    fault_code: int = 0
    fault_string: str = ""


@dataclass(frozen=True, slots=True)
class ArgStruct:
    name: str
    value: str


@dataclass(frozen=True, slots=True)
class SetParameterValuesFault:
    parameter_name: str
    fault_code: int
    fault_string: str = ""


_NO_FAULT = TransferCompleteFaultStruct()

# --- ACS -> CPE requests and the CPE's responses -----------------------------------------


@dataclass(frozen=True, slots=True)
class GetRPCMethods:
    pass


@dataclass(frozen=True, slots=True)
class GetRPCMethodsResponse:
    method_list: list[str]


@dataclass(frozen=True, slots=True)
class SetParameterValues:
    parameter_list: list[ParameterValueStruct]
    parameter_key: str = ""


@dataclass(frozen=True, slots=True)
class SetParameterValuesResponse:
    status: int


@dataclass(frozen=True, slots=True)
class GetParameterValues:
    parameter_names: list[str]


@dataclass(frozen=True, slots=True)
class GetParameterValuesResponse:
    parameter_list: list[ParameterValueStruct]


@dataclass(frozen=True, slots=True)
class GetParameterNames:
    parameter_path: str
    next_level: bool


@dataclass(frozen=True, slots=True)
class GetParameterNamesResponse:
    parameter_list: list[ParameterInfoStruct]


@dataclass(frozen=True, slots=True)
class SetParameterAttributes:
    parameter_list: list[SetParameterAttributesStruct]


@dataclass(frozen=True, slots=True)
class SetParameterAttributesResponse:
    pass


@dataclass(frozen=True, slots=True)
class GetParameterAttributes:
    parameter_names: list[str]


@dataclass(frozen=True, slots=True)
class GetParameterAttributesResponse:
    parameter_list: list[ParameterAttributeStruct]


@dataclass(frozen=True, slots=True)
class AddObject:
    object_name: str
    parameter_key: str = ""


@dataclass(frozen=True, slots=True)
class AddObjectResponse:
    instance_number: int
    status: int


@dataclass(frozen=True, slots=True)
class DeleteObject:
    object_name: str
    parameter_key: str = ""


@dataclass(frozen=True, slots=True)
class DeleteObjectResponse:
    status: int


@dataclass(frozen=True, slots=True)
class Reboot:
    command_key: str = ""


@dataclass(frozen=True, slots=True)
class RebootResponse:
    pass


@dataclass(frozen=True, slots=True)
class Download:
    command_key: str
    file_type: str
    url: str
    username: str = ""
    password: str = ""
    file_size: int = 0
    target_file_name: str = ""
    delay_seconds: int = 0
    success_url: str = ""
    failure_url: str = ""


@dataclass(frozen=True, slots=True)
class DownloadResponse:
    status: int
    start_time: str = UNKNOWN_TIME
    complete_time: str = UNKNOWN_TIME


@dataclass(frozen=True, slots=True)
class Upload:
    command_key: str
    file_type: str
    url: str
    username: str = ""
    password: str = ""
    delay_seconds: int = 0


@dataclass(frozen=True, slots=True)
class UploadResponse:
    status: int
    start_time: str = UNKNOWN_TIME
    complete_time: str = UNKNOWN_TIME


@dataclass(frozen=True, slots=True)
class FactoryReset:
    pass


@dataclass(frozen=True, slots=True)
class FactoryResetResponse:
    pass


@dataclass(frozen=True, slots=True)
class ScheduleInform:
    delay_seconds: int
    command_key: str = ""


@dataclass(frozen=True, slots=True)
class ScheduleInformResponse:
    pass


@dataclass(frozen=True, slots=True)
class ScheduleDownload:
    command_key: str
    file_type: str
    url: str
    username: str
    password: str
    file_size: int
    target_file_name: str
    time_window_list: list[TimeWindowStruct]


@dataclass(frozen=True, slots=True)
class ScheduleDownloadResponse:
    pass


@dataclass(frozen=True, slots=True)
class GetQueuedTransfers:
    pass


@dataclass(frozen=True, slots=True)
class GetQueuedTransfersResponse:
    transfer_list: list[QueuedTransferStruct]


@dataclass(frozen=True, slots=True)
class GetAllQueuedTransfers:
    pass


@dataclass(frozen=True, slots=True)
class GetAllQueuedTransfersResponse:
    transfer_list: list[AllQueuedTransferStruct]


@dataclass(frozen=True, slots=True)
class CancelTransfer:
    command_key: str


@dataclass(frozen=True, slots=True)
class CancelTransferResponse:
    pass


# --- CPE -> ACS requests and the ACS's responses -----------------------------------------


@dataclass(frozen=True, slots=True)
class Inform:
    device_id: DeviceIdStruct
    events: list[EventStruct] = field(metadata={"xml": "Event"})
    max_envelopes: int
    current_time: str
    retry_count: int
    parameter_list: list[ParameterValueStruct]


@dataclass(frozen=True, slots=True)
class InformResponse:
    max_envelopes: int = 1


@dataclass(frozen=True, slots=True)
class TransferComplete:
    command_key: str
    fault_struct: TransferCompleteFaultStruct = _NO_FAULT
    start_time: str = UNKNOWN_TIME
    complete_time: str = UNKNOWN_TIME


@dataclass(frozen=True, slots=True)
class TransferCompleteResponse:
    pass


@dataclass(frozen=True, slots=True)
class AutonomousTransferComplete:
    announce_url: str
    transfer_url: str
    is_download: bool
    file_type: str
    file_size: int
    target_file_name: str = ""
    fault_struct: TransferCompleteFaultStruct = _NO_FAULT
    start_time: str = UNKNOWN_TIME
    complete_time: str = UNKNOWN_TIME


@dataclass(frozen=True, slots=True)
class AutonomousTransferCompleteResponse:
    pass


@dataclass(frozen=True, slots=True)
class RequestDownload:
    file_type: str
    file_type_arg: list[ArgStruct] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RequestDownloadResponse:
    pass


@dataclass(frozen=True, slots=True)
class Kicked:
    command: str
    referer: str
    arg: str
    next: str


@dataclass(frozen=True, slots=True)
class KickedResponse:
    next_url: str


# --- Either direction --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fault:
    """A SOAP Fault carrying a CWMP fault, sent in place of a response."""

    faultcode: SoapFaultCode = field(metadata={"xml": None})
    """Whose fault it is: the sender of the request ("Client") or the one answering it."""
    fault_code: int
    fault_string: str = ""
    set_parameter_values_faults: list[SetParameterValuesFault] = field(
        default_factory=list, metadata={"xml": "SetParameterValuesFault", "repeated": True}
    )


Rpc: TypeAlias = (
    GetRPCMethods
    | GetRPCMethodsResponse
    | SetParameterValues
    | SetParameterValuesResponse
    | GetParameterValues
    | GetParameterValuesResponse
    | GetParameterNames
    | GetParameterNamesResponse
    | SetParameterAttributes
    | SetParameterAttributesResponse
    | GetParameterAttributes
    | GetParameterAttributesResponse
    | AddObject
    | AddObjectResponse
    | DeleteObject
    | DeleteObjectResponse
    | Reboot
    | RebootResponse
    | Download
    | DownloadResponse
    | Upload
    | UploadResponse
    | FactoryReset
    | FactoryResetResponse
    | ScheduleInform
    | ScheduleInformResponse
    | ScheduleDownload
    | ScheduleDownloadResponse
    | GetQueuedTransfers
    | GetQueuedTransfersResponse
    | GetAllQueuedTransfers
    | GetAllQueuedTransfersResponse
    | CancelTransfer
    | CancelTransferResponse
    | Inform
    | InformResponse
    | TransferComplete
    | TransferCompleteResponse
    | AutonomousTransferComplete
    | AutonomousTransferCompleteResponse
    | RequestDownload
    | RequestDownloadResponse
    | Kicked
    | KickedResponse
    | Fault
)

RPC_TYPES: tuple[type[Rpc], ...] = get_args(Rpc)
