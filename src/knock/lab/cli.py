"""`knock lab nat` and `knock lab clean`: the NAT lab from the command line."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Final, NoReturn

import typer
from rich.console import Console
from rich.text import Text

if TYPE_CHECKING:
    from knock.lab.nat import NatLab

LAB_HELP: Final = "Labs that put Knock's connection requests through real network conditions."
NAT_HELP: Final = (
    "Build a real NAT in network namespaces (root only) and show it: pub, the ACS side "
    "(203.0.113.10); nat, a router that masquerades the LAN onto 203.0.113.1 and lets in only "
    "replies to connections the LAN opened (an address-and-port-restricted NAT); lan, the CPEs "
    "(198.51.100.10 and up, default route via 198.51.100.1). pub has no route to the LAN.\n\n"
    "What it is for: watch an HTTP connection request to a CPE's private address fail while "
    "UDP (sent from the STUN server's own socket) and XMPP connection requests get through. "
    "--demo does it all: `knock serve` in pub, a `knock sim` device with every method in lan, "
    "one connection request by each method and one by the dispatcher's own choice, a table of "
    "the outcomes, then teardown.\n\n"
    "Without --exec the lab stays up until Ctrl-C; meanwhile `ip netns exec NAMESPACE CMD` "
    "runs anything inside it. Everything is torn down on exit. Only documentation addresses "
    "(RFC 5737) are used and nothing is routed to or from the host.\n\n"
    "--ipv6 builds the IPv6 lab instead: pub dual-stack (2001:db8:1::a and 203.0.113.10), lan "
    "IPv6-only CPEs with addresses of their own (2001:db8:2::a and up), and between them no NAT "
    "but a stateful firewall (replies and a CPE's open pinholes in, new connections dropped), "
    "as operators deploy IPv6. There the HTTP request reaches the CPE's address and is dropped; "
    "UDP and XMPP get through (2001:db8::/32 documentation addresses only)."
)
NAT_EPILOG: Final = (
    "Examples: knock lab nat --exec lan -- python3 -c 'print(1)'  |  knock lab nat --lan-hosts 10"
)
CLEAN_HELP: Final = (
    "Delete the namespaces left by labs whose process was killed (kill -9, a crash); live labs "
    "are left alone. Every new lab does this first, too."
)
ROLE_NAMES: Final = ("pub", "nat", "lan")
HOSTS_HELP: Final = (
    "Build Knock on several machines in network namespaces (root only) and keep it up until "
    "Ctrl-C: db (PostgreSQL, 192.0.2.10), acs1 and acs2 (`knock serve --workers 2`, 192.0.2.11 "
    "and .12), xmpp (ejabberd, 192.0.2.13), lb (HAProxy with contrib/haproxy/knock.cfg and "
    "nftables for STUN; public 203.0.113.10), nat (a home gateway at 203.0.113.1 running a "
    "`knock sim` device itself) and lan (a `knock sim` fleet behind its NAT). Needs the Debian "
    "packages postgresql, ejabberd and haproxy. docs/deploy.md explains each piece; "
    "`ip netns exec NAMESPACE CMD` runs anything on a machine. Everything is torn down on exit."
)


def register(app: typer.Typer) -> None:
    """Add the `knock lab` group to the `knock` command line."""
    lab = typer.Typer(help=LAB_HELP, no_args_is_help=True)
    lab.command("nat", help=NAT_HELP, epilog=NAT_EPILOG)(nat)
    lab.command("hosts", help=HOSTS_HELP)(hosts)
    lab.command("clean", help=CLEAN_HELP)(clean)
    app.add_typer(lab, name="lab")


def nat(
    command: Annotated[
        list[str] | None,
        typer.Argument(help="With --exec: the command to run, after `--`.", show_default=False),
    ] = None,
    exec_in: Annotated[
        str | None,
        typer.Option(
            "--exec",
            metavar="NAMESPACE",
            help="Run COMMAND in pub, nat or lan, tear the lab down and exit with its status.",
        ),
    ] = None,
    lan_hosts: Annotated[
        int, typer.Option(min=1, max=200, help="LAN addresses, 198.51.100.10 upwards.")
    ] = 1,
    pub_hosts: Annotated[
        int, typer.Option(min=1, max=200, help="Public-side addresses, 203.0.113.10 upwards.")
    ] = 1,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Do not print the table.")] = False,
    demo: Annotated[
        bool,
        typer.Option(
            "--demo",
            help="Run the ACS and a device in the lab and show a connection request by each "
            "method: HTTP fails, UDP and XMPP get through.",
        ),
    ] = False,
    ipv6: Annotated[
        bool,
        typer.Option(
            "--ipv6", help="The IPv6 lab: IPv6-only CPEs behind a stateful firewall, no NAT."
        ),
    ] = False,
) -> None:
    if exec_in is not None and exec_in not in ROLE_NAMES:
        raise typer.BadParameter(f"{exec_in!r} is not a namespace; use pub, nat or lan")
    if demo and exec_in is not None:
        raise typer.BadParameter("--demo and --exec are alternatives: give one")
    if (exec_in is None) != (not command):
        raise typer.BadParameter("--exec NAMESPACE and a command after `--` go together")
    from knock.lab.nat import NatLab  # here, so `knock --help` does not load the lab
    from knock.lab.netns import LabError
    from knock.lab.view import lab_table, rules_table

    # With --exec, stdout belongs to the command: the table goes to stderr.
    out = Console(stderr=exec_in is not None)
    try:
        with (
            _sigterm_as_interrupt(),
            NatLab(lan_hosts=lan_hosts, pub_hosts=pub_hosts, ipv6=ipv6) as lab,
        ):
            if not quiet:
                out.print(lab_table(lab), rules_table(lab))
            if exec_in is not None and command:
                status = lab.popen(exec_in, command).wait()
            elif demo:
                status = _demo(out, lab)
            else:
                _wait_for_stop(out, lab.namespace("pub"))
                status = 0
    except LabError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        status = 130  # the shell's convention for "stopped by SIGINT"
    raise typer.Exit(status)


def _demo(out: Console, lab: NatLab) -> int:
    """0 when HTTP failed and UDP and XMPP were delivered, as behind a NAT (or the IPv6 lab's
    firewall) they should."""
    import asyncio
    import tempfile
    from pathlib import Path

    from knock.lab.demo import DEVICE, expected_outcomes, outcome_table, start_demo

    out.print("Starting knock serve in pub and a knock sim device in lan ...", highlight=False)
    with tempfile.TemporaryDirectory(prefix="knock-lab-demo-") as folder:
        running = start_demo(lab, Path(folder))
        try:
            results = asyncio.run(running.reach_each())
        finally:
            running.close()
    where = "the IPv6 firewall" if lab.ipv6 else "the NAT"
    out.print(outcome_table(f"Connection requests to {DEVICE} behind {where}", results))
    expected = expected_outcomes(behind_nat=True, ipv6=lab.ipv6)
    return 0 if [r["outcome"] for r in results] == expected else 1


def hosts(
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Do not print the table.")] = False,
) -> None:
    from knock.lab.hosts import HostsLab
    from knock.lab.netns import LabError
    from knock.lab.view import hosts_table

    out = Console()
    try:
        with _sigterm_as_interrupt():
            out.print("Building the machines (about 30 s) ...", highlight=False)
            with HostsLab() as lab:
                if not quiet:
                    out.print(hosts_table(lab))
                token = lab.folder / "nbi-token"
                token.write_text(lab.nbi_token)
                token.chmod(0o600)
                out.print(
                    f"NBIs: {lab.nbi_url('acs1')}/ and {lab.nbi_url('acs2')}/ (from lb's "
                    f"namespace), bearer token in {token}",
                    highlight=False,
                )
                _wait_for_stop(out, lab.namespace("acs1"))
    except LabError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def clean() -> None:
    from knock.lab.netns import LabError
    from knock.lab.stale import clean_stale

    try:
        removed = clean_stale()
    except LabError as exc:
        _fail(str(exc))
    print("\n".join(f"removed {name}" for name in removed) or "no stale labs")


def _wait_for_stop(out: Console, example: str) -> None:
    """Wait for Ctrl-C or SIGTERM: the ordinary way to end the lab, so not an error."""
    stopped = threading.Event()

    def stop(signum: int, frame: object) -> None:
        stopped.set()

    # A handler that only sets a flag, not sigwait with the signals blocked: the lab's own threads
    # were started earlier and do not block them, and a stop one of them took was raised as
    # KeyboardInterrupt wherever the main thread then was (exit 130 instead of a teardown).
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        out.print(
            f"Lab up. Try `ip netns exec {example} bash`. Ctrl-C tears it down.", highlight=False
        )
        # Python runs handlers between bytecodes of the main thread: wake up to let it.
        while not stopped.wait(0.2):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
    out.print("tearing down", highlight=False)


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM would end the process without unwinding, leaving the lab behind: make it unwind
    like Ctrl-C does."""

    def interrupt(signum: int, frame: object) -> NoReturn:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def _fail(message: str) -> NoReturn:
    Console(stderr=True).print(Text.assemble(("error: ", "bold red"), message), soft_wrap=True)
    raise typer.Exit(1)
