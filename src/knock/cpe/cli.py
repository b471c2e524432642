"""`knock sim`: a fleet of simulated CPEs against an ACS, with a live view."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.live import Live
from rich.logging import RichHandler
from rich.table import Table
from rich.text import Text

from knock.cpe.cr_rate import DEFAULT_RATE_LIMIT, Busy
from knock.cpe.defects import Defect, parse_defects
from knock.cpe.fleet import Fleet
from knock.cpe.fleet_config import DEFAULT_START_RATE, FleetConfig, FleetError
from knock.cpe.fleet_view import status_line, status_table
from knock.cpe.quirks import Quirk, parse_quirks
from knock.cpe.switches import SwitchError
from knock.vocab import CrMethod

SIM_HELP = (
    "Run a fleet of simulated CPEs against an ACS: each device informs, answers the ACS's "
    "RPCs and takes HTTP connection requests at its own URL on a shared listener (--cr-host); "
    "with --cr http,udp,xmpp also UDP ones through STUN (its own UDP port) and XMPP ones "
    "(its own XMPP connection), once the ACS has configured them.\n\n"
    "Example: knock sim --acs http://127.0.0.1:7547/ --count 10000 --workers 2"
)


def register(app: typer.Typer) -> None:
    """Add `knock sim` to the `knock` command line."""
    app.command("sim", help=SIM_HELP)(sim)


def _methods(text: str) -> tuple[CrMethod, ...]:
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    known = ", ".join(m.value for m in CrMethod)
    for name in names:
        if name not in {m.value for m in CrMethod}:
            raise typer.BadParameter(f"{name!r} is not a method; name some of {known}")
    return tuple(CrMethod(name) for name in names)


def _print_switches(rows: list[tuple[str, str]], header: tuple[str, str]) -> None:
    table = Table(*header, box=None)
    for row in rows:
        table.add_row(*row)
    Console().print(table)
    raise typer.Exit()


def _print_defects(wanted: bool) -> None:
    if wanted:
        _print_switches([(d.value, d.breaks) for d in Defect], ("defect", "breaks"))


def _print_quirks(wanted: bool) -> None:
    if wanted:
        _print_switches([(q.value, q.reading) for q in Quirk], ("quirk", "reading"))


def sim(
    acs: Annotated[str, typer.Option("--acs", help="The ACS URL the devices inform.")],
    count: Annotated[int, typer.Option("--count", min=1, help="How many devices.")] = 1,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Worker processes to spread the devices over (1: all in this process). "
            "About 5000 devices per worker fit its descriptors and a core.",
        ),
    ] = 1,
    serial_prefix: Annotated[
        str, typer.Option(help="Serial numbers are this and a number: SIM000001, ...")
    ] = "SIM",
    model: Annotated[
        str,
        typer.Option(
            help="Data model: tr181, tr098, tr098-http (TR-098 without STUN: HTTP connection "
            "requests only) or a JSON model file."
        ),
    ] = "tr181",
    state_dir: Annotated[
        Path | None,
        typer.Option(
            help="Keep each device's state here across runs (else a temporary folder: "
            "every run bootstraps afresh)."
        ),
    ] = None,
    cr: Annotated[
        str,
        typer.Option(
            "--cr",
            help="Connection-request methods the devices offer, http always among them: "
            "http, udp (STUN, TR-111), xmpp (TR-069 Annex K).",
        ),
    ] = "http",
    periodic_interval: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Seconds between periodic informs; 0 turns them off (default: the model's own).",
        ),
    ] = None,
    acs_username: Annotated[
        str, typer.Option(envvar="KNOCK_SIM_ACS_USERNAME", help="Username for the ACS.")
    ] = "",
    acs_password: Annotated[
        str, typer.Option(envvar="KNOCK_SIM_ACS_PASSWORD", help="Password for the ACS.")
    ] = "",
    cr_busy: Annotated[
        Busy,
        typer.Option(
            help="A connection request during a session: 503, or queue one more session after it."
        ),
    ] = Busy.REFUSE,
    cr_rate_limit: Annotated[
        float,
        typer.Option(
            min=0,
            help="Least seconds between sessions a device's connection requests open; "
            "sooner ones get 503 with Retry-After. 0: no limit.",
        ),
    ] = DEFAULT_RATE_LIMIT,
    start_rate: Annotated[
        float, typer.Option(min=0.001, help="Devices powered on per second, over the whole fleet.")
    ] = DEFAULT_START_RATE,
    ca: Annotated[
        Path | None,
        typer.Option(
            "--ca",
            "--xmpp-ca",
            help="CA certificates (PEM) the devices trust besides the system's, as an operator "
            "installs its CA on real devices: they check the ACS's HTTPS and the XMPP server's "
            "certificates against them. Knock serve's lab CA is DATA_DIR/ca.pem, or fetch it: "
            "curl -o ca.pem http://NBI:7557/ca.pem. Devices that check nothing: "
            "--defect no-cert-check.",
        ),
    ] = None,
    cr_host: Annotated[
        str,
        typer.Option(
            help="Address the devices' HTTP and UDP connection-request listeners bind and report "
            "(ConnectionRequestURL, UDPConnectionRequestAddress); in a NAT lab, the LAN address."
        ),
    ] = "127.0.0.1",
    xmpp_server: Annotated[
        str,
        typer.Option(
            help="HOST:PORT of an external XMPP server (Prosody, ejabberd) on "
            "which each device has an account from the start, as operators configure out of "
            "band: username its serial in lower case (sim000001), password the hex "
            "HMAC-SHA256 of the username under --xmpp-password-secret, resource cwmp. The "
            "device holds that XMPP.Connection row and logs in at power-on; the ACS only tells "
            "it whom to accept requests from. Needs --cr with xmpp.",
        ),
    ] = "",
    xmpp_domain: Annotated[
        str,
        typer.Option(help="Domain of the devices' JIDs on --xmpp-server (default: its host)."),
    ] = "",
    xmpp_password_secret: Annotated[
        str,
        typer.Option(
            envvar="KNOCK_SIM_XMPP_PASSWORD_SECRET",
            help="Secret of the devices' XMPP passwords: register each account with the "
            "password `printf %s sim000001 | openssl dgst -sha256 -hmac SECRET` gives.",
        ),
    ] = "",
    xmpp_tls: Annotated[
        bool,
        typer.Option(
            help="Devices on --xmpp-server require STARTTLS (UseTLS), checked against --ca."
        ),
    ] = False,
    live: Annotated[
        bool, typer.Option(help="A live table; --no-live prints a line a second, for logs and CI.")
    ] = True,
    list_defects: Annotated[
        bool,
        typer.Option(
            "--list-defects",
            is_eager=True,
            callback=_print_defects,
            help="Print the defects --defect takes and the requirement each breaks, and exit.",
        ),
    ] = False,
    defect: Annotated[
        list[str] | None,
        typer.Option(
            "--defect",
            help="Make every device break one connection-request requirement, to see knock check "
            "catch it; repeatable. " + "; ".join(f"{d.value}: {d.breaks}" for d in Defect) + ".",
        ),
    ] = None,
    list_quirks: Annotated[
        bool,
        typer.Option(
            "--list-quirks",
            is_eager=True,
            callback=_print_quirks,
            help="Print the quirks --quirk takes and the reading of the spec each plays, and exit.",
        ),
    ] = False,
    quirk: Annotated[
        list[str] | None,
        typer.Option(
            "--quirk",
            help="Make every device read the spec as some deployed stacks do where it leaves "
            "freedom (the ACS must cope; knock check must not fail it); repeatable. "
            + "; ".join(f"{q.value}: {q.reading}" for q in Quirk)
            + ".",
        ),
    ] = None,
) -> None:
    try:
        defects = parse_defects(defect or ())
    except SwitchError as exc:
        raise typer.BadParameter(str(exc), param_hint="--defect") from None
    try:
        quirks = parse_quirks(quirk or ())
    except SwitchError as exc:
        raise typer.BadParameter(str(exc), param_hint="--quirk") from None
    config = FleetConfig(
        acs_url=acs,
        count=count,
        workers=workers,
        serial_prefix=serial_prefix,
        model=model,
        state_dir=str(state_dir) if state_dir is not None else "",
        cr_methods=_methods(cr),
        periodic_interval=periodic_interval,
        acs_username=acs_username,
        acs_password=acs_password,
        cr_busy=cr_busy,
        cr_rate_limit=cr_rate_limit,
        start_rate=start_rate,
        ca_file=str(ca) if ca is not None else "",
        cr_host=cr_host,
        defects=tuple(sorted(defects)),
        quirks=tuple(sorted(quirks)),
        xmpp_server=xmpp_server,
        xmpp_domain=xmpp_domain,
        xmpp_password_secret=xmpp_password_secret,
        xmpp_tls=xmpp_tls,
    )
    err = Console(stderr=True)
    try:
        config.validate()
        asyncio.run(_run(Fleet(config), live))
    except FleetError as exc:
        err.print(Text.assemble(("error: ", "bold red"), str(exc)), soft_wrap=True)
        raise typer.Exit(1) from None


async def _run(fleet: Fleet, live: bool) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    console = Console()
    # No source path: every worker's line would say fleet.py, where the parent relays it.
    handler: logging.Handler = (
        RichHandler(console=console, show_path=False) if live else logging.StreamHandler()
    )
    if not live:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)
    running = asyncio.create_task(fleet.run(stop))
    if live:
        with Live(status_table(fleet.snapshot()), console=console, refresh_per_second=4) as screen:
            while not running.done():
                await asyncio.wait({running}, timeout=0.25)
                screen.update(status_table(fleet.snapshot()))
    else:
        while not running.done():
            await asyncio.wait({running}, timeout=1.0)
            print(status_line(fleet.snapshot()), flush=True)
    await running
    console.print(f"stopped: {status_line(fleet.snapshot())}", highlight=False, soft_wrap=True)
