"""Per-device state files: what survives a restart, event retention, and corrupt files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cpe_support import MakeCpe

from knock.cpe.datamodel import load_model
from knock.cpe.rpc_handler import QueuedTransfer
from knock.cpe.state import DeviceState, StateError
from knock.cwmp import EventStruct, ParameterValueStruct, TransferComplete
from knock.vocab import Event

MS = "Device.ManagementServer."
SCHEMA = load_model("tr181")
FACTORY = {MS + "URL": "http://acs.example/", "Device.DeviceInfo.SerialNumber": "SN/1"}
TRANSFER = QueuedTransfer(
    "Download", "fw-1", "1 Firmware Upgrade Image", "http://f/fw", "", "", 7, "fw", 100.0
)


def open_state(tmp_path: Path, serial: str = "SN/1") -> DeviceState:
    return DeviceState.open(tmp_path, serial, SCHEMA, FACTORY)


def test_a_new_device_is_saved_with_its_factory_values(tmp_path: Path) -> None:
    state = open_state(tmp_path)
    assert state.path == tmp_path / "SN%2F1.json"
    saved = json.loads(state.path.read_text())
    assert saved["serial"] == "SN/1"
    assert saved["model_name"] == "tr181"
    assert saved["bootstrapped"] is False
    assert saved["model"]["values"][MS + "URL"] == "http://acs.example/"
    assert state.model.get("Device.DeviceInfo.SerialNumber") == "SN/1"


def test_a_reopened_state_keeps_everything(tmp_path: Path) -> None:
    state = open_state(tmp_path)
    interval = ParameterValueStruct(MS + "PeriodicInformInterval", "77")
    state.model.set_parameter_values([interval], "")
    state.model.add_object("Device.IP.Interface.", "")
    state.add_event(Event.BOOT)
    state.add_event(Event.M_REBOOT, "r1")
    state.queue_transfer(TRANSFER)
    result = TransferComplete("up-1", start_time="2025-01-01T00:00:00Z")
    state.completions.append(result)
    state.bootstrapped = True
    state.save()

    again = open_state(tmp_path)
    assert again.model.to_json() == state.model.to_json()
    assert again.model.get(MS + "PeriodicInformInterval") == "77"
    assert again.events == [EventStruct("1 BOOT"), EventStruct("M Reboot", "r1")]
    assert again.transfers == [TRANSFER]
    assert again.completions == [result]
    assert again.bootstrapped is True


def test_events_are_kept_until_an_inform_delivers_them(tmp_path: Path) -> None:
    state = open_state(tmp_path)
    for code in (Event.BOOTSTRAP, Event.BOOT, Event.CONNECTION_REQUEST, Event.BOOT):
        state.add_event(code)
    assert [e.event_code for e in state.events] == ["0 BOOTSTRAP", "1 BOOT", "6 CONNECTION REQUEST"]
    state.session_failed()
    assert [e.event_code for e in open_state(tmp_path).events] == ["0 BOOTSTRAP", "1 BOOT"]
    delivered = list(state.events)
    state.add_event(Event.PERIODIC)  # arrived after the Inform went out
    state.inform_accepted(delivered)
    again = open_state(tmp_path)
    assert again.events == [EventStruct("2 PERIODIC")]
    assert again.bootstrapped is True


def test_transfer_events_wait_for_the_transfer_complete(tmp_path: Path) -> None:
    state = open_state(tmp_path)
    state.queue_transfer(TRANSFER)
    state.add_event(Event.BOOT)
    result = TransferComplete("fw-1")
    state.transfer_done(TRANSFER, result)
    assert state.transfers == []
    assert state.events == [
        EventStruct("1 BOOT"),
        EventStruct("7 TRANSFER COMPLETE"),
        EventStruct("M Download", "fw-1"),
    ]
    state.inform_accepted(list(state.events))
    assert [e.event_code for e in state.events] == ["7 TRANSFER COMPLETE", "M Download"]
    state.transfer_acknowledged(result)
    again = open_state(tmp_path)
    assert (again.events, again.completions) == ([], [])


def test_transfer_events_without_a_pending_transfer_complete_go_with_the_inform(
    tmp_path: Path,
) -> None:
    state = open_state(tmp_path)
    state.completions.append(TransferComplete("other"))
    state.add_event(Event.TRANSFER_COMPLETE)
    state.add_event(Event.M_DOWNLOAD, "gone")
    state.add_event(Event.M_DOWNLOAD, "other")
    state.inform_accepted(list(state.events))
    assert state.events == [EventStruct("7 TRANSFER COMPLETE"), EventStruct("M Download", "other")]


def test_factory_reset_forgets_all_but_the_factory_values(tmp_path: Path) -> None:
    state = open_state(tmp_path)
    state.model.set_parameter_values([ParameterValueStruct(MS + "URL", "http://other/")], "k")
    state.add_event(Event.PERIODIC)
    state.queue_transfer(TRANSFER)
    state.bootstrapped = True
    state.factory_reset()
    again = open_state(tmp_path)
    assert again.model.get(MS + "URL") == "http://acs.example/"
    assert again.model.get(MS + "ParameterKey") == ""
    assert (again.events, again.transfers, again.bootstrapped) == ([], [], False)


def test_restart_keeps_connection_request_credentials(make_cpe: MakeCpe) -> None:
    first = make_cpe("SN42")
    username = first.model.get(MS + "ConnectionRequestUsername")
    password = first.model.get(MS + "ConnectionRequestPassword")
    assert username == "SN42"
    assert len(password) >= 16
    again = make_cpe("SN42")
    assert again.model.get(MS + "ConnectionRequestPassword") == password
    assert make_cpe("SN43").model.get(MS + "ConnectionRequestPassword") != password


def test_a_new_acs_url_means_bootstrap_again(make_cpe: MakeCpe) -> None:
    first = make_cpe("SN42")
    first.state.bootstrapped = True
    first.state.save()
    same = make_cpe("SN42")
    assert same.state.bootstrapped is True
    moved = make_cpe("SN42", acs_url="http://elsewhere.example/acs")
    assert moved.model.get(MS + "URL") == "http://elsewhere.example/acs"
    assert moved.state.bootstrapped is False


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        ("{not json", "JSONDecodeError"),
        ("[]", "TypeError"),
        ('{"format": 1}', "KeyError: 'serial'"),
        ('{"format": 99}', "format 99, expected 1"),
    ],
)
def test_a_corrupt_file_names_device_file_and_remedy(
    tmp_path: Path, content: str, detail: str
) -> None:
    path = tmp_path / "SN%2F1.json"
    path.write_text(content)
    with pytest.raises(StateError) as caught:
        open_state(tmp_path)
    message = str(caught.value)
    assert message.startswith(f"device SN/1: state file {path} is corrupt (")
    assert detail in message
    assert "delete it to start the device afresh" in message


def test_unknown_parameters_in_the_file_are_refused(tmp_path: Path) -> None:
    state = open_state(tmp_path)
    document = json.loads(state.path.read_text())
    document["model"]["values"]["Device.Bogus"] = "1"
    state.path.write_text(json.dumps(document))
    with pytest.raises(StateError, match=r"corrupt \(ValueError: parameter Device\.Bogus"):
        open_state(tmp_path)


def test_a_file_of_another_model_is_refused(tmp_path: Path) -> None:
    open_state(tmp_path)
    tr098 = load_model("tr098")
    with pytest.raises(StateError, match="was made with model 'tr181', not 'tr098'"):
        DeviceState.open(tmp_path, "SN/1", tr098, {})


def test_a_file_of_another_device_is_refused(tmp_path: Path) -> None:
    open_state(tmp_path).path.rename(tmp_path / "SN2.json")
    with pytest.raises(StateError, match="belongs to serial 'SN/1'"):
        open_state(tmp_path, "SN2")


def test_an_unwritable_state_folder_is_named(tmp_path: Path) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("a file where the folder should be")
    with pytest.raises(StateError) as caught:
        DeviceState.open(blocker / "devices", "SN1", SCHEMA, FACTORY)
    assert str(caught.value).startswith(
        f"device SN1: cannot write its state file {blocker}/devices/SN1.json: "
    )
    assert str(caught.value).endswith("check that the state folder is writable")
