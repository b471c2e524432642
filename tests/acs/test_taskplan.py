"""From GenieACS task JSON to RPCs and back to store updates."""

from __future__ import annotations

import pytest

from knock.acs.taskplan import (
    TaskOutcome,
    TaskPlan,
    TaskSpecError,
    transfer_command_key,
    transfer_task_id,
)
from knock.cwmp.rpcs import (
    AddObject,
    AddObjectResponse,
    DeleteObject,
    DeleteObjectResponse,
    Download,
    DownloadResponse,
    GetParameterAttributes,
    GetParameterAttributesResponse,
    GetParameterNames,
    GetParameterNamesResponse,
    GetParameterValues,
    GetParameterValuesResponse,
    GetRPCMethods,
    GetRPCMethodsResponse,
    ParameterAttributeStruct,
    ParameterInfoStruct,
    ParameterValueStruct,
    Reboot,
    RebootResponse,
    ScheduleInform,
    ScheduleInformResponse,
    SetParameterAttributes,
    SetParameterAttributesResponse,
    SetParameterAttributesStruct,
    SetParameterValues,
    SetParameterValuesResponse,
    Upload,
    UploadResponse,
)
from knock.store.rows import ParamValue

INTERVAL = "Device.ManagementServer.PeriodicInformInterval"


def test_get_parameter_values() -> None:
    plan = TaskPlan({"name": "getParameterValues", "parameterNames": [INTERVAL]}, {})
    assert plan.first() == GetParameterValues([INTERVAL])
    outcome = plan.on_response(
        GetParameterValuesResponse([ParameterValueStruct(INTERVAL, "300", "xsd:unsignedInt")])
    )
    assert outcome == TaskOutcome(
        result=[[INTERVAL, "300", "xsd:unsignedInt"]],
        put=[ParamValue(INTERVAL, "300", "xsd:unsignedInt")],
    )


def test_get_parameter_attributes_reports_notification_and_access_without_storing() -> None:
    jid = "Device.ManagementServer.ConnReqJabberID"
    plan = TaskPlan({"name": "getParameterAttributes", "parameterNames": [jid]}, {})
    assert plan.first() == GetParameterAttributes([jid])
    outcome = plan.on_response(
        GetParameterAttributesResponse([ParameterAttributeStruct(jid, 2, ["Subscriber"])])
    )
    assert outcome == TaskOutcome(result=[[jid, 2, ["Subscriber"]]])


def test_set_parameter_values_takes_stored_type_then_json_type() -> None:
    plan = TaskPlan(
        {
            "name": "setParameterValues",
            "parameterValues": [
                [INTERVAL, 60],
                ["Device.X.Flag", True],
                ["Device.X.S", "a", "xsd:string"],
            ],
        },
        {INTERVAL: "xsd:unsignedInt"},
    )
    assert plan.first() == SetParameterValues(
        [
            ParameterValueStruct(INTERVAL, "60", "xsd:unsignedInt"),
            ParameterValueStruct("Device.X.Flag", "1", "xsd:boolean"),
            ParameterValueStruct("Device.X.S", "a", "xsd:string"),
        ]
    )
    outcome = plan.on_response(SetParameterValuesResponse(0))
    assert isinstance(outcome, TaskOutcome)
    assert outcome.put[0] == ParamValue(INTERVAL, "60", "xsd:unsignedInt")


def test_set_parameter_values_refuses_a_bad_value() -> None:
    plan = TaskPlan(
        {"name": "setParameterValues", "parameterValues": [[INTERVAL, "soon"]]},
        {INTERVAL: "xsd:unsignedInt"},
    )
    with pytest.raises(TaskSpecError, match=INTERVAL):
        plan.first()


def test_add_object_with_values_then_delete() -> None:
    spec = {
        "name": "addObject",
        "objectName": "Device.Hosts.Host",
        "parameterValues": [["HostName", "pc"]],
    }
    plan = TaskPlan(spec, {})
    assert plan.first() == AddObject("Device.Hosts.Host.")
    assert plan.on_response(AddObjectResponse(3, 0)) == SetParameterValues(
        [ParameterValueStruct("Device.Hosts.Host.3.HostName", "pc", "xsd:string")]
    )
    outcome = plan.on_response(SetParameterValuesResponse(0))
    assert outcome == TaskOutcome(
        result={"instanceNumber": 3},
        put=[
            ParamValue("Device.Hosts.Host.", None, None, writable=True),
            ParamValue("Device.Hosts.Host.3.", None, None),
            ParamValue("Device.Hosts.Host.3.HostName", "pc", "xsd:string"),
        ],
    )
    delete = TaskPlan({"name": "deleteObject", "objectName": "Device.Hosts.Host.3."}, {})
    assert delete.first() == DeleteObject("Device.Hosts.Host.3.")
    assert delete.on_response(DeleteObjectResponse(0)) == TaskOutcome(
        result={"status": 0}, delete_under=["Device.Hosts.Host.3."]
    )


def test_refresh_object_reads_names_then_the_values_of_the_leaves() -> None:
    plan = TaskPlan({"name": "refreshObject", "objectName": "Device.DeviceInfo."}, {})
    assert plan.first() == GetParameterNames("Device.DeviceInfo.", next_level=False)
    listed = [
        ParameterInfoStruct("Device.DeviceInfo.", False),
        ParameterInfoStruct("Device.DeviceInfo.UpTime", False),
        ParameterInfoStruct("Device.DeviceInfo.ProvisioningCode", True),
    ]
    read = plan.on_response(GetParameterNamesResponse(listed))
    assert read == GetParameterValues(
        ["Device.DeviceInfo.UpTime", "Device.DeviceInfo.ProvisioningCode"]
    )
    values = [
        ParameterValueStruct("Device.DeviceInfo.UpTime", "42", "xsd:unsignedInt"),
        ParameterValueStruct("Device.DeviceInfo.ProvisioningCode", "abc", "xsd:string"),
    ]
    assert plan.on_response(GetParameterValuesResponse(values)) == TaskOutcome(
        result=[
            ["Device.DeviceInfo.UpTime", "42", "xsd:unsignedInt"],
            ["Device.DeviceInfo.ProvisioningCode", "abc", "xsd:string"],
        ],
        put=[
            ParamValue("Device.DeviceInfo.", None, None, writable=False),
            ParamValue("Device.DeviceInfo.UpTime", "42", "xsd:unsignedInt", writable=False),
            ParamValue("Device.DeviceInfo.ProvisioningCode", "abc", "xsd:string", writable=True),
        ],
    )


def test_refresh_of_an_empty_object_stores_its_node() -> None:
    plan = TaskPlan({"name": "refreshObject", "objectName": "Device.Hosts.Host."}, {})
    plan.first()
    outcome = plan.on_response(
        GetParameterNamesResponse([ParameterInfoStruct("Device.Hosts.Host.", True)])
    )
    assert outcome == TaskOutcome(
        result=[], put=[ParamValue("Device.Hosts.Host.", None, None, writable=True)]
    )


def test_reboot_and_download() -> None:
    plan = TaskPlan({"name": "reboot"}, {})
    assert plan.first() == Reboot("")
    assert plan.on_response(RebootResponse()) == TaskOutcome(result={})
    download = TaskPlan(
        {"name": "download", "fileType": "1 Firmware Upgrade Image", "url": "http://f/x.bin"}, {}
    )
    first = download.first()
    assert isinstance(first, Download) and first.url == "http://f/x.bin"
    assert download.on_response(DownloadResponse(1)) == TaskOutcome(result={"status": 1})
    done = DownloadResponse(0, "2026-12-03T10:00:00Z", "2026-12-03T10:00:01Z")
    times = {"startTime": "2026-12-03T10:00:00Z", "completeTime": "2026-12-03T10:00:01Z"}
    assert download.on_response(done) == TaskOutcome(result={"status": 0, **times})


def test_an_upload_carries_the_transfer_s_command_key_and_its_url() -> None:
    spec = {"name": "upload", "fileType": "1 Vendor Configuration File", "url": "http://f/up"}
    plan = TaskPlan(spec, {}, command_key="knock-abc")
    assert plan.first() == Upload("knock-abc", "1 Vendor Configuration File", "http://f/up")
    assert plan.on_response(UploadResponse(1)) == TaskOutcome(result={"status": 1})
    with pytest.raises(TaskSpecError, match="upload needs the url"):
        TaskPlan({"name": "upload", "url": "http://f/up"}, {}).first()


def test_the_check_s_tasks_carry_next_level_parameter_key_attributes_and_schedule() -> None:
    names = TaskPlan({"name": "getParameterNames", "objectName": "Device.", "nextLevel": True}, {})
    assert names.first() == GetParameterNames("Device.", next_level=True)
    values = {"name": "setParameterValues", "parameterValues": [[INTERVAL, 60]]}
    keyed = TaskPlan({**values, "parameterKey": "k1"}, {INTERVAL: "xsd:unsignedInt"})
    assert keyed.first() == SetParameterValues(
        [ParameterValueStruct(INTERVAL, "60", "xsd:unsignedInt")], parameter_key="k1"
    )
    add = {"name": "addObject", "objectName": "Device.IP.Interface.", "parameterKey": "k2"}
    assert TaskPlan(add, {}).first() == AddObject("Device.IP.Interface.", parameter_key="k2")
    methods = TaskPlan({"name": "getRPCMethods"}, {})
    assert methods.first() == GetRPCMethods()
    listed = methods.on_response(GetRPCMethodsResponse(["GetRPCMethods", "Reboot"]))
    assert listed == TaskOutcome(result=["GetRPCMethods", "Reboot"])
    attributes = TaskPlan(
        {"name": "setParameterAttributes", "parameterAttributes": [[INTERVAL, 1]]}, {}
    )
    assert attributes.first() == SetParameterAttributes(
        [SetParameterAttributesStruct(INTERVAL, True, 1, False)]
    )
    assert attributes.on_response(SetParameterAttributesResponse()) == TaskOutcome(result={})
    schedule = TaskPlan({"name": "scheduleInform", "delaySeconds": 5, "commandKey": "k3"}, {})
    assert schedule.first() == ScheduleInform(5, "k3")
    assert schedule.on_response(ScheduleInformResponse()) == TaskOutcome(result={})
    with pytest.raises(TaskSpecError, match="parameterAttributes entry"):
        TaskPlan(
            {"name": "setParameterAttributes", "parameterAttributes": [[INTERVAL]]}, {}
        ).first()


def test_response_of_the_wrong_kind_is_a_task_error() -> None:
    plan = TaskPlan({"name": "getParameterValues", "parameterNames": [INTERVAL]}, {})
    plan.first()
    with pytest.raises(TaskSpecError, match="expected GetParameterValuesResponse"):
        plan.on_response(RebootResponse())


def test_unknown_task() -> None:
    with pytest.raises(TaskSpecError, match="unknown task name"):
        TaskPlan({"name": "frobnicate"}, {}).first()


def test_a_string_value_for_a_stored_integer_is_checked_and_sent() -> None:
    plan = TaskPlan(
        {"name": "setParameterValues", "parameterValues": [[INTERVAL, "300"]]},
        {INTERVAL: "xsd:unsignedInt"},
    )
    assert plan.first() == SetParameterValues(
        [ParameterValueStruct(INTERVAL, "300", "xsd:unsignedInt")]
    )


@pytest.mark.parametrize(
    ("spec", "rpc"),
    [
        (
            {
                "name": "setParameterValues",
                "parameterValues": [
                    [INTERVAL, 300, "xsd:unsignedInt"],
                    ["Device.X.Off", "False", "xsd:boolean"],
                ],
            },
            SetParameterValues(
                [
                    ParameterValueStruct(INTERVAL, "300", "xsd:unsignedInt"),
                    ParameterValueStruct("Device.X.Off", "0", "xsd:boolean"),
                ],
                parameter_key="",
            ),
        ),
        (
            {"name": "addObject", "objectName": "Device.NAT.PortMapping"},
            AddObject("Device.NAT.PortMapping.", parameter_key=""),
        ),
        (
            {"name": "deleteObject", "objectName": "Device.NAT.PortMapping.3"},
            DeleteObject("Device.NAT.PortMapping.3.", parameter_key=""),
        ),
        (
            {"name": "refreshObject", "parameterName": "Device.WiFi."},
            GetParameterNames("Device.WiFi.", next_level=False),
        ),
        (
            {"name": "refreshObject", "objectName": "Device.ManagementServer"},
            GetParameterNames("Device.ManagementServer.", next_level=False),
        ),
        (
            {"name": "getParameterNames", "parameterName": "Device.DeviceInfo.UpTime"},
            GetParameterNames("Device.DeviceInfo.UpTime", next_level=False),
        ),
    ],
)
def test_a_task_stored_as_given_is_sent_in_the_form_the_rpc_requires(
    spec: dict[str, object], rpc: object
) -> None:
    assert TaskPlan(spec, {}).first() == rpc


def test_a_download_without_a_url_is_not_sent() -> None:
    plan = TaskPlan({"name": "download", "fileType": "1 Firmware Upgrade Image"}, {})
    with pytest.raises(TaskSpecError, match="download has no url"):
        plan.first()


def test_a_transfers_command_key_names_its_task() -> None:
    key = transfer_command_key("6656f3a2c1d4e5f6a7b8c9d0")
    assert key == "knock-6656f3a2c1d4e5f6a7b8c9d0" and len(key) <= 32  # CommandKey string(32)
    assert transfer_task_id(key) == "6656f3a2c1d4e5f6a7b8c9d0"
    # A transfer asked for before the upgrade reports the store's number.
    assert transfer_task_id("knock-task-42") == 42
    for other in ("", "knock-task-", "knock-6656F3A2C1D4E5F6A7B8C9D0", "vendor-7", "knock-abc"):
        assert transfer_task_id(other) is None
