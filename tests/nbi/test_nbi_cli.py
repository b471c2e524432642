"""`knock devices|get|set|tasks` against a running NBI."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
import typer
from nbi_support import ThreadedNbi, inform
from typer.testing import CliRunner, Result

from knock.nbi.cli import fault_sentence, parse_assignment, register
from knock.store.rows import ParamValue

DEVICE = "001122-Router-SN1"
SW = "InternetGatewayDevice.DeviceInfo.SoftwareVersion"
SSID = "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.SSID"
PII = "InternetGatewayDevice.ManagementServer.PeriodicInformInterval"


@pytest.fixture
def knock() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


@pytest.fixture
def served(threaded_nbi: ThreadedNbi) -> ThreadedNbi:
    params = [
        ParamValue(SW, "1.2", "xsd:string", False),
        ParamValue(PII, "3600", "xsd:unsignedInt", True),
    ]
    record = inform(DEVICE, params, now=datetime(2024, 5, 1, 12, tzinfo=UTC))
    threaded_nbi.call(threaded_nbi.store.record_inform(record))
    return threaded_nbi


def _run(
    knock: typer.Typer, served: ThreadedNbi | None, *args: str, token: str = "s3cret"
) -> Result:
    env = {"COLUMNS": "250", "KNOCK_NBI_TOKEN": token}
    if served is not None:
        env["KNOCK_NBI_URL"] = served.url
    return CliRunner().invoke(knock, list(args), env=env)


def test_devices(knock: typer.Typer, served: ThreadedNbi) -> None:
    result = _run(knock, served, "devices")
    assert result.exit_code == 0, result.output
    row = next(line for line in result.stdout.splitlines() if DEVICE in line)
    for cell in ("Acme", "Router", "SN1", "2024-05-01T12:00:00.000Z"):
        assert cell in row
    assert "Last inform" in result.stdout


def test_devices_query(knock: typer.Typer, served: ThreadedNbi) -> None:
    result = _run(knock, served, "devices", "--query", json.dumps({SW: "9.9"}))
    assert result.exit_code == 0, result.output
    assert DEVICE not in result.stdout

    result = _run(knock, served, "devices", "--query", "{oops")
    assert result.exit_code == 2
    assert "not JSON" in result.output

    result = _run(knock, served, "devices", "--query", '{"_lastInform": {"$gt": "soon"}}')
    assert result.exit_code == 1
    assert "the NBI answered 400 Bad Request: _lastInform compares with a date" in result.stderr


def test_get(knock: typer.Typer, served: ThreadedNbi) -> None:
    result = _run(knock, served, "get", DEVICE, SW, "InternetGatewayDevice.ManagementServer.")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert any(SW in line and "1.2" in line and "xsd:string" in line for line in lines)
    assert any(PII in line and "3600" in line and "xsd:unsignedInt" in line for line in lines)
    (task,) = served.call(served.store.find_tasks(None))
    assert task.name == "getParameterValues" and task.status == "done"


def test_get_from_an_unreachable_device(knock: typer.Typer, served: ThreadedNbi) -> None:
    served.unreachable = True
    result = _run(knock, served, "get", DEVICE, SW)
    assert result.exit_code == 1
    assert "the connection request failed (unreachable: no route to host)" in result.stderr
    assert re.search("task [0-9a-f]{24} stays queued", result.stderr)


def test_set(knock: typer.Typer, served: ThreadedNbi) -> None:
    result = _run(knock, served, "set", DEVICE, f"{SSID}=home=net:5", f"{PII}=300:xsd:unsignedInt")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert any(SSID in line and "home=net:5" in line for line in lines)
    assert any(PII in line and "300" in line and "xsd:unsignedInt" in line for line in lines)
    (task,) = served.call(served.store.find_tasks(None))
    assert task.spec["parameterValues"] == [[SSID, "home=net:5"], [PII, "300", "xsd:unsignedInt"]]


def test_set_refused(knock: typer.Typer, served: ThreadedNbi) -> None:
    result = _run(knock, served, "set", DEVICE, "no-assignment")
    assert result.exit_code == 2
    assert "PATH=VALUE or PATH=VALUE:xsd:TYPE" in result.output

    result = _run(knock, served, "set", DEVICE, f"{PII}=-1:xsd:unsignedInt")
    assert result.exit_code == 1
    assert '"-1" is not a valid xsd:unsignedInt value' in result.stderr


def test_tasks(knock: typer.Typer, served: ThreadedNbi) -> None:
    assert _run(knock, served, "set", DEVICE, f"{SSID}=home").exit_code == 0
    # Done, so no longer pending: GenieACS's /tasks/ leaves it out, and so does `knock tasks`.
    result = _run(knock, served, "tasks", "--device", DEVICE)
    assert result.exit_code == 0, result.output
    assert "setParameterValues" not in result.stdout
    result = _run(knock, served, "tasks", "--history", "--device", DEVICE)
    assert result.exit_code == 0, result.output
    assert any(
        "setParameterValues" in line and "done" in line and DEVICE in line
        for line in result.stdout.splitlines()
    )
    result = _run(knock, served, "tasks", "--history", "--device", "someone-else")
    assert "setParameterValues" not in result.stdout


def test_wrong_token(knock: typer.Typer, served: ThreadedNbi) -> None:
    result = _run(knock, served, "devices", token="guess")
    assert result.exit_code == 1
    assert "the NBI needs a token: pass --token or set KNOCK_NBI_TOKEN" in result.stderr


def test_nbi_not_running(knock: typer.Typer) -> None:
    result = _run(knock, None, "devices", "--nbi", "http://127.0.0.1:9")
    assert result.exit_code == 1
    assert "cannot reach the NBI at http://127.0.0.1:9" in result.stderr
    assert "start it with `knock serve`" in result.stderr


def test_help(knock: typer.Typer) -> None:
    result = _run(knock, None, "set", "--help")
    assert result.exit_code == 0
    assert "PATH=VALUE:xsd:TYPE" in result.stdout and "KNOCK_NBI_URL" in result.stdout


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A.B=1", ["A.B", "1"]),
        ("A.B=", ["A.B", ""]),
        ("A.B=x=y:z", ["A.B", "x=y:z"]),
        ("A.B=http://acs:7547/", ["A.B", "http://acs:7547/"]),
        ("A.B=-3:xsd:int", ["A.B", "-3", "xsd:int"]),
        ("A.B=true:xsd:boolean", ["A.B", "true", "xsd:boolean"]),
        ("A.B=a:xsd:nonsense", ["A.B", "a:xsd:nonsense"]),
        ("A.B=ends:xsd:int:xsd:string", ["A.B", "ends:xsd:int", "xsd:string"]),
    ],
)
def test_parse_assignment(text: str, expected: list[str]) -> None:
    assert parse_assignment(text) == expected


def test_a_fault_says_who_refused_and_each_parameter_s_reason() -> None:
    assert fault_sentence({"code": "knock", "message": "no type for X", "detail": None}) == (
        "Knock refused the task before sending it: no type for X"
    )
    device = {
        "code": "9003",
        "message": "Invalid arguments",
        "detail": [{"parameter": SW, "code": 9008, "message": "not writable"}],
    }
    assert fault_sentence(device) == (
        f"the device refused: 9003: Invalid arguments ({SW}: 9008 not writable)"
    )
