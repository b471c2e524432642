"""The `knock` command."""

from __future__ import annotations

import inspect
from dataclasses import fields
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.markup import escape

from knock import demo as demo_cli
from knock.check import cli as check_cli
from knock.config import ConfigError, Settings, load_settings
from knock.cpe import cli as cpe_cli
from knock.lab import cli as lab_cli
from knock.logs import setup_logging
from knock.nbi import cli as nbi_cli

app = typer.Typer(
    help="Knock: a TR-069 (CWMP) ACS that reaches devices by every connection-request method.",
    no_args_is_help=True,
    add_completion=False,
)
err = Console(stderr=True)


def _serve(config: Optional[Path], **flags: Any) -> None:  # noqa: UP045 - typer reads the hints
    settings: Settings | None = None
    try:
        settings = load_settings(config, flags)
        from knock import server  # imported here so `knock --help` stays fast

        for warning in server.check_exposure(settings):
            err.print(f"[bold red]WARNING:[/] {escape(warning)}")
        setup_logging(settings.log_level, settings.log_format)
        server.serve(settings)
    except ConfigError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
    except OSError as exc:
        assert settings is not None  # loading them raises ConfigError, not OSError
        err.print(f"[bold red]error:[/] {escape(settings.listen_error(exc))}")
        raise typer.Exit(1) from None


def _serve_signature() -> inspect.Signature:
    """One option per setting, so flags, TOML keys and KNOCK_* variables never drift apart."""
    params = [
        inspect.Parameter(
            "config",
            inspect.Parameter.KEYWORD_ONLY,
            default=typer.Option(
                None, "--config", "-c", envvar="KNOCK_CONFIG", help="TOML configuration file."
            ),
            annotation=Optional[Path],  # noqa: UP045
        )
    ]
    for f in fields(Settings):
        if f.type == "Mapping[str, str]":
            continue  # tables live in the TOML file only
        flag = "--" + f.name.replace("_", "-")
        kind: Any = {"int": int, "float": float, "bool": bool}.get(str(f.type), str)
        decls = [f"{flag}/--no-{flag[2:]}"] if kind is bool else [flag]
        params.append(
            inspect.Parameter(
                f.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=typer.Option(
                    None,
                    *decls,
                    # Escaped: rich reads a bare [default: ...] as markup and drops it.
                    help=escape(
                        f"{f.metadata['help']} [default: {f.default}; env KNOCK_{f.name.upper()}]"
                    ),
                    show_default=False,
                ),
                annotation=Optional[kind],  # noqa: UP045
            )
        )
    return inspect.Signature(params)


def serve(**kwargs: Any) -> None:
    """Run the ACS: CWMP for devices, the NBI for people and scripts, the store behind both."""
    config = kwargs.pop("config")
    _serve(config, **kwargs)


serve.__signature__ = _serve_signature()  # type: ignore[attr-defined]
app.command(
    epilog="Settings come from defaults, then --config FILE, then KNOCK_* variables, then flags."
)(serve)
demo_cli.register(app)
nbi_cli.register(app)
cpe_cli.register(app)
lab_cli.register(app)
check_cli.register(app)
