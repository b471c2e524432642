"""`knock serve` settings for tests: every listener on 127.0.0.1 and a free port, files in tmp."""

from __future__ import annotations

import json
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

from knock.config import Settings


def loopback_settings(folder: Path, **overrides: Any) -> Settings:
    settings = replace(
        Settings(),
        cwmp_host="127.0.0.1",
        cwmp_port=0,
        nbi_port=0,
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


def fast_retry_model(folder: Path) -> str:
    """TR-181 with a 1 s first XMPP reconnection wait (the default 60 s would outlast a test)."""
    text = resources.files("knock.cpe").joinpath("models/tr181.json").read_text("utf-8")
    model = json.loads(text)
    connection = model["objects"]["Device.XMPP.Connection.{i}."]["parameters"]
    connection["ServerRetryInitialInterval"]["value"] = "1"
    path = folder / "tr181-fast-retry.json"
    path.write_text(json.dumps(model), "utf-8")
    return str(path)
