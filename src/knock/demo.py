"""`knock demo`: the ACS with its XMPP and STUN servers, a small simulated fleet, one connection
request by each method and one by the dispatcher's choice in a table, then the dashboard."""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Final

import typer
from rich.console import Console
from rich.markup import escape
from rich.text import Text

if TYPE_CHECKING:
    from knock.lab.demo import Demo

HELP: Final = (
    "Start the ACS (CWMP, NBI, STUN and XMPP servers) and a small simulated fleet with every "
    "connection-request method, send a connection request to the first device by HTTP, UDP and "
    "XMPP and one by the dispatcher's own choice, and print the outcomes and latencies. Then "
    "the dashboard stays up at the printed address until Ctrl-C.\n\n"
    "As root the fleet sits behind a real NAT (the NAT lab: see `knock lab nat --help`), where "
    "HTTP cannot reach a device's private address while UDP and XMPP get through; otherwise, "
    "or with --no-nat, everything runs on 127.0.0.1. The exit status is 0 when every outcome "
    "is the expected one."
)


def register(app: typer.Typer) -> None:
    app.command(
        "demo",
        help=HELP,
        short_help="Start here: the ACS, a small fleet, a connection request by each method and "
        "the dashboard.",
    )(demo)


def demo(
    once: Annotated[
        bool, typer.Option("--once", help="Exit after the table (for scripts and CI).")
    ] = False,
    nat: Annotated[
        bool,
        typer.Option(
            "--nat/--no-nat", help="Put the fleet behind the NAT lab when running as root."
        ),
    ] = True,
    ipv6: Annotated[
        bool,
        typer.Option(
            "--ipv6",
            help="Behind the IPv6 lab instead (root): IPv6-only devices behind a stateful "
            "firewall, no NAT, the ACS dual-stack.",
        ),
    ] = False,
    devices: Annotated[int, typer.Option(min=1, max=50, help="Simulated devices.")] = 3,
    nbi_port: Annotated[
        int,
        typer.Option(
            min=0, max=65535, help="Port of the NBI and the dashboard on 127.0.0.1 (0: any free)."
        ),
    ] = 7557,
) -> None:
    from knock.lab.demo import DemoError
    from knock.lab.netns import LabError

    behind_nat = nat and os.geteuid() == 0
    out = Console()
    previous = signal.signal(signal.SIGTERM, _interrupt)  # unwind, so the lab is torn down
    try:
        with tempfile.TemporaryDirectory(prefix="knock-demo-") as folder:
            status = _run(out, Path(folder), behind_nat, ipv6, devices, nbi_port, once)
    except (DemoError, LabError) as exc:
        hint = "" if behind_nat else f" (is port {nbi_port} taken? try --nbi-port)"
        Console(stderr=True).print(
            Text.assemble(("error: ", "bold red"), f"{exc}{hint}"), soft_wrap=True
        )
        status = 1
    except KeyboardInterrupt:
        status = 0  # Ctrl-C is how the demo ends
    finally:
        signal.signal(signal.SIGTERM, previous)
    raise typer.Exit(status)


def _run(
    out: Console,
    folder: Path,
    behind_nat: bool,
    ipv6: bool,
    devices: int,
    nbi_port: int,
    once: bool,
) -> int:
    from knock.lab.demo import DEVICE, start_demo, start_loopback_demo
    from knock.lab.nat import NatLab
    from knock.lab.netns import LabError

    lab = NatLab(ipv6=ipv6) if behind_nat else None
    kind = "the IPv6 lab" if ipv6 else "the NAT lab"
    if lab is not None:
        try:
            lab.build()
        except LabError as exc:
            out.print(
                f"{kind.capitalize()} cannot be built ({escape(str(exc))}); the demo runs on "
                "127.0.0.1 instead."
            )
            lab = None
    where = "on 127.0.0.1" if lab is None else f"behind {kind}"
    out.print(f"Starting knock serve and {devices} simulated device(s) {where} ...")
    title = f"Connection requests to {DEVICE} {where}"
    if lab is None:
        return _show(out, start_loopback_demo(folder, devices, nbi_port), title, once, nbi_port)
    try:
        return _show(out, start_demo(lab, folder, devices), title, once, nbi_port)
    finally:
        lab.close()


def _show(out: Console, running: Demo, title: str, once: bool, nbi_port: int) -> int:
    from knock.lab.demo import expected_outcomes, outcome_table

    try:
        results = asyncio.run(running.reach_each())
        out.print(outcome_table(title, results))
        lab = running.lab
        expected = expected_outcomes(lab is not None, ipv6=lab is not None and lab.ipv6)
        good = [r["outcome"] for r in results] == expected
        if not good:
            out.print("[bold red]Some outcomes are not the expected ones.[/]")
        if not once:
            asyncio.run(_stay_up(out, running, nbi_port))
    finally:
        running.close()
    return 0 if good else 1


async def _stay_up(out: Console, running: Demo, nbi_port: int) -> None:
    """Print the dashboard's address and wait for Ctrl-C; behind the NAT, a port on this host's
    loopback leads to the NBI inside the lab."""
    from urllib.parse import urlsplit

    from knock.lab.forward import forward

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    address = urlsplit(running.nbi)
    server = None
    url = running.nbi
    if running.lab is not None:
        inside = (address.hostname or "127.0.0.1", address.port or 0)
        server = await forward(running.lab, "pub", ("127.0.0.1", nbi_port), inside)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    out.print(
        f"Dashboard: [bold]{url}/[/]   metrics: {url}/metrics   Ctrl-C stops the demo.",
        highlight=False,
    )
    try:
        await stop.wait()
    finally:
        if server is not None:
            server.close()
    out.print("stopping", highlight=False)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
