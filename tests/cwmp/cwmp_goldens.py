"""The golden CWMP messages of tests/cwmp/golden/ and what each one says.

Each golden file was written by hand from TR-069 Annex A (the argument tables of A.3 and the
Broadband Forum's cwmp-1-x.xsd element order and types), not produced by Knock's codec, in the
newest namespace, urn:dslforum-org:cwmp-1-2, with the prefixes soap-env, soap-enc, xsd, xsi
and cwmp (GenieACS writes the same; only cwmp is one a peer may insist on). The
folder says who sends it: acs-to-cpe/ or cpe-to-acs/. Every field of a message carries a value
other than its default where the spec allows, so a parser that skipped a renamed element would
be caught too.

Checked against two independent stacks' message formats (read, not copied): GenieACS, an ACS,
and easycwmp, a CPE, name and order every element they share with these goldens the same way.
They also show what the canonical comparison pins for them: easycwmp looks for the soap-env
declaration on the element declaring the cwmp namespace (here all five sit on the Envelope),
requires the message element to carry a prefix, and matches children by their unprefixed
names (Name, Value, string), as Annex A's unqualified child elements are written.

`golden_failure` is the whole check of one golden in one namespace (parse and compare the
fields, build and compare canonical XML, validate what was built); the golden tests and the
mutation check (test_mutants.py) both run it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from knock.cwmp import (
    CWMP_1_0,
    CWMP_1_2,
    AddObject,
    AddObjectResponse,
    AllQueuedTransferStruct,
    ArgStruct,
    AutonomousTransferComplete,
    AutonomousTransferCompleteResponse,
    CancelTransfer,
    CancelTransferResponse,
    DeleteObject,
    DeleteObjectResponse,
    DeviceIdStruct,
    Download,
    DownloadResponse,
    Envelope,
    EventStruct,
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
    Inform,
    InformResponse,
    Kicked,
    KickedResponse,
    ParameterAttributeStruct,
    ParameterInfoStruct,
    ParameterValueStruct,
    QueuedTransferStruct,
    Reboot,
    RebootResponse,
    RequestDownload,
    RequestDownloadResponse,
    Rpc,
    ScheduleDownload,
    ScheduleDownloadResponse,
    ScheduleInform,
    ScheduleInformResponse,
    SetParameterAttributes,
    SetParameterAttributesResponse,
    SetParameterAttributesStruct,
    SetParameterValues,
    SetParameterValuesFault,
    SetParameterValuesResponse,
    TimeWindowStruct,
    TransferComplete,
    TransferCompleteFaultStruct,
    TransferCompleteResponse,
    Upload,
    UploadResponse,
    parse_envelope,
)
from knock.xmlsafe import parse_xml
from wire_schema import ADDED_IN, VERSIONS, unguarded_build, wire_errors

GOLDEN_DIR = Path(__file__).parent / "golden"
WRITTEN_IN = CWMP_1_2


@dataclass(frozen=True)
class Golden:
    path: str
    """Under tests/cwmp/golden/: "<sender>-to-<receiver>/<name>.xml"."""
    message: Rpc
    id: str
    hold_requests: bool | None = None
    session_timeout: int | None = None

    @property
    def since(self) -> str:
        """The oldest namespace that has every element of this golden."""
        if self.session_timeout is not None:  # a header of Amendment 4
            return CWMP_1_2
        return ADDED_IN.get(type(self.message), CWMP_1_0)

    def namespaces(self) -> list[str]:
        return list(VERSIONS[VERSIONS.index(self.since) :])

    def build(self, cwmp_ns: str) -> bytes:
        """This golden's message and headers as the codec builds them in *cwmp_ns*."""
        return unguarded_build(
            self.message,
            cwmp_ns=cwmp_ns,
            id=self.id,
            hold_requests=self.hold_requests,
            session_timeout=self.session_timeout,
        )

    def text(self, cwmp_ns: str) -> bytes:
        data = (GOLDEN_DIR / self.path).read_bytes()
        return data.replace(WRITTEN_IN.encode(), cwmp_ns.encode())


def canonical(data: bytes) -> bytes:
    """C14N of an envelope, without the indentation whitespace of a hand-written file (only
    whitespace between elements goes: a leaf's text, spaces included, is kept)."""
    root = parse_xml(data)
    for el in root.iter():
        if len(el) and el.text is not None and not el.text.strip():
            el.text = None
        if el.tail is not None and not el.tail.strip():
            el.tail = None
    return etree.tostring(root, method="c14n")


def golden_failure(golden: Golden, cwmp_ns: str) -> str | None:
    """What is wrong between Knock's codec and *golden* in *cwmp_ns*, or None."""
    text = golden.text(cwmp_ns)
    try:
        parsed = parse_envelope(text)
    except Exception as exc:
        return f"parse: {exc!r}"
    expected = Envelope(
        cwmp_ns, golden.id, golden.hold_requests, golden.session_timeout, golden.message
    )
    if parsed != expected:
        return f"parse: got {parsed!r}, expected {expected!r}"
    try:
        built = golden.build(cwmp_ns)
    except Exception as exc:
        return f"build: {exc!r}"
    got, want = canonical(built), canonical(text)
    if got != want:
        return f"build: canonical XML differs\n got: {got.decode()}\nwant: {want.decode()}"
    errors = wire_errors(built)
    return "schema: " + "; ".join(errors) if errors else None


T_START = "2026-03-01T02:00:00Z"
T_DONE = "2026-03-01T02:03:07.25+01:00"
VALUES = [
    ParameterValueStruct("Device.DeviceInfo.SoftwareVersion", "4.2.0 <beta> & more", "xsd:string"),
    ParameterValueStruct("Device.DeviceInfo.UpTime", "86400", "xsd:unsignedInt"),
    ParameterValueStruct("Device.ManagementServer.PeriodicInformEnable", "1", "xsd:boolean"),
    ParameterValueStruct("Device.Time.CurrentLocalTime", T_START, "xsd:dateTime"),
    ParameterValueStruct("Device.X_ACME_Offset", "-5", "xsd:int"),
    ParameterValueStruct("Device.X_ACME_Blob", "AAEC/w==", "xsd:base64"),
    ParameterValueStruct("Device.X_ACME_Note", "", "xsd:string"),
]
FIRMWARE = "1 Firmware Upgrade Image"

GOLDENS: tuple[Golden, ...] = (
    # --- sent by the ACS --------------------------------------------------------------------
    Golden("acs-to-cpe/GetRPCMethods.xml", GetRPCMethods(), "acs-1"),
    Golden(
        "acs-to-cpe/GetRPCMethodsResponse.xml",
        GetRPCMethodsResponse(["Inform", "GetRPCMethods", "TransferComplete"]),
        "cpe-asked-1",
    ),
    Golden(
        "acs-to-cpe/SetParameterValues.xml",
        SetParameterValues(VALUES, "spv-key-7"),
        "acs-2",
    ),
    Golden(
        "acs-to-cpe/GetParameterValues.xml",
        GetParameterValues(["Device.DeviceInfo.", "Device.ManagementServer.URL"]),
        "acs-3",
    ),
    Golden(
        "acs-to-cpe/GetParameterNames.xml",
        GetParameterNames("Device.WiFi.", True),
        "acs-4",
    ),
    Golden(
        "acs-to-cpe/SetParameterAttributes.xml",
        SetParameterAttributes(
            [
                SetParameterAttributesStruct("Device.DeviceInfo.UpTime", True, 2, True, []),
                SetParameterAttributesStruct(
                    "Device.WiFi.", False, 1, True, ["Subscriber", "X_ACME_Portal"]
                ),
            ]
        ),
        "acs-5",
    ),
    Golden(
        "acs-to-cpe/GetParameterAttributes.xml",
        GetParameterAttributes(["Device.DeviceInfo.UpTime"]),
        "acs-6",
    ),
    Golden(
        "acs-to-cpe/AddObject.xml",
        AddObject("Device.NAT.PortMapping.", "add-key-1"),
        "acs-7",
    ),
    Golden(
        "acs-to-cpe/DeleteObject.xml",
        DeleteObject("Device.NAT.PortMapping.3.", "del-key-1"),
        "acs-8",
    ),
    Golden("acs-to-cpe/Reboot.xml", Reboot("reboot-key"), "acs-9", hold_requests=True),
    Golden(
        "acs-to-cpe/Download.xml",
        Download(
            "dl-key-1",
            FIRMWARE,
            "https://files.example.net/fw/4.2.0.bin?sig=a&b=c",
            "fwuser",
            "fw<pass>",
            7340032,
            "4.2.0.bin",
            30,
            "https://portal.example.net/ok",
            "https://portal.example.net/failed",
        ),
        "acs-10",
    ),
    Golden(
        "acs-to-cpe/Upload.xml",
        Upload("up-key-1", "2 Vendor Log File", "https://files.example.net/logs/", "u", "p", 60),
        "acs-11",
    ),
    Golden("acs-to-cpe/FactoryReset.xml", FactoryReset(), "acs-12"),
    Golden("acs-to-cpe/ScheduleInform.xml", ScheduleInform(3600, "si-key-1"), "acs-13"),
    Golden(
        "acs-to-cpe/ScheduleDownload.xml",
        ScheduleDownload(
            "sd-key-1",
            FIRMWARE,
            "https://files.example.net/fw/4.3.0.bin",
            "fwuser",
            "secret",
            8388608,
            "4.3.0.bin",
            [
                TimeWindowStruct(0, 3600, "1 At Any Time", "", -1),
                TimeWindowStruct(7200, 14400, "4 Confirmation Needed", "Upgrade tonight?", 3),
            ],
        ),
        "acs-14",
    ),
    Golden("acs-to-cpe/GetQueuedTransfers.xml", GetQueuedTransfers(), "acs-15"),
    Golden("acs-to-cpe/GetAllQueuedTransfers.xml", GetAllQueuedTransfers(), "acs-16"),
    Golden("acs-to-cpe/CancelTransfer.xml", CancelTransfer("dl-key-1"), "acs-17"),
    Golden("acs-to-cpe/InformResponse.xml", InformResponse(1), "cpe-1"),
    Golden("acs-to-cpe/TransferCompleteResponse.xml", TransferCompleteResponse(), "cpe-2"),
    Golden(
        "acs-to-cpe/AutonomousTransferCompleteResponse.xml",
        AutonomousTransferCompleteResponse(),
        "cpe-3",
    ),
    Golden("acs-to-cpe/RequestDownloadResponse.xml", RequestDownloadResponse(), "cpe-4"),
    Golden(
        "acs-to-cpe/KickedResponse.xml",
        KickedResponse("https://portal.example.net/welcome?step=2"),
        "cpe-5",
    ),
    Golden("acs-to-cpe/Fault.xml", Fault("Server", 8005, "Retry request"), "cpe-6"),
    # --- sent by the CPE --------------------------------------------------------------------
    Golden("cpe-to-acs/GetRPCMethods.xml", GetRPCMethods(), "cpe-asked-1"),
    Golden(
        "cpe-to-acs/GetRPCMethodsResponse.xml",
        GetRPCMethodsResponse(
            ["GetRPCMethods", "SetParameterValues", "GetParameterValues", "Download", "Reboot"]
        ),
        "acs-1",
    ),
    Golden("cpe-to-acs/SetParameterValuesResponse.xml", SetParameterValuesResponse(1), "acs-2"),
    Golden(
        "cpe-to-acs/GetParameterValuesResponse.xml", GetParameterValuesResponse(VALUES), "acs-3"
    ),
    Golden(
        "cpe-to-acs/GetParameterNamesResponse.xml",
        GetParameterNamesResponse(
            [
                ParameterInfoStruct("Device.WiFi.SSIDNumberOfEntries", False),
                ParameterInfoStruct("Device.WiFi.SSID.", True),
            ]
        ),
        "acs-4",
    ),
    Golden(
        "cpe-to-acs/SetParameterAttributesResponse.xml", SetParameterAttributesResponse(), "acs-5"
    ),
    Golden(
        "cpe-to-acs/GetParameterAttributesResponse.xml",
        GetParameterAttributesResponse(
            [
                ParameterAttributeStruct("Device.DeviceInfo.UpTime", 2, ["Subscriber"]),
                ParameterAttributeStruct("Device.DeviceInfo.SoftwareVersion", 0, []),
            ]
        ),
        "acs-6",
    ),
    Golden("cpe-to-acs/AddObjectResponse.xml", AddObjectResponse(4, 1), "acs-7"),
    Golden("cpe-to-acs/DeleteObjectResponse.xml", DeleteObjectResponse(1), "acs-8"),
    Golden("cpe-to-acs/RebootResponse.xml", RebootResponse(), "acs-9"),
    Golden("cpe-to-acs/DownloadResponse.xml", DownloadResponse(0, T_START, T_DONE), "acs-10"),
    Golden("cpe-to-acs/UploadResponse.xml", UploadResponse(1, T_START, T_DONE), "acs-11"),
    Golden("cpe-to-acs/FactoryResetResponse.xml", FactoryResetResponse(), "acs-12"),
    Golden("cpe-to-acs/ScheduleInformResponse.xml", ScheduleInformResponse(), "acs-13"),
    Golden("cpe-to-acs/ScheduleDownloadResponse.xml", ScheduleDownloadResponse(), "acs-14"),
    Golden(
        "cpe-to-acs/GetQueuedTransfersResponse.xml",
        GetQueuedTransfersResponse(
            [QueuedTransferStruct("dl-key-1", 2), QueuedTransferStruct("", 1)]
        ),
        "acs-15",
    ),
    Golden(
        "cpe-to-acs/GetAllQueuedTransfersResponse.xml",
        GetAllQueuedTransfersResponse(
            [
                AllQueuedTransferStruct("dl-key-1", 2, True, FIRMWARE, 7340032, "4.2.0.bin"),
                AllQueuedTransferStruct("up-key-1", 1, False, "2 Vendor Log File", 0, ""),
            ]
        ),
        "acs-16",
    ),
    Golden("cpe-to-acs/CancelTransferResponse.xml", CancelTransferResponse(), "acs-17"),
    Golden(
        "cpe-to-acs/Inform.xml",
        Inform(
            DeviceIdStruct("Acme Networks", "00D09E", "HG-42", "ACME0042"),
            [EventStruct("1 BOOT", ""), EventStruct("M Reboot", "reboot-key")],
            1,
            T_START,
            2,
            VALUES,
        ),
        "cpe-1",
    ),
    Golden(
        "cpe-to-acs/Inform-SessionTimeout.xml",
        Inform(
            DeviceIdStruct("Acme Networks", "00D09E", "HG-42", "ACME0042"),
            [EventStruct("6 CONNECTION REQUEST", "")],
            1,
            T_DONE,
            0,
            [],
        ),
        "cpe-7",
        session_timeout=60,
    ),
    Golden(
        "cpe-to-acs/TransferComplete.xml",
        TransferComplete(
            "dl-key-1", TransferCompleteFaultStruct(9010, "Download failure"), T_START, T_DONE
        ),
        "cpe-2",
    ),
    Golden(
        "cpe-to-acs/AutonomousTransferComplete.xml",
        AutonomousTransferComplete(
            "https://announce.example.net/",
            "https://files.example.net/fw/4.2.1.bin",
            True,
            FIRMWARE,
            7340032,
            "4.2.1.bin",
            TransferCompleteFaultStruct(9012, "File transfer server authentication failure"),
            T_START,
            T_DONE,
        ),
        "cpe-3",
    ),
    Golden(
        "cpe-to-acs/RequestDownload.xml",
        RequestDownload(
            "3 Vendor Configuration File",
            [ArgStruct("Version", "2.1"), ArgStruct("Profile", "")],
        ),
        "cpe-4",
    ),
    Golden(
        "cpe-to-acs/Kicked.xml",
        Kicked(
            "activate",
            "https://portal.example.net/",
            "plan=gold",
            "https://portal.example.net/welcome",
        ),
        "cpe-5",
    ),
    Golden(
        "cpe-to-acs/Fault.xml",
        Fault(
            "Client",
            9003,
            "Invalid arguments",
            [
                SetParameterValuesFault(
                    "Device.ManagementServer.PeriodicInformInterval", 9007, "Invalid value"
                ),
                SetParameterValuesFault("Device.DeviceInfo.UpTime", 9008, ""),
            ],
        ),
        "acs-2",
    ),
)
