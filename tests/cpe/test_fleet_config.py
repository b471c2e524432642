"""A fleet's options, figures and views, without running devices."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from knock.cli import app
from knock.cpe.cr_http import Busy, CrAnswer
from knock.cpe.fleet_config import FleetConfig, FleetError
from knock.cpe.fleet_stats import FleetSnapshot, FleetStats
from knock.cpe.fleet_view import status_line, status_table
from knock.vocab import CrMethod

ACS = "http://127.0.0.1:7547/"


def test_serials_and_slices() -> None:
    config = FleetConfig(ACS, 10, workers=3, serial_prefix="LAB")
    assert [config.serial(n) for n in (1, 10, 1234567)] == ["LAB000001", "LAB000010", "LAB1234567"]
    assert config.slices() == [range(1, 5), range(5, 8), range(8, 11)]
    assert FleetConfig(ACS, 10_000, workers=2).slices() == [range(1, 5001), range(5001, 10_001)]


def test_config_crosses_into_a_worker_as_json() -> None:
    config = FleetConfig(ACS, 5, cr_busy=Busy.QUEUE, periodic_interval=0, acs_password="pw")
    assert FleetConfig.from_json(config.to_json()) == config
    assert "pw" not in repr(config)


def test_devices_on_an_external_xmpp_server_have_accounts_an_operator_can_register() -> None:
    config = FleetConfig(
        ACS,
        3,
        cr_methods=(CrMethod.HTTP, CrMethod.XMPP),
        xmpp_server="127.0.0.1:5333",
        xmpp_domain="xmpp.example",
        xmpp_password_secret="fleet-secret",
    )
    config.validate()
    assert FleetConfig.from_json(config.to_json()) == config
    external = config.external_xmpp
    assert external is not None and (external.host, external.port) == ("127.0.0.1", 5333)
    assert "fleet-secret" not in repr(config) + repr(external)
    # printf %s sim000002 | openssl dgst -sha256 -hmac fleet-secret
    assert external.account("SIM000002") == (
        "sim000002@xmpp.example/cwmp",
        "a4573867b27b0fe430eeecca5bca7d66534b75e79e5e5836e3c0fe0d0562f57e",
    )
    assert FleetConfig(ACS, 1).external_xmpp is None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"cr_methods": (CrMethod.XMPP,)},
            "--cr must include http (TR-069 requires it); e.g. --cr http,udp",
        ),
        ({"cr_methods": ()}, "--cr must include http (TR-069 requires it); e.g. --cr http,udp"),
        (
            {"cr_methods": (CrMethod.HTTP, CrMethod.XMPP), "model": "tr098"},
            "--model tr098 with --cr http,xmpp: model tr098 lacks "
            "InternetGatewayDevice.XMPP.Connection.{i}., "
            "InternetGatewayDevice.XMPP.Connection.{i}.Server.{i}., "
            "InternetGatewayDevice.ManagementServer.ConnReqXMPPConnection, which XMPP connection "
            "requests (TR-069 Annex K) need",
        ),
        (
            {"acs_url": "127.0.0.1:7547"},
            "--acs '127.0.0.1:7547' is not an http(s) URL; give the ACS's URL",
        ),
        ({"count": 0}, "--count 0: a fleet needs at least one device"),
        ({"workers": 4}, "--workers 4: use 1 to 3 worker processes"),
        ({"start_rate": 0}, "--start-rate 0: give devices per second, above 0"),
        ({"cr_rate_limit": -1}, "--cr-rate-limit must be 0 (no limit) or a number of seconds"),
        ({"periodic_interval": -5}, "--periodic-interval must be 0 (off) or a number of seconds"),
        (
            {"xmpp_server": "127.0.0.1:5222", "xmpp_password_secret": "s"},
            "--xmpp-server needs xmpp among --cr; e.g. --cr http,xmpp",
        ),
        (
            {
                "xmpp_server": "127.0.0.1",
                "cr_methods": (CrMethod.HTTP, CrMethod.XMPP),
                "xmpp_password_secret": "s",
            },
            "--xmpp-server '127.0.0.1': give HOST:PORT, e.g. xmpp.example.net:5222",
        ),
        (
            {"xmpp_server": "127.0.0.1:5222", "cr_methods": (CrMethod.HTTP, CrMethod.XMPP)},
            "--xmpp-server needs --xmpp-password-secret (or KNOCK_SIM_XMPP_PASSWORD_SECRET), the "
            "secret the devices' passwords derive from",
        ),
        (
            {"xmpp_password_secret": "s"},
            "--xmpp-domain and --xmpp-password-secret go with --xmpp-server HOST:PORT",
        ),
        (
            {"model": "/nonexistent.json"},
            "--model /nonexistent.json: cannot read model file "
            "/nonexistent.json: No such file or directory",
        ),
    ],
)
def test_options_that_cannot_work_are_refused_before_anything_starts(
    options: dict[str, object], message: str
) -> None:
    fields: dict[str, object] = {"acs_url": ACS, "count": 3, **options}
    with pytest.raises(FleetError) as caught:
        FleetConfig(**fields).validate()  # type: ignore[arg-type]
    assert str(caught.value) == message


def test_a_model_without_what_the_options_need(tmp_path: Path) -> None:
    model = tmp_path / "small.json"
    model.write_text(
        '{"name": "small", "root": "Device.", "objects": {"Device.": {}, '
        '"Device.ManagementServer.": {"parameters": {"URL": {"access": "readWrite"}, '
        '"ConnectionRequestURL": {}, "ConnectionRequestUsername": {"access": "readWrite"}, '
        '"ConnectionRequestPassword": {"access": "readWrite"}}}, '
        '"Device.DeviceInfo.": {"parameters": {"SerialNumber": {}}}}}'
    )
    FleetConfig(ACS, 1, model=str(model)).validate()
    with pytest.raises(FleetError) as caught:
        FleetConfig(ACS, 1, model=str(model), periodic_interval=60).validate()
    assert str(caught.value) == (
        "--periodic-interval: model small lacks Device.ManagementServer.PeriodicInformEnable, "
        "Device.ManagementServer.PeriodicInformInterval; add them to the model or leave the "
        "option out"
    )


def test_stats_add_up_and_cross_as_json() -> None:
    one = FleetStats(5, 4, 1, 9, 1, {CrAnswer.ACCEPTED: 2, CrAnswer.BUSY: 1})
    two = FleetStats(5, 5, 0, 5, 0, {CrAnswer.ACCEPTED: 1, CrAnswer.MERGED: 3})
    total = one + two
    assert total == FleetStats(
        10, 9, 1, 14, 1, {CrAnswer.ACCEPTED: 3, CrAnswer.BUSY: 1, CrAnswer.MERGED: 3}
    )
    assert (total.cr_received, total.cr_accepted, total.cr_refused) == (7, 6, {CrAnswer.BUSY: 1})
    assert FleetStats.from_json(total.to_json()) == total


SNAPSHOT = FleetSnapshot(
    FleetConfig(ACS, 10_000, workers=2),
    FleetStats(
        10_000,
        9_998,
        12,
        20_011,
        3,
        {
            CrAnswer.CHALLENGED: 40,
            CrAnswer.ACCEPTED: 30,
            CrAnswer.MERGED: 5,
            CrAnswer.RATE_LIMITED: 4,
            CrAnswer.BUSY: 1,
        },
    ),
    elapsed=61.04,
    online_after=None,
)


def test_status_line_for_logs() -> None:
    assert status_line(SNAPSHOT) == (
        "elapsed=61.0 started=10000/10000 online=9998 in_session=12 sessions=20011 errors=3 "
        "cr_received=80 cr_accepted=35 cr_refused=5 cr_rate_limited=4 cr_busy=1"
    )


def test_status_table_for_a_terminal() -> None:
    console = Console(record=True, width=120)
    console.print(status_table(SNAPSHOT))
    lines = [
        " ".join(line.replace("│", " ").split()) for line in console.export_text().splitlines()
    ]
    assert "knock sim: 10000 devices, 2 worker processes -> http://127.0.0.1:7547/" in lines
    assert "started 10000 / 10000" in lines
    assert "online 9998" in lines
    assert "in session 12" in lines
    assert "sessions done 20011" in lines
    assert "errors 3 failed sessions, devices that stopped" in lines
    assert "CRs received 80 HTTP requests to the devices" in lines
    assert "CRs accepted 35 5 joined a pending session" in lines
    assert "CRs challenged 40 401 without credentials" in lines
    assert "CRs refused 5 busy 1, rate-limited 4" in lines


def flat(text: str) -> str:
    """CLI output without the line breaks and box borders that depend on the terminal's width."""
    return " ".join(text.replace("│", " ").split())


def test_knock_sim_refuses_methods_the_model_lacks() -> None:
    result = CliRunner().invoke(app, ["sim", "--acs", ACS, "--cr", "http,xmpp", "--model", "tr098"])
    assert result.exit_code == 1
    assert flat(result.output).startswith(
        "error: --model tr098 with --cr http,xmpp: model tr098 lacks InternetGatewayDevice.XMPP."
    )
    unknown = CliRunner().invoke(app, ["sim", "--acs", ACS, "--cr", "carrier-pigeon"])
    assert unknown.exit_code == 2
    assert "'carrier-pigeon' is not a method; name some of http, udp, xmpp" in flat(unknown.output)
