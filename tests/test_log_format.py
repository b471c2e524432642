"""knock.logs: the JSON line format, the set-up the long-running commands call, the setting."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from dataclasses import replace

import pytest

from knock.config import ConfigError, Settings
from knock.logs import fields, setup_logging


@pytest.fixture
def root_restored() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_carry_the_fields_and_the_exception(root_restored: None) -> None:
    out = io.StringIO()
    setup_logging("info", "json", out)
    log = logging.getLogger("knock.test")
    log.debug("not at info")
    log.info("device %s: done", "D1", extra=fields(device_id="D1", latency_s=0.25, msg="kept"))
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("it failed")
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["ts"].endswith("+00:00") and first["ts"][:4].isdigit()
    # A field cannot overwrite the line's own keys.
    assert {k: v for k, v in first.items() if k != "ts"} == {
        "level": "info",
        "logger": "knock.test",
        "msg": "device D1: done",
        "device_id": "D1",
        "latency_s": 0.25,
    }
    assert second["level"] == "error" and "ValueError: boom" in second["exc"]


def test_text_lines_are_the_message_with_time_level_and_logger(root_restored: None) -> None:
    out = io.StringIO()
    setup_logging("warning", "text", out)
    logging.getLogger("knock.test").info("hidden")
    logging.getLogger("knock.test").warning("shown", extra=fields(device_id="D1"))
    [line] = out.getvalue().splitlines()
    assert line.endswith(" WARNING knock.test shown")


def test_log_format_is_checked() -> None:
    with pytest.raises(ConfigError, match="log_format is 'xml'; use text or json"):
        replace(Settings(), log_format="xml").validate()
    with pytest.raises(ValueError, match="use text or json"):
        setup_logging("info", "xml")
