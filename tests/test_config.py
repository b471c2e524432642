"""Settings precedence (defaults < file < environment < flags) and refusals with clear words."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from knock.cli import app
from knock.config import ConfigError, load_settings
from knock.server import check_exposure


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "knock.toml"
    path.write_text(text)
    return path


def test_file_then_environment_then_flags(tmp_path: Path) -> None:
    config = write(
        tmp_path,
        '[cwmp]\nport = 8000\nhost = "127.0.0.1"\n[nbi]\nport = 9000\n[store]\nurl = "sqlite:///x.db"\n',
    )
    settings = load_settings(
        config,
        {"nbi_port": 9100, "cwmp_host": None},
        environ={"KNOCK_CWMP_PORT": "8100", "KNOCK_NBI_PORT": "9050", "HOME": "/root"},
    )
    assert settings.cwmp_port == 8100  # environment over file
    assert settings.nbi_port == 9100  # flag over environment
    assert settings.cwmp_host == "127.0.0.1"  # file over default; a None flag is "not given"
    assert settings.store_url == "sqlite:///x.db"


def test_per_device_credentials_table(tmp_path: Path) -> None:
    config = write(tmp_path, '[cwmp]\nauth = "digest"\n[cwmp.credentials]\nSN1 = "pw1"\n')
    settings = load_settings(config, {}, environ={})
    assert settings.cwmp_credentials == {"SN1": "pw1"}


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("[cwmp]\nprot = 1\n", {}, "unknown setting 'cwmp_prot'"),
        ("[cwmp]\nport = 'many'\n", {}, "cwmp_port must be a number"),
        ("", {"KNOCK_TLS_SELF_SIGNED": "perhaps"}, "tls_self_signed must be true or false"),
        ("[cwmp]\nauth = 'kerberos'\n", {}, "use none, basic or digest"),
        ("[cwmp]\nauth = 'digest'\n", {}, "no credentials are set"),
        (
            "[cwmp]\nusername = 'SN1'\npassword = 'p'\n[cwmp.credentials]\nSN1 = 'q'\n",
            {},
            "is also a per-device username",
        ),
        ("[tls]\ncert = 'a.pem'\n", {}, "tls_cert and tls_key go together"),
        ("[xmpp]\ntls_key = 'k.pem'\n", {}, "xmpp_tls_cert and xmpp_tls_key go together"),
        (
            "[xmpp]\nrequire_tls = true\n",
            {},
            "xmpp_require_tls is gone: TLS is required by default now; xmpp_lab_plaintext",
        ),
        ("[cwmp\n", {}, "is not valid TOML"),
        ("[listen]\nidle_timeout = 0\n", {}, "listen_idle_timeout is 0.0; give a positive"),
        ("", {"KNOCK_XMPP_MAX_SESSIONS": "-1"}, "xmpp_max_sessions is -1; give a positive"),
        ("[files]\nurl = 'http://acs.example:7567'\n", {}, "files_url .* must end in /"),
        ("[files]\ndevice_auth = true\n", {}, "files_device_auth .* set cwmp_auth"),
        (
            "[cwmp]\nauth = 'digest'\npassword = 'p'\n"
            "[files]\ndevice_auth = true\npassword = 'q'\n",
            {},
            "files_device_auth and files_password exclude each other",
        ),
        ("[files]\ntls = true\n", {}, "files_tls serves the CWMP certificate"),
        (
            "",
            {"KNOCK_WORKERS": "2", "KNOCK_STORE_URL": "postgresql://h/db", "KNOCK_FILES_PORT": "0"},
            "fixed ports",
        ),
    ],
)
def test_refusals_name_the_setting(
    tmp_path: Path, text: str, env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(write(tmp_path, text), {}, environ=env)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml", {}, environ={})


def test_open_nbi_is_refused_and_open_cwmp_warns() -> None:
    with pytest.raises(ConfigError, match="--nbi-token"):
        check_exposure(load_settings(None, {"nbi_host": "0.0.0.0"}, environ={}))
    assert check_exposure(
        load_settings(None, {"nbi_host": "0.0.0.0", "nbi_token": "t"}, environ={})
    ) == [
        "CWMP listens on 0.0.0.0 with authentication OFF: any host that reaches it can pose as "
        "a device. Use --cwmp-auth digest with credentials in production."
    ]
    quiet = load_settings(None, {"cwmp_host": "127.0.0.1"}, environ={})
    assert check_exposure(quiet) == []


def test_connection_request_order_per_group(tmp_path: Path) -> None:
    config = write(tmp_path, '[cr]\norder = "udp,http"\n[cr.order_groups]\n"00D09E-Box" = "http"\n')
    settings = load_settings(config, {}, environ={})
    assert settings.cr_order == "udp,http"
    assert settings.cr_order_groups == {"00D09E-Box": "http"}
    with pytest.raises(ConfigError, match="list each of http, udp, xmpp"):
        load_settings(None, {"cr_order": "smoke-signals"}, environ={})


def test_serve_prints_a_refusal_with_its_brackets() -> None:
    """rich markup would eat `[cwmp.credentials]` from the message."""
    result = CliRunner().invoke(
        app, ["serve", "--cwmp-auth", "digest"], env={"COLUMNS": "200", "KNOCK_CONFIG": ""}
    )
    assert result.exit_code == 2
    assert "or a [cwmp.credentials] table" in " ".join(result.output.split())
