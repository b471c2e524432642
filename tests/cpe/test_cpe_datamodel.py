"""The data model: loading, GetParameterNames/Values, SetParameterValues atomicity, instances,
attributes and value-change tracking, against the shipped TR-181 and TR-098 models."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from knock.cpe.datamodel import (
    DataModel,
    ModelError,
    ModelFault,
    load_model,
    parent_of,
    template_of,
)
from knock.cwmp import (
    DeviceIdStruct,
    ParameterAttributeStruct,
    ParameterInfoStruct,
    ParameterValueStruct,
    SetParameterAttributesStruct,
    SetParameterValuesFault,
)

MS = "Device.ManagementServer."


@pytest.fixture
def model() -> DataModel:
    return DataModel.fresh(load_model("tr181"), {"Device.DeviceInfo.SerialNumber": "SN1"})


def names(infos: list[ParameterInfoStruct]) -> list[str]:
    return [info.name for info in infos]


def fault_of(call: Any, *args: Any) -> ModelFault:
    with pytest.raises(ModelFault) as caught:
        call(*args)
    return caught.value


def test_paths() -> None:
    assert template_of("Device.IP.Interface.12.IPv4Address.3.IPAddress") == (
        "Device.IP.Interface.{i}.IPv4Address.{i}.IPAddress"
    )
    assert parent_of("Device.IP.Interface.1.") == "Device.IP.Interface."
    assert parent_of("Device.IP.Interface.") == "Device.IP."
    assert parent_of("Device.IP.IPv4Enable") == "Device.IP."
    assert parent_of("Device.") == ""


@pytest.mark.parametrize(
    ("name", "root", "forced"),
    [
        (
            "tr181",
            "Device.",
            [
                "Device.RootDataModelVersion",
                "Device.DeviceInfo.HardwareVersion",
                "Device.DeviceInfo.SoftwareVersion",
                "Device.DeviceInfo.ProvisioningCode",
                "Device.ManagementServer.ParameterKey",
                "Device.ManagementServer.ConnectionRequestURL",
                "Device.ManagementServer.AliasBasedAddressing",
                "Device.IP.Interface.1.IPv4Address.1.IPAddress",
            ],
        ),
        (
            "tr098",
            "InternetGatewayDevice.",
            [
                "InternetGatewayDevice.DeviceSummary",
                "InternetGatewayDevice.DeviceInfo.SpecVersion",
                "InternetGatewayDevice.DeviceInfo.HardwareVersion",
                "InternetGatewayDevice.DeviceInfo.SoftwareVersion",
                "InternetGatewayDevice.DeviceInfo.ProvisioningCode",
                "InternetGatewayDevice.ManagementServer.ParameterKey",
                "InternetGatewayDevice.ManagementServer.ConnectionRequestURL",
                "InternetGatewayDevice.ManagementServer.AliasBasedAddressing",
                "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANIPConnection.1."
                "ExternalIPAddress",
            ],
        ),
    ],
)
def test_shipped_models_inform_their_forced_parameters(
    name: str, root: str, forced: list[str]
) -> None:
    schema = load_model(name)
    model = DataModel.fresh(schema)
    assert schema.root == root
    assert [p.name for p in model.inform_parameters()] == forced
    assert model.device_id() == DeviceIdStruct("Knock Labs", "00D09E", "KnockBox", "")
    for leaf in [
        "URL",
        "Username",
        "Password",
        "PeriodicInformEnable",
        "PeriodicInformInterval",
        "PeriodicInformTime",
        "ConnectionRequestUsername",
        "ConnectionRequestPassword",
        "UpgradesManaged",
        "UDPConnectionRequestAddress",
        "STUNEnable",
        "STUNServerAddress",
        "STUNServerPort",
        "STUNUsername",
        "STUNPassword",
        "STUNMaximumKeepAlivePeriod",
        "STUNMinimumKeepAlivePeriod",
        "NATDetected",
    ]:
        assert model.has(schema.management(leaf)), leaf


def test_tr098_counts_its_instances() -> None:
    model = DataModel.fresh(load_model("tr098"))
    assert model.get("InternetGatewayDevice.LANDevice.1.Hosts.HostNumberOfEntries") == "2"
    assert model.get("InternetGatewayDevice.WANDeviceNumberOfEntries") == "1"
    assert model.get(
        "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANIPConnection.1."
        "ExternalIPAddress"
    ) == ("203.0.113.10")


def test_tr181_has_the_xmpp_connection_request_parameters(model: DataModel) -> None:
    assert model.get(MS + "SupportedConnReqMethods") == "HTTP,STUN,XMPP"
    for leaf in ("ConnReqAllowedJabberIDs", "ConnReqJabberID", "ConnReqXMPPConnection"):
        assert model.has(MS + leaf)
    number = model.add_object("Device.XMPP.Connection.", "")
    connection = f"Device.XMPP.Connection.{number}."
    assert model.get(connection + "Status") == "Disabled"
    assert model.get(connection + "ServerRetryIntervalMultiplier") == "2000"
    server = model.add_object(connection + "Server.", "")
    assert model.get(f"{connection}Server.{server}.Port") == "5222"
    assert model.get(connection + "ServerNumberOfEntries") == "1"


# --- GetParameterNames (TR-069 A.3.2.2) ---------------------------------------------------


def test_gpn_empty_path_next_level_gives_the_root(model: DataModel) -> None:
    assert model.get_parameter_names("", True) == [ParameterInfoStruct("Device.", False)]


def test_gpn_empty_path_whole_tree_starts_with_root(model: DataModel) -> None:
    everything = names(model.get_parameter_names("", False))
    assert everything[:3] == ["Device.", "Device.RootDataModelVersion", "Device.DeviceInfo."]
    assert "Device.IP.Interface.2.IPv4Address.1.IPAddress" in everything
    assert len(everything) == len(set(everything))


def test_gpn_next_level_lists_direct_children_only(model: DataModel) -> None:
    assert names(model.get_parameter_names("Device.", True)) == [
        "Device.RootDataModelVersion",
        "Device.DeviceInfo.",
        "Device.ManagementServer.",
        "Device.XMPP.",
        "Device.Hosts.",
        "Device.IP.",
    ]


def test_gpn_partial_path_includes_the_object_and_everything_below(model: DataModel) -> None:
    below = names(model.get_parameter_names("Device.Hosts.", False))
    assert below[:4] == [
        "Device.Hosts.",
        "Device.Hosts.HostNumberOfEntries",
        "Device.Hosts.Host.",
        "Device.Hosts.Host.1.",
    ]
    assert below.index("Device.Hosts.Host.1.ActiveLastChange") < below.index("Device.Hosts.Host.2.")
    assert below[-1] == "Device.Hosts.Host.2.ActiveLastChange"


def test_gpn_writable_means_addobject_for_tables_deleteobject_for_instances(
    model: DataModel,
) -> None:
    assert model.get_parameter_names("Device.IP.", True)[-1] == ParameterInfoStruct(
        "Device.IP.Interface.", True
    )
    assert model.get_parameter_names("Device.IP.Interface.", True) == [
        ParameterInfoStruct("Device.IP.Interface.1.", True),
        ParameterInfoStruct("Device.IP.Interface.2.", True),
    ]
    assert model.get_parameter_names("Device.Hosts.Host.", True) == [
        ParameterInfoStruct("Device.Hosts.Host.1.", False),
        ParameterInfoStruct("Device.Hosts.Host.2.", False),
    ]
    stats = model.get_parameter_names("Device.IP.Interface.1.Stats.", False)[0]
    assert stats == ParameterInfoStruct("Device.IP.Interface.1.Stats.", False)


def test_gpn_full_parameter_name(model: DataModel) -> None:
    assert model.get_parameter_names(MS + "URL", False) == [ParameterInfoStruct(MS + "URL", True)]
    fault = fault_of(model.get_parameter_names, MS + "URL", True)
    assert fault.code == 9003


@pytest.mark.parametrize(
    "path", ["Device.Nope.", "Device.Nope", "Device.DeviceInfo", "Device.IP.Interface.9.", "X."]
)
def test_gpn_unknown_path_is_9005(model: DataModel, path: str) -> None:
    assert fault_of(model.get_parameter_names, path, False).code == 9005


# --- GetParameterValues --------------------------------------------------------------------


def test_gpv_partial_path_returns_every_parameter_below_with_types(model: DataModel) -> None:
    values = model.get_parameter_values(["Device.IP.Interface.1.IPv4Address.", MS + "STUNEnable"])
    assert values == [
        ParameterValueStruct("Device.IP.Interface.1.IPv4Address.1.Enable", "true", "xsd:boolean"),
        ParameterValueStruct("Device.IP.Interface.1.IPv4Address.1.Status", "Enabled"),
        ParameterValueStruct("Device.IP.Interface.1.IPv4Address.1.IPAddress", "203.0.113.10"),
        ParameterValueStruct("Device.IP.Interface.1.IPv4Address.1.SubnetMask", "255.255.255.0"),
        ParameterValueStruct("Device.IP.Interface.1.IPv4Address.1.AddressingType", "DHCP"),
        ParameterValueStruct(MS + "STUNEnable", "false", "xsd:boolean"),
    ]


def test_gpv_hides_passwords(model: DataModel) -> None:
    model.set_value(MS + "ConnectionRequestPassword", "s3cret")
    assert model.get_parameter_values([MS + "ConnectionRequestPassword"]) == [
        ParameterValueStruct(MS + "ConnectionRequestPassword", "")
    ]
    assert model.get(MS + "ConnectionRequestPassword") == "s3cret"


def test_gpv_empty_name_is_the_whole_tree(model: DataModel) -> None:
    every = model.get_parameter_values([""])
    assert every[0].name == "Device.RootDataModelVersion"
    assert len(every) == len(
        [i for i in model.get_parameter_names("", False) if not i.name.endswith(".")]
    )


@pytest.mark.parametrize("name", ["Device.Nope", "Device.Nope.", MS + "URL."])
def test_gpv_unknown_name_is_9005(model: DataModel, name: str) -> None:
    assert fault_of(model.get_parameter_values, [MS + "URL", name]).code == 9005


# --- SetParameterValues ---------------------------------------------------------------------


def test_spv_applies_and_sets_the_parameter_key(model: DataModel) -> None:
    model.set_parameter_values(
        [
            ParameterValueStruct(MS + "PeriodicInformInterval", "600", "xsd:unsignedInt"),
            ParameterValueStruct(MS + "PeriodicInformEnable", "0", "xsd:boolean"),
            ParameterValueStruct("Device.DeviceInfo.ProvisioningCode", "ABC"),
        ],
        "key-1",
    )
    assert model.get(MS + "PeriodicInformInterval") == "600"
    assert model.get(MS + "PeriodicInformEnable") == "0"
    assert model.get("Device.DeviceInfo.ProvisioningCode") == "ABC"
    assert model.get(MS + "ParameterKey") == "key-1"


def test_spv_accepts_a_fitting_value_sent_as_string(model: DataModel) -> None:
    model.set_parameter_values([ParameterValueStruct(MS + "STUNServerPort", "3479")], "")
    assert model.get(MS + "STUNServerPort") == "3479"


def test_spv_is_all_or_nothing_with_a_fault_per_bad_parameter(model: DataModel) -> None:
    before = model.to_json()
    fault = fault_of(
        model.set_parameter_values,
        [
            ParameterValueStruct(MS + "PeriodicInformInterval", "900", "xsd:unsignedInt"),
            ParameterValueStruct("Device.Nope", "1"),
            ParameterValueStruct(MS + "ParameterKey", "x"),
            ParameterValueStruct(MS + "PeriodicInformInterval", "0", "xsd:unsignedInt"),
            ParameterValueStruct(MS + "STUNServerPort", "many"),
            ParameterValueStruct("Device.IP.Interface.1.Loopback", "maybe", "xsd:boolean"),
            ParameterValueStruct("Device.XMPP.SupportedServerConnectAlgorithms", "DNS"),
        ],
        "key-2",
    )
    assert fault.code == 9003
    assert [(f.parameter_name, f.fault_code) for f in fault.parameter_faults] == [
        ("Device.Nope", 9005),
        (MS + "ParameterKey", 9008),
        (MS + "PeriodicInformInterval", 9003),  # named twice
        (MS + "STUNServerPort", 9006),
        ("Device.IP.Interface.1.Loopback", 9007),
        ("Device.XMPP.SupportedServerConnectAlgorithms", 9008),
    ]
    assert model.to_json() == before


@pytest.mark.parametrize(
    ("name", "value", "type_"),
    [
        (MS + "PeriodicInformInterval", "0", "xsd:unsignedInt"),  # below the range
        (MS + "CWMPRetryIntervalMultiplier", "999", "xsd:unsignedInt"),
        (MS + "PeriodicInformTime", "yesterday", "xsd:dateTime"),
        ("Device.DeviceInfo.ProvisioningCode", "x" * 65, "xsd:string"),  # maxLength
        ("Device.XMPP.Connection.1.ServerConnectAlgorithm", "Carrier pigeon", "xsd:string"),
        (MS + "ConnReqAllowedJabberIDs", ",".join(f"a{i}@x" for i in range(33)), "xsd:string"),
    ],
)
def test_spv_invalid_value_is_9007(model: DataModel, name: str, value: str, type_: str) -> None:
    model.add_object("Device.XMPP.Connection.", "")
    fault = fault_of(model.set_parameter_values, [ParameterValueStruct(name, value, type_)], "")
    assert fault.parameter_faults == (
        SetParameterValuesFault(name, 9007, fault.parameter_faults[0].fault_string),
    )
    assert fault.parameter_faults[0].fault_string.startswith("Invalid parameter value: ")


def test_spv_too_long_parameter_key_changes_nothing(model: DataModel) -> None:
    fault = fault_of(
        model.set_parameter_values, [ParameterValueStruct(MS + "URL", "http://x/")], "k" * 33
    )
    assert fault.code == 9003
    assert model.get(MS + "URL") == ""


# --- AddObject / DeleteObject ---------------------------------------------------------------


def test_add_object_creates_a_full_instance(model: DataModel) -> None:
    assert model.add_object("Device.IP.Interface.", "add-1") == 3
    assert model.get("Device.IP.InterfaceNumberOfEntries") == "3"
    assert model.get("Device.IP.Interface.3.Status") == "Down"
    assert model.get("Device.IP.Interface.3.MaxMTUSize") == "1500"
    assert model.get("Device.IP.Interface.3.Stats.BytesSent") == "0"
    assert model.get_parameter_names("Device.IP.Interface.3.IPv4Address.", True) == []
    assert model.get(MS + "ParameterKey") == "add-1"
    assert model.add_object("Device.IP.Interface.3.IPv4Address.", "") == 1


def test_instance_numbers_are_never_reused(model: DataModel) -> None:
    model.delete_object("Device.IP.Interface.2.", "del-1")
    assert model.get(MS + "ParameterKey") == "del-1"
    assert model.get("Device.IP.InterfaceNumberOfEntries") == "1"
    assert not model.has("Device.IP.Interface.2.IPv4Address.1.IPAddress")
    assert not model.has("Device.IP.Interface.2.")
    assert model.add_object("Device.IP.Interface.", "") == 3
    model.delete_object("Device.IP.Interface.3.", "")
    assert model.add_object("Device.IP.Interface.", "") == 4
    assert names(model.get_parameter_names("Device.IP.Interface.", True)) == [
        "Device.IP.Interface.1.",
        "Device.IP.Interface.4.",
    ]


@pytest.mark.parametrize(
    ("call", "path", "code"),
    [
        ("add_object", "Device.Hosts.Host.", 9001),  # a read-only table
        ("add_object", "Device.Hosts.", 9005),  # not a table
        ("add_object", "Device.IP.Interface.1.", 9005),  # an instance, not a table
        ("add_object", "Device.IP.Interface.7.IPv4Address.", 9005),  # parent missing
        ("add_object", "Device.IP.Interface", 9005),
        ("delete_object", "Device.Hosts.Host.1.", 9001),
        ("delete_object", "Device.IP.Interface.7.", 9005),
        ("delete_object", "Device.IP.Interface.", 9005),
        ("delete_object", "Device.IP.", 9005),
    ],
)
def test_object_faults_change_nothing(model: DataModel, call: str, path: str, code: int) -> None:
    before = model.to_json()
    assert fault_of(getattr(model, call), path, "key").code == code
    assert model.to_json() == before


# --- attributes and notifications -----------------------------------------------------------


def spa(name: str, notification: int, access_list: list[str] | None = None) -> Any:
    return SetParameterAttributesStruct(
        name, True, notification, access_list is not None, access_list or []
    )


def test_attributes_on_a_partial_path(model: DataModel) -> None:
    model.set_parameter_attributes([spa("Device.Hosts.Host.1.", 1, ["Subscriber"])])
    attributes = model.get_parameter_attributes(["Device.Hosts.Host.1.HostName", MS + "URL"])
    assert attributes == [
        ParameterAttributeStruct("Device.Hosts.Host.1.HostName", 1, ["Subscriber"]),
        ParameterAttributeStruct(MS + "URL", 0, []),
    ]


def test_default_and_forced_active_notification(model: DataModel) -> None:
    model.set_parameter_attributes(
        [spa("Device.DeviceInfo.SoftwareVersion", 0), spa(MS + "ConnectionRequestURL", 0)]
    )
    assert [a.notification for a in model.get_parameter_attributes(["Device.DeviceInfo."])][
        -3:
    ] == [2, 2, 0]  # SoftwareVersion and ProvisioningCode forced, UpTime off
    url = model.get_parameter_attributes([MS + "ConnectionRequestURL"])
    assert url[0].notification == 0  # forceDefaultEnabled: the ACS may turn it off


@pytest.mark.parametrize(
    ("struct", "code"),
    [
        (spa(MS + "URL", 3), 9003),
        (spa(MS + "URL", 1, ["Everyone"]), 9003),
        (spa("Device.Nope", 1), 9005),
    ],
)
def test_attribute_faults_change_nothing(model: DataModel, struct: Any, code: int) -> None:
    fault = fault_of(model.set_parameter_attributes, [spa(MS + "STUNEnable", 1), struct])
    assert fault.code == code
    assert model.get_parameter_attributes([MS + "STUNEnable"])[0].notification == 0


def test_active_notification_of_a_transient_value_is_taken_or_denied(model: DataModel) -> None:
    uptime = "Device.DeviceInfo.UpTime"
    both = [spa(MS + "STUNEnable", 1), spa("Device.DeviceInfo.", 2)]
    fault = fault_of(partial(model.set_parameter_attributes, deny_active=True), both)
    assert fault.code == 9009 and uptime in str(fault)
    assert model.get_parameter_attributes([MS + "STUNEnable", uptime])[0].notification == 0
    model.set_parameter_attributes(both)  # canDeny: a CPE may take it too
    assert [a.notification for a in model.get_parameter_attributes([uptime])] == [2]


def test_device_changes_are_tracked_by_notification(model: DataModel) -> None:
    model.set_parameter_attributes([spa(MS + "NATDetected", 1), spa(MS + "STUNEnable", 2)])
    assert model.set_value(MS + "STUNServerAddress", "198.51.100.7") == 0
    assert model.set_value(MS + "NATDetected", "true") == 1
    assert model.changes() == {MS + "NATDetected": "true"}
    assert model.set_value(MS + "STUNEnable", "true") == 2
    assert model.set_value(MS + "STUNEnable", "true") == 0  # no change, no notification
    assert [p.name for p in model.inform_parameters()][-2:] == [
        MS + "NATDetected",
        MS + "STUNEnable",
    ]


def test_acs_set_values_are_not_notified(model: DataModel) -> None:
    model.set_parameter_attributes([spa(MS + "STUNEnable", 2)])
    model.set_value(MS + "STUNEnable", "true")
    model.set_parameter_values([ParameterValueStruct(MS + "STUNEnable", "false")], "")
    assert model.changes() == {}


def test_clear_changes_keeps_a_value_that_moved_on(model: DataModel) -> None:
    model.set_parameter_attributes([spa(MS + "NATDetected", 1), spa(MS + "STUNEnable", 1)])
    model.set_value(MS + "NATDetected", "true")
    model.set_value(MS + "STUNEnable", "true")
    delivered = model.changes()
    model.set_value(MS + "NATDetected", "false")
    model.clear_changes(delivered)
    assert model.changes() == {MS + "NATDetected": "false"}


def test_device_changes_are_checked(model: DataModel) -> None:
    assert fault_of(model.set_value, "Device.Nope", "1").code == 9005
    with pytest.raises(ValueError, match="not a valid xsd:boolean"):
        model.set_value(MS + "NATDetected", "perhaps")


# --- persistence and model files ---------------------------------------------------------------


def test_json_round_trip_keeps_everything(model: DataModel) -> None:
    model.add_object("Device.IP.Interface.", "")
    model.delete_object("Device.IP.Interface.3.", "k")
    model.set_parameter_attributes([spa(MS + "NATDetected", 1, ["Subscriber"])])
    model.set_value(MS + "NATDetected", "true")
    copy = DataModel.from_json(model.schema, json.loads(json.dumps(model.to_json())))
    assert copy.to_json() == model.to_json()
    assert copy.get_parameter_names("", False) == model.get_parameter_names("", False)
    assert copy.add_object("Device.IP.Interface.", "") == 4
    assert copy.changes() == {MS + "NATDetected": "true"}


def test_from_json_refuses_names_outside_the_model(model: DataModel) -> None:
    data = model.to_json()
    data["values"]["Device.Bogus"] = "1"
    with pytest.raises(ValueError, match=r"parameter Device\.Bogus is not in model tr181"):
        DataModel.from_json(model.schema, data)


MINIMAL: dict[str, Any] = {
    "name": "mini",
    "root": "Device.",
    "objects": {
        "Device.": {"parameters": {"A": {"type": "unsignedInt", "access": "readWrite"}}},
        "Device.T.{i}.": {"access": "readWrite", "parameters": {"B": {}}},
    },
}


def write_model(tmp_path: Path, **changes: Any) -> Path:
    path = tmp_path / "model.json"
    path.write_text(json.dumps({**MINIMAL, **changes}))
    return path


def test_a_model_file_loads_and_is_shared(tmp_path: Path) -> None:
    path = write_model(tmp_path)
    schema = load_model(path)
    assert schema is load_model(path)
    model = DataModel.fresh(schema)
    assert names(model.get_parameter_names("", False)) == ["Device.", "Device.A", "Device.T."]
    assert model.add_object("Device.T.", "") == 1
    assert model.get("Device.T.1.B") == ""


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"objects": {"Device.": {"colour": "red"}}}, "Device.: unknown keys colour"),
        (
            {"objects": {"Device.": {}, "Device.X.Y.": {}}},
            "Device.X.Y.: parent object Device.X. is not defined",
        ),
        (
            {"objects": {"Device.": {"parameters": {"A": {"type": "int", "value": "x"}}}}},
            "Device.A: default value 'x'",
        ),
        (
            {"objects": {"Device.": {"parameters": {"A": {"type": "float"}}}}},
            "Device.A: unknown type 'float'",
        ),
        ({"informParameters": ["Device.Z"]}, "inform parameter Device.Z is not defined"),
        ({"instances": {"Device.T.1.": {"C": "1"}}}, "instances: Device.T.1.C does not exist"),
        ({"root": "Root."}, "root object 'Root.' is not defined"),
    ],
)
def test_bad_model_files_are_named(tmp_path: Path, changes: dict[str, Any], message: str) -> None:
    path = write_model(tmp_path, **changes)
    with pytest.raises(ModelError) as caught:
        load_model(path)
    assert str(caught.value).startswith(f"model {path}: ")
    assert message in str(caught.value)


def test_missing_model_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="cannot read model file"):
        load_model(tmp_path / "absent.json")
