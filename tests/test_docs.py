"""The documentation names every setting, and `knock serve --help` offers a flag for each."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest
from typer.testing import CliRunner

from knock.cli import app
from knock.config import Settings

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_is_documented() -> None:
    doc = (ROOT / "docs" / "configuration.md").read_text()
    readme = (ROOT / "README.md").read_text()
    for f in fields(Settings):
        assert f"`{f.name}`" in doc, f"docs/configuration.md does not describe {f.name}"
        section, _, key = f.name.partition("_")
        table_name = f"[{section}.{key}]" if is_table(f.type) else f"`{f.name}"
        assert table_name in readme, f"README's configuration table lacks {f.name}"


def test_serve_help_lists_a_flag_per_setting() -> None:
    result = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.replace("│", " ").split())
    for f in fields(Settings):
        if not is_table(f.type):
            assert "--" + f.name.replace("_", "-") in result.output
            # rich would read a bare [default: ...] as markup and drop it
            assert f"[default: {f.default}; env KNOCK_{f.name.upper()}]" in text, f.name


def is_table(kind: object) -> bool:
    """Tables (username = password, prefix = order) come from the TOML file only."""
    return kind == "Mapping[str, str]"


@pytest.mark.parametrize("command", ["serve", "sim", "check", "cr", "demo"])
def test_help_shows_no_value_beside_a_flag(command: str) -> None:
    """A flag takes no value: no `<bool>` beside it (typer 0.29 printed one, --help included)."""
    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "--help" in result.output and "<bool>" not in result.output
