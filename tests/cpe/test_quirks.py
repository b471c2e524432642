"""Each quirk switch of the simulator makes the device read the spec one way deployed stacks do:
asserted on the bytes the cores send, and on how `knock sim` takes and lists the switches."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from knock.cli import app
from knock.cpe.datamodel import DataModel, load_model
from knock.cpe.fleet_config import FleetConfig
from knock.cpe.quirks import Quirk, parse_quirks
from knock.cpe.rpc_handler import Dropped, Handled, handle
from knock.cpe.stun_agent import Send, StunAgent, StunConfig
from knock.cpe.switches import SwitchError
from knock.cwmp.faults import cpe_fault
from knock.cwmp.rpcs import (
    GetParameterNames,
    GetParameterNamesResponse,
    GetParameterValues,
    GetParameterValuesResponse,
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
    assert "'nope' is not a quirk; name one of stun-username-space-pad" in " ".join(
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
