"""A preset's configurations to RPCs: refresh what is unknown or too old, set only what does
not hold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from knock.acs.presets import (
    PresetOutcome,
    PresetPlan,
    events_match,
    precondition,
    tag_changes,
)
from knock.cwmp.rpcs import (
    AddObject,
    AddObjectResponse,
    DeleteObject,
    DeleteObjectResponse,
    Fault,
    GetParameterValues,
    GetParameterValuesResponse,
    ParameterValueStruct,
    SetParameterValues,
    SetParameterValuesResponse,
)
from knock.store.rows import ParamValue, StoredParam

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
INTERVAL = "Device.ManagementServer.PeriodicInformInterval"
ENABLE = "Device.ManagementServer.PeriodicInformEnable"
UPTIME = "Device.DeviceInfo.UpTime"


def stored(path: str, value: str, xsd_type: str, age_s: float = 0) -> StoredParam:
    return StoredParam(path, value, xsd_type, True, NOW - timedelta(seconds=age_s))


def test_nothing_is_sent_when_every_value_holds() -> None:
    configs = [
        {"type": "value", "name": INTERVAL, "value": 300},
        {"type": "value", "name": ENABLE, "value": True},
    ]
    known = {
        INTERVAL: stored(INTERVAL, "300", "xsd:unsignedInt"),
        ENABLE: stored(ENABLE, "true", "xsd:boolean"),  # "true" is 1: it holds
    }
    assert PresetPlan(configs, known, NOW).first() is None


def test_only_what_does_not_hold_is_set_in_the_stored_type_the_heavier_winning() -> None:
    configs = [
        {"type": "value", "name": INTERVAL, "value": 60},
        {"type": "value", "name": ENABLE, "value": True},
        {"type": "value", "name": INTERVAL, "value": "600"},  # a heavier preset, later
    ]
    known = {
        INTERVAL: stored(INTERVAL, "300", "xsd:unsignedInt"),
        ENABLE: stored(ENABLE, "1", "xsd:boolean"),
    }
    plan = PresetPlan(configs, known, NOW)
    sent = ParameterValueStruct(INTERVAL, "600", "xsd:unsignedInt")
    assert plan.first() == SetParameterValues([sent], parameter_key="")
    assert plan.on_response(SetParameterValuesResponse(0)) == PresetOutcome(
        [ParamValue(INTERVAL, "600", "xsd:unsignedInt")]
    )


def test_unknown_and_aged_parameters_are_read_first() -> None:
    configs = [
        {"type": "value", "name": INTERVAL, "value": 600},
        {"type": "age", "name": UPTIME, "age": 3600},
    ]
    plan = PresetPlan(configs, {UPTIME: stored(UPTIME, "5", "xsd:unsignedInt", 7200)}, NOW)
    assert plan.first() == GetParameterValues([UPTIME, INTERVAL])  # sorted
    read = [
        ParameterValueStruct(INTERVAL, "600", "xsd:unsignedInt"),
        ParameterValueStruct(UPTIME, "9000", "xsd:unsignedInt"),
    ]
    # It holds once read: nothing is set, what was read is stored.
    assert plan.on_response(GetParameterValuesResponse(read)) == PresetOutcome(
        [
            ParamValue(INTERVAL, "600", "xsd:unsignedInt"),
            ParamValue(UPTIME, "9000", "xsd:unsignedInt"),
        ]
    )
    fresh = {UPTIME: stored(UPTIME, "5", "xsd:unsignedInt", 60)}
    assert PresetPlan([configs[1]], fresh, NOW).first() is None


def test_a_refused_read_ends_the_plan_with_the_fault() -> None:
    plan = PresetPlan([{"type": "value", "name": "Device.Nope", "value": "x"}], {}, NOW)
    assert plan.first() == GetParameterValues(["Device.Nope"])
    outcome = plan.on_response(Fault("Client", 9005, "Invalid parameter name"))
    assert outcome == PresetOutcome([], "9005 Invalid parameter name")


def test_events_preconditions_and_tags() -> None:
    assert events_match({"events": {"0 BOOTSTRAP": True}}, ["0 BOOTSTRAP", "1 BOOT"])
    assert not events_match({"events": {"0 BOOTSTRAP": True}}, ["2 PERIODIC"])
    assert not events_match({"events": {"1 BOOT": False}}, ["1 BOOT"])
    assert events_match({}, ["2 PERIODIC"])
    assert precondition({"precondition": '{"_tags": "x"}'}) == {"_tags": "x"}
    assert precondition({"precondition": ""}) is None
    configs = [
        {"type": "add_tag", "tag": "a"},
        {"type": "add_tag", "tag": "b"},
        {"type": "delete_tag", "tag": "a"},
    ]
    assert tag_changes(configs) == ({"b"}, {"a"})


MAPS = "Device.NAT.PortMapping."
WEB = {
    "type": "add_object",
    "name": "Device.NAT.PortMapping",  # GenieACS's form: no trailing dot
    "object": {"ExternalPort": 8080, "Protocol": "TCP", "Enable": True, "_keys": ["ExternalPort"]},
}


def instance(n: int, port: str, protocol: str = "TCP") -> dict[str, StoredParam]:
    return {
        f"{MAPS}{n}.ExternalPort": stored(f"{MAPS}{n}.ExternalPort", port, "xsd:unsignedInt"),
        f"{MAPS}{n}.Protocol": stored(f"{MAPS}{n}.Protocol", protocol, "xsd:string"),
        f"{MAPS}{n}.Enable": stored(f"{MAPS}{n}.Enable", "false", "xsd:boolean"),
    }


def test_an_object_no_instance_matches_is_added_and_its_values_set() -> None:
    plan = PresetPlan([WEB], instance(1, "80"), NOW)
    assert plan.first() == AddObject(MAPS)
    sent = [
        ParameterValueStruct(f"{MAPS}3.ExternalPort", "8080", "xsd:int"),
        ParameterValueStruct(f"{MAPS}3.Protocol", "TCP", "xsd:string"),
        ParameterValueStruct(f"{MAPS}3.Enable", "1", "xsd:boolean"),
    ]
    assert plan.on_response(AddObjectResponse(3, 0)) == SetParameterValues(sent, "")
    outcome = plan.on_response(SetParameterValuesResponse(0))
    assert outcome == PresetOutcome([ParamValue(s.name, s.value, s.type) for s in sent])


def test_an_instance_matching_by_key_gets_the_other_values_and_no_add() -> None:
    plan = PresetPlan([WEB], {**instance(1, "80"), **instance(4, "8080")}, NOW)
    enable = ParameterValueStruct(f"{MAPS}4.Enable", "1", "xsd:boolean")
    assert plan.first() == SetParameterValues([enable], "")
    holds = {
        **instance(4, "8080"),
        f"{MAPS}4.Enable": stored(f"{MAPS}4.Enable", "1", "xsd:boolean"),
    }
    assert PresetPlan([WEB], holds, NOW).first() is None


def test_an_object_the_store_knows_nothing_of_is_read_first() -> None:
    plan = PresetPlan([WEB], {}, NOW)
    assert plan.first() == GetParameterValues([MAPS])
    read = [ParameterValueStruct(f"{MAPS}2.ExternalPort", "8080", "xsd:unsignedInt")]
    enable = ParameterValueStruct(f"{MAPS}2.Enable", "1", "xsd:boolean")
    protocol = ParameterValueStruct(f"{MAPS}2.Protocol", "TCP", "xsd:string")
    assert plan.on_response(GetParameterValuesResponse(read)) == SetParameterValues(
        [protocol, enable], ""
    )


def test_every_matching_instance_is_deleted_and_forgotten() -> None:
    gone = {"type": "delete_object", "name": MAPS, "object": {"Protocol": "UDP"}}
    known = {**instance(1, "53", "UDP"), **instance(2, "80"), **instance(3, "123", "UDP")}
    plan = PresetPlan([gone], known, NOW)
    assert plan.first() == DeleteObject(f"{MAPS}1.")
    assert plan.on_response(DeleteObjectResponse(0)) == DeleteObject(f"{MAPS}3.")
    assert plan.on_response(DeleteObjectResponse(0)) == PresetOutcome(
        [], None, [f"{MAPS}1.", f"{MAPS}3."]
    )
    refused = PresetPlan([gone], known, NOW)
    refused.first()
    assert refused.on_response(Fault("Client", 9003, "Invalid arguments")) == PresetOutcome(
        [], "9003 Invalid arguments"
    )


def test_an_instance_whose_values_are_refused_is_deleted_again() -> None:
    """Without its key values no later session would know the instance as the preset's, and
    each would add one more."""
    plan = PresetPlan([WEB], instance(1, "80"), NOW)
    assert plan.first() == AddObject(MAPS)
    assert isinstance(plan.on_response(AddObjectResponse(3, 0)), SetParameterValues)
    refused = Fault("Client", 9007, "Invalid parameter value")
    assert plan.on_response(refused) == DeleteObject(f"{MAPS}3.")
    assert plan.on_response(DeleteObjectResponse(0)) == PresetOutcome(
        [], "9007 Invalid parameter value", [f"{MAPS}3."]
    )
