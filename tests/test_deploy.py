"""docs/deploy.md and what it ships under contrib/: the files are quoted in the guide as they
are, they load, and systemd and HAProxy accept them. The multi-host lab (tests/lab/test_hosts.py)
runs the same knock.toml and HAProxy configuration."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from knock.config import load_settings
from knock.lab.hosts import ACS_CONFIG, CWMP_PORT, MACHINES, XMPP_DOMAIN, XMPP_PORT, acs_arguments
from knock.lab.topology import FIRST_HOST, PUBLIC_NET

LB_PUBLIC = str(PUBLIC_NET.network_address + FIRST_HOST)  # the NAT lab's pub, the lab's lb

ROOT = Path(__file__).resolve().parents[1]
CONTRIB = ROOT / "contrib"
GUIDE = (ROOT / "docs" / "deploy.md").read_text()
SHIPPED = [
    CONTRIB / "knock" / "knock.toml",
    CONTRIB / "knock" / "knock.env",
    CONTRIB / "systemd" / "knock.service",
    CONTRIB / "systemd" / "haproxy.service.d" / "knock.conf",
    CONTRIB / "haproxy" / "knock.cfg",
]


def code_blocks(markdown: str) -> list[str]:
    return [m.group(1) for m in re.finditer(r"```[a-z]*\n(.*?)```", markdown, re.S)]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(CONTRIB)))
def test_the_guide_quotes_each_shipped_file_as_it_is(path: Path) -> None:
    assert path.read_text() in code_blocks(GUIDE), f"docs/deploy.md must quote {path} verbatim"


def environment_file(path: Path) -> dict[str, str]:
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def test_the_shipped_settings_load_with_the_shipped_environment_file() -> None:
    settings = load_settings(
        ACS_CONFIG, {}, environ=environment_file(ACS_CONFIG.with_suffix(".env"))
    )
    assert (settings.workers, settings.cwmp_auth, settings.cwmp_password) == (
        2,
        "digest",
        "CHANGE-ME",
    )
    assert settings.store_url.startswith(f"postgresql://knock:CHANGE-ME@{MACHINES['db']}/")
    assert (settings.nbi_host, settings.xmpp_acs_server) == (MACHINES["acs1"], MACHINES["xmpp"])


def test_the_lab_is_the_machines_the_shipped_settings_name() -> None:
    """The lab runs contrib/knock/knock.toml as it is: its addresses must be the lab's."""
    settings = load_settings(
        ACS_CONFIG, {}, environ=environment_file(ACS_CONFIG.with_suffix(".env"))
    )
    assert settings.cwmp_url == f"http://{LB_PUBLIC}:{CWMP_PORT}/"
    assert settings.stun_advertise == LB_PUBLIC
    assert (settings.xmpp_acs_jid, settings.xmpp_acs_port) == (f"acs@{XMPP_DOMAIN}", XMPP_PORT)


def unit_exec_start(path: Path) -> list[str]:
    (line,) = [x for x in path.read_text().splitlines() if x.startswith("ExecStart=")]
    return line.removeprefix("ExecStart=").split()


def test_the_unit_runs_what_the_lab_runs() -> None:
    program, *arguments = unit_exec_start(CONTRIB / "systemd" / "knock.service")
    assert program == "/opt/knock/bin/knock"
    assert arguments == acs_arguments(Path("/etc/knock/knock.toml"))


def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze is not None, "systemd-analyze is missing: apt-get install systemd"
    knock = Path(sys.executable).with_name("knock")  # this venv's, for /opt/knock's
    unit = tmp_path / "knock.service"
    unit.write_text(
        (CONTRIB / "systemd" / "knock.service")
        .read_text()
        .replace("/opt/knock/bin/knock", str(knock))
    )
    done = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "knock.service" not in done.stderr, done.stderr  # warnings name the unit


def test_haproxy_accepts_the_configuration() -> None:
    haproxy = shutil.which("haproxy", path=os.pathsep.join([os.environ["PATH"], "/usr/sbin"]))
    assert haproxy is not None, "haproxy is missing: sh scripts/prepare-test-host.sh as root"
    env = {
        **os.environ,
        "KNOCK_LB_ADDRESS": "127.0.0.1",
        "KNOCK_ACS1": "127.0.0.2",
        "KNOCK_ACS2": "127.0.0.3",
        "KNOCK_XMPP": "127.0.0.4",
        "KNOCK_LB_ADMIN_SOCKET": "/nonexistent/knock.sock",
    }
    done = subprocess.run(
        [haproxy, "-c", "-f", str(CONTRIB / "haproxy" / "knock.cfg")],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
