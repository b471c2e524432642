"""Each quirk switch of the simulator makes the device read the spec one way deployed stacks do:
asserted on the bytes the cores send, and on how `knock sim` takes and lists the switches."""

from __future__ import annotations

import json

import pytest
from cpe_support import FakeAcs, FakeClock, MakeCpe, RunCpe
from typer.testing import CliRunner

from knock.cli import app
from knock.cpe.datamodel import DataModel, load_model
from knock.cpe.fleet_config import FleetConfig
from knock.cpe.quirks import Quirk, Quirks, parse_quirks, shaped
from knock.cpe.rpc_handler import Dropped, Handled, handle
from knock.cpe.stun_agent import Send, StunAgent, StunConfig
from knock.cpe.switches import SwitchError
from knock.cwmp.faults import cpe_fault
from knock.cwmp.rpcs import (
    AddObject,
    AddObjectResponse,
    DeleteObject,
    DeleteObjectResponse,
    FactoryReset,
    Fault,
    GetParameterNames,
    GetParameterNamesResponse,
    GetParameterValues,
    GetParameterValuesResponse,
    GetRPCMethods,
    GetRPCMethodsResponse,
    Rpc,
    Upload,
)

NOW = 1_700_000_000.0
MS = "Device.ManagementServer."
SERVER = ("192.0.2.1", 3478)
# 9 characters: 3 bytes of padding make the attribute 12 bytes long.
CONFIG = StunConfig(SERVER, "stun-user", "stun-pw", min_period=20, max_period=60)


def test_quirk_names_parse_and_unknown_ones_are_listed() -> None:
    assert parse_quirks(["STUN-username-space-pad", " stun-username-space-pad"]) == {
        Quirk.STUN_USERNAME_SPACE_PAD
    }
    with pytest.raises(SwitchError, match=r"'space-pad' is not a quirk; name one of stun-user"):
        parse_quirks(["space-pad"])


@pytest.mark.parametrize(
    ("quirks", "value"),
    [
        (frozenset(), b"stun-user\0\0\0"),
        (frozenset({Quirk.STUN_USERNAME_SPACE_PAD}), b"stun-user   "),
    ],
)
def test_stun_username_padding_byte_follows_the_quirk(
    quirks: frozenset[Quirk], value: bytes
) -> None:
    [send] = StunAgent(uniform=lambda low, high: low, quirks=quirks).configure(CONFIG, NOW)
    assert isinstance(send, Send)
    # 20-byte header, then USERNAME (type 0x0006) first: type, length, value.
    assert send.datagram[20:24] == b"\x00\x06\x00\x0c"
    assert send.datagram[24:36] == value


def test_fleet_config_carries_quirks_to_its_workers_and_the_cli_lists_them() -> None:
    config = FleetConfig("http://127.0.0.1:7547/", 1, quirks=(Quirk.STUN_USERNAME_SPACE_PAD,))
    assert FleetConfig.from_json(json.loads(json.dumps(config.to_json()))) == config
    result = CliRunner().invoke(app, ["sim", "--acs", "http://127.0.0.1:1/", "--quirk", "nope"])
    assert result.exit_code == 2
    known = ", ".join(q.value for q in Quirk)
    assert f"'nope' is not a quirk; name one of {known}" in " ".join(
        result.output.replace("│", " ").split()
    )
    listed = CliRunner().invoke(app, ["sim", "--list-quirks"], env={"COLUMNS": "200"})
    assert listed.exit_code == 0
    rows = [line.split(None, 1) for line in listed.output.splitlines()[1:]]
    assert [(name, text.strip()) for name, text in rows] == [(q.value, q.reading) for q in Quirk]


@pytest.mark.parametrize(
    ("quirks", "answer"),
    [
        (frozenset(), "values"),
        (
            frozenset({Quirk.PARTIAL_PATH_FAULT}),
            Handled(cpe_fault(9005, "partial paths are not supported")),
        ),
        (frozenset({Quirk.PARTIAL_PATH_DROP}), Dropped("GetParameterValues of a partial path")),
    ],
)
def test_partial_path_reads_follow_the_quirk_and_leaf_names_always_work(
    quirks: frozenset[Quirk], answer: object
) -> None:
    model = DataModel.fresh(load_model("tr181"))
    partial = handle(GetParameterValues([f"{MS}", f"{MS}URL"]), model, NOW, (), quirks)
    if answer == "values":
        assert isinstance(partial, Handled)
        assert isinstance(partial.response, GetParameterValuesResponse)
        assert len(partial.response.parameter_list) > 10
    else:
        assert partial == answer
    leaf = handle(GetParameterValues([f"{MS}URL"]), model, NOW, (), quirks)
    assert isinstance(leaf, Handled) and isinstance(leaf.response, GetParameterValuesResponse)
    names = handle(GetParameterNames(MS, True), model, NOW, (), quirks)
    assert isinstance(names, Handled) and isinstance(names.response, GetParameterNamesResponse)


CONN = "Device.XMPP.Connection."


def tr181(*quirks: Quirk) -> DataModel:
    return DataModel.fresh(shaped(load_model("tr181"), frozenset(quirks)))


def fault_code(answer: Rpc) -> int:
    assert isinstance(answer, Fault), answer
    return answer.fault_code


def test_without_quirks_xmpp_rows_are_added_by_the_acs_alone() -> None:
    model = tr181()
    assert model.get("Device.XMPP.ConnectionNumberOfEntries") == "0"
    assert handle(AddObject(CONN), model, NOW).response == AddObjectResponse(1, 0)
    assert model.get(f"{CONN}1.ServerNumberOfEntries") == "0"
    assert handle(AddObject(f"{CONN}1.Server."), model, NOW).response == AddObjectResponse(1, 0)


def test_fixed_xmpp_rows_ship_with_the_device_and_refuse_add_and_delete() -> None:
    model = tr181(Quirk.XMPP_FIXED_ROWS)
    assert model.get("Device.XMPP.ConnectionNumberOfEntries") == "1"
    assert model.get(f"{CONN}1.ServerNumberOfEntries") == "1"
    assert model.get(f"{CONN}1.Server.1.Port") == "5222"
    assert fault_code(handle(AddObject(CONN), model, NOW).response) == 9001
    assert fault_code(handle(AddObject(f"{CONN}1.Server."), model, NOW).response) == 9001
    assert fault_code(handle(DeleteObject(f"{CONN}1."), model, NOW).response) == 9001


def test_a_connection_added_brings_its_server_row_and_the_server_table_is_read_only() -> None:
    model = tr181(Quirk.XMPP_SERVER_AUTO)
    assert model.get("Device.XMPP.ConnectionNumberOfEntries") == "0"
    assert handle(AddObject(CONN), model, NOW).response == AddObjectResponse(1, 0)
    assert model.get(f"{CONN}1.ServerNumberOfEntries") == "1"
    assert model.has(f"{CONN}1.Server.1.ServerAddress")
    assert fault_code(handle(AddObject(f"{CONN}1.Server."), model, NOW).response) == 9005
    assert model.get(f"{CONN}1.ServerNumberOfEntries") == "1"
    assert handle(DeleteObject(f"{CONN}1."), model, NOW).response == DeleteObjectResponse(0)
    assert model.get("Device.XMPP.ConnectionNumberOfEntries") == "0"


STUN_ENABLE = "InternetGatewayDevice.ManagementServer.STUNEnable"


def test_the_http_only_tr098_variant_lacks_stun_and_supported_methods() -> None:
    full, http_only = load_model("tr098"), load_model("tr098-http")
    for leaf in ("STUNEnable", "UDPConnectionRequestAddress", "SupportedConnReqMethods"):
        assert full.management(leaf) in full.params
        assert http_only.management(leaf) not in http_only.params
    assert http_only.management("ConnectionRequestURL") in http_only.params
    assert http_only.name == "tr098-http"


@pytest.mark.parametrize("quirks", [frozenset(), frozenset({Quirk.DROP_ON_UNKNOWN_PARAMETER})])
async def test_a_read_of_a_parameter_the_device_lacks_faults_or_drops_the_session(
    make_cpe: MakeCpe, run_cpe: RunCpe, acs: FakeAcs, clock: FakeClock, quirks: Quirks
) -> None:
    acs.scripts.append([GetParameterValues([STUN_ENABLE])])
    cpe = make_cpe("HTTP1", "tr098-http", quirks=quirks)
    run_cpe(cpe)
    if not quirks:
        answered = await acs.next_session()
        [fault] = answered.responses
        assert isinstance(fault, Fault) and fault.fault_code == 9005
        return
    assert (await acs.next_inform()).retry_count == 0
    # No answer, no Fault: the session failed, and the device informs again after its wait.
    clock.advance_to(await clock.next_timer())
    again = await acs.next_session()
    assert again.inform.retry_count == 1 and again.responses == []
    assert cpe.counts.failed == 1


def test_a_device_without_upload_or_factory_reset_neither_lists_nor_takes_them() -> None:
    model = DataModel.fresh(load_model("tr181"))
    quirks = frozenset({Quirk.NO_UPLOAD_NO_RESET})
    listed = handle(GetRPCMethods(), model, NOW, (), quirks)
    assert isinstance(listed, Handled) and isinstance(listed.response, GetRPCMethodsResponse)
    assert "Download" in listed.response.method_list
    assert not {"Upload", "FactoryReset"} & set(listed.response.method_list)
    for rpc in (Upload("k", "1 Vendor Configuration File", "http://f/up"), FactoryReset()):
        refused = handle(rpc, model, NOW, (), quirks)
        assert isinstance(refused, Handled) and isinstance(refused.response, Fault)
        assert refused.response.fault_code == 9000
    plain = handle(GetRPCMethods(), model, NOW)
    assert isinstance(plain, Handled) and isinstance(plain.response, GetRPCMethodsResponse)
    assert {"Upload", "FactoryReset"} <= set(plain.response.method_list)
