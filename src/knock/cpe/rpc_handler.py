"""The simulated CPE's answers to the ACS's requests, sans-IO.

`handle` turns one request into its response (or CPE Fault). What the device must do once the
session is over (reboot, reset, inform later, transfer a file) comes back as effect objects for
the device loop to carry out: nothing here sleeps, reboots or opens a connection.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final, TypeAlias
from urllib.parse import urlsplit

from knock.cpe.datamodel import DataModel, ModelFault
from knock.cpe.defects import NONE, Defect, Defects
from knock.cpe.quirks import Quirk, Quirks
from knock.cwmp.faults import CpeFault, cpe_fault
from knock.cwmp.rpcs import (
    AddObject,
    AddObjectResponse,
    AllQueuedTransferStruct,
    CancelTransfer,
    CancelTransferResponse,
    DeleteObject,
    DeleteObjectResponse,
    Download,
    DownloadResponse,
    FactoryReset,
    FactoryResetResponse,
    GetAllQueuedTransfers,
    GetAllQueuedTransfersResponse,
    GetParameterAttributes,
    GetParameterAttributesResponse,
    GetParameterNames,
    GetParameterNamesResponse,
    GetParameterValues,
    GetParameterValuesResponse,
    GetQueuedTransfers,
    GetQueuedTransfersResponse,
    GetRPCMethods,
    GetRPCMethodsResponse,
    QueuedTransferStruct,
    Reboot,
    RebootResponse,
    Rpc,
    ScheduleDownload,
    ScheduleDownloadResponse,
    ScheduleInform,
    ScheduleInformResponse,
    SetParameterAttributes,
    SetParameterAttributesResponse,
    SetParameterValues,
    SetParameterValuesResponse,
    TimeWindowStruct,
    Upload,
    UploadResponse,
)

FIRMWARE_IMAGE: Final = "1 Firmware Upgrade Image"
TRANSFER_NOT_STARTED: Final = 1  # QueuedTransferStruct.State

_MAX_COMMAND_KEY: Final = 32
_MAX_URL: Final = 256
_TRANSFER_SCHEMES: Final = frozenset({"http", "https", "ftp"})
_DOWNLOAD_TYPES: Final = re.compile(
    r"1 Firmware Upgrade Image|2 Web Content|3 Vendor Configuration File|4 Tone File"
    r"|5 Ringer File|X .+"
)
_UPLOAD_TYPES: Final = re.compile(
    r"1 Vendor Configuration File|2 Vendor Log File"
    r"|3 Vendor Configuration File [0-9]+|4 Vendor Log File [0-9]+|X .+"
)
_WINDOW_MODES: Final = re.compile(
    r"1 At Any Time|2 Immediately|3 When Idle|4 Confirmation Needed|X .+"
)


@dataclass(frozen=True, slots=True)
class QueuedTransfer:
    """A file transfer the ACS asked for and the device has not performed yet."""

    method: str  # the RPC that asked: Download, Upload or ScheduleDownload
    command_key: str
    file_type: str
    url: str
    username: str
    password: str
    file_size: int
    target_file_name: str
    due: float  # Unix time at which the transfer starts

    @property
    def is_download(self) -> bool:
        return self.method != "Upload"

    @property
    def event_code(self) -> str:
        return f"M {self.method}"


# --- Effects: what the device does after the session ------------------------------------


@dataclass(frozen=True, slots=True)
class RebootAfterSession:
    command_key: str


@dataclass(frozen=True, slots=True)
class FactoryResetAfterSession:
    pass


@dataclass(frozen=True, slots=True)
class InformAt:
    """ScheduleInform: a session with ``3 SCHEDULED`` and ``M ScheduleInform`` at *due*."""

    due: float
    command_key: str


@dataclass(frozen=True, slots=True)
class QueueTransfer:
    transfer: QueuedTransfer


@dataclass(frozen=True, slots=True)
class CancelQueuedTransfer:
    command_key: str


Effect: TypeAlias = (
    RebootAfterSession | FactoryResetAfterSession | InformAt | QueueTransfer | CancelQueuedTransfer
)


@dataclass(frozen=True, slots=True)
class Handled:
    response: Rpc  # the response, or a Fault
    effects: tuple[Effect, ...] = ()


@dataclass(frozen=True, slots=True)
class Dropped:
    """No answer: the device closes the TCP connection, as stacks that crash on a request do."""

    reason: str


def _names_in(rpc: Rpc) -> list[str]:
    """The parameter names a Get/SetParameterValues asks for; none for other RPCs."""
    if isinstance(rpc, GetParameterValues):
        return list(rpc.parameter_names)
    if isinstance(rpc, SetParameterValues):
        return [p.name for p in rpc.parameter_list]
    return []


def handle(
    rpc: Rpc,
    model: DataModel,
    now: float,
    queue: Sequence[QueuedTransfer] = (),
    quirks: Quirks = frozenset(),
    defects: Defects = NONE,
) -> Handled | Dropped:
    """Answer ACS request *rpc* at Unix time *now*; *queue* holds the transfers not yet done,
    *quirks* the readings of the spec the device makes, *defects* the requirements it breaks."""
    if Quirk.DROP_ON_UNKNOWN_PARAMETER in quirks and any(
        name and not model.has(name) for name in _names_in(rpc)
    ):
        return Dropped(f"{type(rpc).__name__} of a parameter it lacks")
    if isinstance(rpc, GetParameterValues) and any(n.endswith(".") for n in rpc.parameter_names):
        if Quirk.PARTIAL_PATH_DROP in quirks:
            return Dropped("GetParameterValues of a partial path")
        if Quirk.PARTIAL_PATH_FAULT in quirks:
            return Handled(
                cpe_fault(CpeFault.INVALID_PARAMETER_NAME, "partial paths are not supported")
            )
    if Quirk.NO_UPLOAD_NO_RESET in quirks:
        if isinstance(rpc, Upload | FactoryReset):
            return Handled(
                cpe_fault(CpeFault.METHOD_NOT_SUPPORTED, f"{type(rpc).__name__} is not offered")
            )
        if isinstance(rpc, GetRPCMethods):
            offered = [c.__name__ for c in _HANDLERS if c not in (Upload, FactoryReset)]
            return Handled(GetRPCMethodsResponse(offered))
    if isinstance(rpc, SetParameterValues) and Defect.SPV_NOT_ATOMIC in defects:
        for struct in rpc.parameter_list:  # each good value applied, whatever the others
            with contextlib.suppress(ModelFault):
                model.set_parameter_values([struct], rpc.parameter_key)
    handler = _HANDLERS.get(type(rpc))
    if handler is None:
        return Handled(
            cpe_fault(
                CpeFault.METHOD_NOT_SUPPORTED, f"{type(rpc).__name__} is not a request to a CPE"
            )
        )
    try:
        return handler(rpc, model, now, queue, quirks)
    except ModelFault as exc:
        if (
            Defect.INVALID_NAME_9002 in defects
            and exc.code is CpeFault.INVALID_PARAMETER_NAME
            and isinstance(rpc, GetParameterNames | GetParameterValues)
        ):
            return Handled(cpe_fault(CpeFault.INTERNAL_ERROR, str(exc)))
        if Defect.WRONG_TYPE_9007 in defects and isinstance(rpc, SetParameterValues):
            exc = _type_as_value(exc)
        return Handled(exc.to_fault())


def _type_as_value(fault: ModelFault) -> ModelFault:
    """*fault* with each wrong-type fault (9006) of a parameter told as a wrong value (9007)."""
    value = CpeFault.INVALID_PARAMETER_VALUE
    return ModelFault(
        fault.code,
        fault.message,
        [
            replace(f, fault_code=value) if f.fault_code == CpeFault.INVALID_PARAMETER_TYPE else f
            for f in fault.parameter_faults
        ],
    )


def _invalid(message: str) -> ModelFault:
    return ModelFault(CpeFault.INVALID_ARGUMENTS, message)


def _check_command_key(key: str) -> None:
    if len(key) > _MAX_COMMAND_KEY:
        raise _invalid(f"CommandKey longer than {_MAX_COMMAND_KEY} characters")


def _transfer(rpc: Download | Upload | ScheduleDownload, due: float) -> QueuedTransfer:
    """The checked transfer *rpc* asks for, starting at *due*."""
    _check_command_key(rpc.command_key)
    if (_UPLOAD_TYPES if isinstance(rpc, Upload) else _DOWNLOAD_TYPES).fullmatch(
        rpc.file_type
    ) is None:
        raise _invalid(f"unsupported FileType {rpc.file_type!r}")
    if not rpc.url or len(rpc.url) > _MAX_URL:
        raise _invalid(f"URL must hold 1 to {_MAX_URL} characters")
    scheme = urlsplit(rpc.url).scheme.lower()
    if scheme not in _TRANSFER_SCHEMES:
        raise ModelFault(
            CpeFault.UNSUPPORTED_TRANSFER_PROTOCOL,
            f"{scheme or 'no'} scheme: use http, https or ftp",
        )
    return QueuedTransfer(
        method=type(rpc).__name__,
        command_key=rpc.command_key,
        file_type=rpc.file_type,
        url=rpc.url,
        username=rpc.username,
        password=rpc.password,
        file_size=0 if isinstance(rpc, Upload) else rpc.file_size,
        target_file_name="" if isinstance(rpc, Upload) else rpc.target_file_name,
        due=due,
    )


def _get_rpc_methods(rpc: GetRPCMethods, *_: Any) -> Handled:
    return Handled(GetRPCMethodsResponse([cls.__name__ for cls in _HANDLERS]))


def _set_parameter_values(rpc: SetParameterValues, model: DataModel, *_: Any) -> Handled:
    model.set_parameter_values(rpc.parameter_list, rpc.parameter_key)
    return Handled(SetParameterValuesResponse(status=0))


def _get_parameter_values(rpc: GetParameterValues, model: DataModel, *_: Any) -> Handled:
    return Handled(GetParameterValuesResponse(model.get_parameter_values(rpc.parameter_names)))


def _get_parameter_names(rpc: GetParameterNames, model: DataModel, *_: Any) -> Handled:
    names = model.get_parameter_names(rpc.parameter_path, rpc.next_level)
    return Handled(GetParameterNamesResponse(names))


def _set_parameter_attributes(
    rpc: SetParameterAttributes, model: DataModel, _now: float, _queue: Any, quirks: Quirks
) -> Handled:
    deny = Quirk.DENY_ACTIVE_NOTIFY in quirks
    model.set_parameter_attributes(rpc.parameter_list, deny_active=deny)
    return Handled(SetParameterAttributesResponse())


def _get_parameter_attributes(rpc: GetParameterAttributes, model: DataModel, *_: Any) -> Handled:
    attributes = model.get_parameter_attributes(rpc.parameter_names)
    return Handled(GetParameterAttributesResponse(attributes))


def _add_object(rpc: AddObject, model: DataModel, *_: Any) -> Handled:
    number = model.add_object(rpc.object_name, rpc.parameter_key)
    return Handled(AddObjectResponse(instance_number=number, status=0))


def _delete_object(rpc: DeleteObject, model: DataModel, *_: Any) -> Handled:
    model.delete_object(rpc.object_name, rpc.parameter_key)
    return Handled(DeleteObjectResponse(status=0))


def _reboot(rpc: Reboot, *_: Any) -> Handled:
    _check_command_key(rpc.command_key)
    return Handled(RebootResponse(), (RebootAfterSession(rpc.command_key),))


def _factory_reset(rpc: FactoryReset, *_: Any) -> Handled:
    return Handled(FactoryResetResponse(), (FactoryResetAfterSession(),))


def _schedule_inform(rpc: ScheduleInform, model: DataModel, now: float, *_: Any) -> Handled:
    _check_command_key(rpc.command_key)
    if rpc.delay_seconds <= 0:
        raise _invalid("DelaySeconds must be greater than zero")
    return Handled(ScheduleInformResponse(), (InformAt(now + rpc.delay_seconds, rpc.command_key),))


def _download(rpc: Download, model: DataModel, now: float, *_: Any) -> Handled:
    transfer = _transfer(rpc, now + rpc.delay_seconds)
    # Status 1: done later, reported by TransferComplete.
    return Handled(DownloadResponse(status=1), (QueueTransfer(transfer),))


def _upload(rpc: Upload, model: DataModel, now: float, *_: Any) -> Handled:
    transfer = _transfer(rpc, now + rpc.delay_seconds)
    return Handled(UploadResponse(status=1), (QueueTransfer(transfer),))


def _check_windows(windows: Sequence[TimeWindowStruct]) -> None:
    if not 1 <= len(windows) <= 2:
        raise _invalid("TimeWindowList must hold one or two windows")
    previous_end = -1
    for window in windows:
        if window.window_end < window.window_start:
            raise _invalid("a time window ends before it starts")
        if window.window_start < previous_end:
            raise _invalid("time windows overlap or are out of order")
        if _WINDOW_MODES.fullmatch(window.window_mode) is None:
            raise _invalid(f"unsupported WindowMode {window.window_mode!r}")
        previous_end = window.window_end


def _schedule_download(rpc: ScheduleDownload, model: DataModel, now: float, *_: Any) -> Handled:
    _check_windows(rpc.time_window_list)
    transfer = _transfer(rpc, now + rpc.time_window_list[0].window_start)
    return Handled(ScheduleDownloadResponse(), (QueueTransfer(transfer),))


def _get_queued_transfers(
    rpc: GetQueuedTransfers, model: DataModel, now: float, queue: Sequence[QueuedTransfer], *_: Any
) -> Handled:
    structs = [QueuedTransferStruct(t.command_key, TRANSFER_NOT_STARTED) for t in queue]
    return Handled(GetQueuedTransfersResponse(structs))


def _get_all_queued_transfers(
    rpc: GetAllQueuedTransfers,
    model: DataModel,
    now: float,
    queue: Sequence[QueuedTransfer],
    *_: Any,
) -> Handled:
    structs = [
        AllQueuedTransferStruct(
            t.command_key,
            TRANSFER_NOT_STARTED,
            t.is_download,
            t.file_type,
            t.file_size,
            t.target_file_name,
        )
        for t in queue
    ]
    return Handled(GetAllQueuedTransfersResponse(structs))


def _cancel_transfer(
    rpc: CancelTransfer, model: DataModel, now: float, queue: Sequence[QueuedTransfer], *_: Any
) -> Handled:
    if not any(t.command_key == rpc.command_key for t in queue):
        raise _invalid(f"no queued transfer has CommandKey {rpc.command_key!r}")
    return Handled(CancelTransferResponse(), (CancelQueuedTransfer(rpc.command_key),))


# Order is the answer to GetRPCMethods.
_HANDLERS: Final[dict[type[Any], Callable[..., Handled]]] = {
    GetRPCMethods: _get_rpc_methods,
    SetParameterValues: _set_parameter_values,
    GetParameterValues: _get_parameter_values,
    GetParameterNames: _get_parameter_names,
    SetParameterAttributes: _set_parameter_attributes,
    GetParameterAttributes: _get_parameter_attributes,
    AddObject: _add_object,
    DeleteObject: _delete_object,
    Reboot: _reboot,
    Download: _download,
    Upload: _upload,
    FactoryReset: _factory_reset,
    ScheduleInform: _schedule_inform,
    ScheduleDownload: _schedule_download,
    GetQueuedTransfers: _get_queued_transfers,
    GetAllQueuedTransfers: _get_all_queued_transfers,
    CancelTransfer: _cancel_transfer,
}
