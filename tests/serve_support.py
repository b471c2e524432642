"""`knock serve` settings for tests: every listener on 127.0.0.1 and a free port, files in tmp."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from knock.config import Settings


def loopback_settings(folder: Path, **overrides: Any) -> Settings:
    settings = replace(
        Settings(),
        cwmp_host="127.0.0.1",
        cwmp_port=0,
        nbi_port=0,
        files_host="127.0.0.1",
        files_port=0,
        stun_host="127.0.0.1",
        stun_port=0,
        xmpp_host="127.0.0.1",
        xmpp_port=0,
        xmpp_tls_port=0,
        store_url=f"sqlite:///{folder / 'knock.db'}",
        data_dir=str(folder / "data"),
        **overrides,
    )
    settings.validate()
    return settings
