"""Every ACS request the simulated CPE answers, with its response, effects and faults."""

from __future__ import annotations

import pytest

from knock.cpe.datamodel import DataModel, load_model
from knock.cpe.quirks import Quirk
from knock.cpe.rpc_handler import (
    CancelQueuedTransfer,
    FactoryResetAfterSession,
    Handled,
    InformAt,
    QueuedTransfer,
    QueueTransfer,
    RebootAfterSession,
    handle,
)
from knock.cwmp import (
    CWMP_1_0,
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
    Fault,
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
    InformResponse,
    ParameterAttributeStruct,
    ParameterInfoStruct,
    ParameterValueStruct,
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
    SetParameterAttributesStruct,
    SetParameterValues,
    SetParameterValuesResponse,
    TimeWindowStruct,
    TransferCompleteResponse,
    Upload,
    UploadResponse,
    build_envelope,
)

NOW = 1_750_000_000.0
MS = "Device.ManagementServer."


@pytest.fixture
def model() -> DataModel:
    return DataModel.fresh(load_model("tr181"))


def fault(handled: Handled) -> tuple[str, int]:
    assert handled.effects == ()
    assert isinstance(handled.response, Fault), handled.response
    return handled.response.faultcode, handled.response.fault_code


def download(**changes: object) -> Download:
    fields: dict[str, object] = {
        "command_key": "fw-1",
        "file_type": "1 Firmware Upgrade Image",
        "url": "http://files.example/fw.bin",
        "file_size": 1024,
        "target_file_name": "fw.bin",
        "delay_seconds": 30,
    }
    return Download(**{**fields, **changes})  # type: ignore[arg-type]


def window(start: int, end: int, mode: str = "1 At Any Time") -> TimeWindowStruct:
    return TimeWindowStruct(start, end, mode)


def schedule_download(windows: list[TimeWindowStruct]) -> ScheduleDownload:
    return ScheduleDownload(
        "sd-1", "1 Firmware Upgrade Image", "https://f/x.bin", "", "", 9, "x.bin", windows
    )


QUEUED = QueuedTransfer(
    "Download", "fw-1", "1 Firmware Upgrade Image", "http://f/fw", "", "", 7, "fw", NOW + 5
)


def test_get_rpc_methods_lists_every_request_handled(model: DataModel) -> None:
    handled = handle(GetRPCMethods(), model, NOW)
    assert handled == Handled(
        GetRPCMethodsResponse(
            [
                "GetRPCMethods",
                "SetParameterValues",
                "GetParameterValues",
                "GetParameterNames",
                "SetParameterAttributes",
                "GetParameterAttributes",
                "AddObject",
                "DeleteObject",
                "Reboot",
                "Download",
                "Upload",
                "FactoryReset",
                "ScheduleInform",
                "ScheduleDownload",
                "GetQueuedTransfers",
                "GetAllQueuedTransfers",
                "CancelTransfer",
            ]
        )
    )


@pytest.mark.parametrize("rpc", [InformResponse(1), TransferCompleteResponse(), RebootResponse()])
def test_messages_that_are_not_acs_requests_are_9000(model: DataModel, rpc: Rpc) -> None:
    assert fault(handle(rpc, model, NOW)) == ("Server", 9000)


def test_parameter_requests(model: DataModel) -> None:
    spv = SetParameterValues([ParameterValueStruct(MS + "PeriodicInformInterval", "60")], "k1")
    assert handle(spv, model, NOW) == Handled(SetParameterValuesResponse(0))
    gpv = handle(GetParameterValues([MS + "PeriodicInformInterval", MS + "ParameterKey"]), model, 0)
    assert gpv == Handled(
        GetParameterValuesResponse(
            [
                ParameterValueStruct(MS + "PeriodicInformInterval", "60", "xsd:unsignedInt"),
                ParameterValueStruct(MS + "ParameterKey", "k1"),
            ]
        )
    )
    gpn = handle(GetParameterNames("Device.XMPP.", True), model, NOW)
    assert gpn == Handled(
        GetParameterNamesResponse(
            [
                ParameterInfoStruct("Device.XMPP.ConnectionNumberOfEntries", False),
                ParameterInfoStruct("Device.XMPP.SupportedServerConnectAlgorithms", False),
                ParameterInfoStruct("Device.XMPP.Connection.", True),
            ]
        )
    )
    spa = SetParameterAttributes([SetParameterAttributesStruct(MS + "URL", True, 1, False)])
    assert handle(spa, model, NOW) == Handled(SetParameterAttributesResponse())
    gpa = handle(GetParameterAttributes([MS + "URL"]), model, NOW)
    assert gpa == Handled(GetParameterAttributesResponse([ParameterAttributeStruct(MS + "URL", 1)]))


def test_object_requests(model: DataModel) -> None:
    added = handle(AddObject("Device.XMPP.Connection.", "add"), model, NOW)
    assert added == Handled(AddObjectResponse(instance_number=1, status=0))
    deleted = handle(DeleteObject("Device.XMPP.Connection.1.", "del"), model, NOW)
    assert deleted == Handled(DeleteObjectResponse(0))
    assert model.get(MS + "ParameterKey") == "del"


@pytest.mark.parametrize(
    ("rpc", "expected"),
    [
        (GetParameterValues(["Device.Nope"]), ("Client", 9005)),
        (GetParameterNames(MS + "URL", True), ("Client", 9003)),
        (SetParameterValues([ParameterValueStruct(MS + "NATDetected", "1")]), ("Client", 9003)),
        (GetParameterAttributes(["Device.Nope."]), ("Client", 9005)),
        (AddObject("Device.Hosts.Host."), ("Server", 9001)),
        (AddObject("Device.Nope."), ("Client", 9005)),
        (DeleteObject("Device.IP.Interface.9."), ("Client", 9005)),
        (Reboot("k" * 33), ("Client", 9003)),
        (ScheduleInform(0, "s"), ("Client", 9003)),
        (download(url="tftp://files.example/fw"), ("Server", 9013)),
        (download(url=""), ("Client", 9003)),
        (download(url="http://f/" + "x" * 250), ("Client", 9003)),
        (download(file_type="7 Mystery File"), ("Client", 9003)),
        (download(command_key="c" * 33), ("Client", 9003)),
        (Upload("u", "2 Web Content", "http://f/up"), ("Client", 9003)),
        (Upload("u", "2 Vendor Log File", "gopher://f/up"), ("Server", 9013)),
        (schedule_download([]), ("Client", 9003)),
        (schedule_download([window(0, 10), window(20, 30), window(40, 50)]), ("Client", 9003)),
        (schedule_download([window(0, 30), window(20, 40)]), ("Client", 9003)),
        (schedule_download([window(30, 10)]), ("Client", 9003)),
        (schedule_download([window(0, 10, "5 Whenever")]), ("Client", 9003)),
        (CancelTransfer("unknown"), ("Client", 9003)),
    ],
)
def test_faults(model: DataModel, rpc: Rpc, expected: tuple[str, int]) -> None:
    before = model.to_json()
    assert fault(handle(rpc, model, NOW, [QUEUED])) == expected
    assert model.to_json() == before


def test_active_notification_on_uptime_is_denied_by_the_quirk_alone(model: DataModel) -> None:
    uptime = SetParameterAttributesStruct("Device.DeviceInfo.UpTime", True, 2, False)
    before = model.to_json()
    deny = frozenset({Quirk.DENY_ACTIVE_NOTIFY})
    denied = handle(SetParameterAttributes([uptime]), model, NOW, quirks=deny)
    assert fault(denied) == ("Server", 9009)
    assert model.to_json() == before
    taken = handle(SetParameterAttributes([uptime]), model, NOW)
    assert taken == Handled(SetParameterAttributesResponse())
    assert model.notification("Device.DeviceInfo.UpTime") == 2


def test_spv_fault_travels_with_a_fault_per_parameter(model: DataModel) -> None:
    rpc = SetParameterValues(
        [
            ParameterValueStruct(MS + "NATDetected", "1", "xsd:boolean"),
            ParameterValueStruct(MS + "STUNServerPort", "99999", "xsd:unsignedInt"),
        ]
    )
    body = build_envelope(handle(rpc, model, NOW).response, cwmp_ns=CWMP_1_0, id="7")
    assert b"<faultcode>Client</faultcode>" in body
    assert b"<FaultCode>9003</FaultCode>" in body
    assert body.count(b"<SetParameterValuesFault>") == 2
    assert (
        b"<ParameterName>Device.ManagementServer.NATDetected</ParameterName>"
        b"<FaultCode>9008</FaultCode>"
    ) in body
    assert (
        b"<ParameterName>Device.ManagementServer.STUNServerPort</ParameterName>"
        b"<FaultCode>9007</FaultCode>"
    ) in body


def test_reboot_and_factory_reset_happen_after_the_session(model: DataModel) -> None:
    assert handle(Reboot("r-1"), model, NOW) == Handled(
        RebootResponse(), (RebootAfterSession("r-1"),)
    )
    assert handle(FactoryReset(), model, NOW) == Handled(
        FactoryResetResponse(), (FactoryResetAfterSession(),)
    )


def test_schedule_inform(model: DataModel) -> None:
    assert handle(ScheduleInform(90, "later"), model, NOW) == Handled(
        ScheduleInformResponse(), (InformAt(NOW + 90, "later"),)
    )


def test_download_is_queued_with_its_delay(model: DataModel) -> None:
    handled = handle(download(username="u", password="p"), model, NOW)
    assert handled == Handled(
        DownloadResponse(status=1),
        (
            QueueTransfer(
                QueuedTransfer(
                    "Download",
                    "fw-1",
                    "1 Firmware Upgrade Image",
                    "http://files.example/fw.bin",
                    "u",
                    "p",
                    1024,
                    "fw.bin",
                    NOW + 30,
                )
            ),
        ),
    )
    assert handled.response == DownloadResponse(1, "0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z")


def test_upload_is_queued(model: DataModel) -> None:
    upload = Upload("up", "4 Vendor Log File 2", "ftp://f/log", delay_seconds=5)
    handled = handle(upload, model, NOW)
    assert handled.response == UploadResponse(status=1)
    (effect,) = handled.effects
    assert isinstance(effect, QueueTransfer)
    assert (effect.transfer.is_download, effect.transfer.event_code) == (False, "M Upload")
    assert effect.transfer.due == NOW + 5


def test_schedule_download_starts_in_its_first_window(model: DataModel) -> None:
    handled = handle(schedule_download([window(60, 120), window(300, 600)]), model, NOW)
    assert handled.response == ScheduleDownloadResponse()
    (effect,) = handled.effects
    assert isinstance(effect, QueueTransfer)
    assert (effect.transfer.due, effect.transfer.event_code) == (NOW + 60, "M ScheduleDownload")


def test_queued_transfers_are_listed_and_cancelled(model: DataModel) -> None:
    assert handle(GetQueuedTransfers(), model, NOW, [QUEUED]) == Handled(
        GetQueuedTransfersResponse([QueuedTransferStruct("fw-1", 1)])
    )
    assert handle(GetAllQueuedTransfers(), model, NOW, [QUEUED]) == Handled(
        GetAllQueuedTransfersResponse(
            [AllQueuedTransferStruct("fw-1", 1, True, "1 Firmware Upgrade Image", 7, "fw")]
        )
    )
    assert handle(GetQueuedTransfers(), model, NOW) == Handled(GetQueuedTransfersResponse([]))
    assert handle(CancelTransfer("fw-1"), model, NOW, [QUEUED]) == Handled(
        CancelTransferResponse(), (CancelQueuedTransfer("fw-1"),)
    )
