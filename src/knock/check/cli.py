"""`knock check`: the conformance suite from the command line."""

from __future__ import annotations

import asyncio
import logging
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Final, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from knock.hosts import authority

if TYPE_CHECKING:
    from knock.server import Running

CHECK_HELP: Final = (
    "Check a CPE's connection requests (HTTP, UDP/STUN, XMPP) against TR-069, and its RPCs "
    "(Annex A) in sessions each method's requests open (rpc.http.*, rpc.udp.*, rpc.xmpp.*) and "
    "its Informs (inform.*): start an ACS with "
    "its own STUN and XMPP servers, wait for the device to Inform, provision it, run the cases "
    "and give a verdict for each, with the messages exchanged as evidence.\n\n"
    "Ports (all on --host): CWMP tcp --cwmp-port (7547), STUN udp --stun-port (3478), XMPP tcp "
    "--xmpp-port (5222), --xmpp-tls-port (5223, direct TLS). The device must reach them, and "
    "Knock must reach the device's ConnectionRequestURL (HTTP) and its UDP port through any "
    "NAT. The ACS is always its own, in this process: the cases hold sessions open, tap the "
    "STUN server and restart the XMPP server, which a running knock serve does not offer, so "
    "stop one that holds these ports (or pick others).\n\n"
    "Point the device at the ACS: set ManagementServer.URL to the URL printed at start (or give "
    "--url when the device reaches this host by another name), ACS authentication off (or as "
    "in --config), then reboot it or wait for its periodic Inform. Knock sets the "
    "connection-request credentials, STUN and XMPP settings itself.\n\n"
    "What a lab varies: --xmpp-tls or --xmpp-lab-plaintext, --xmpp-connect, "
    "--stun-require-auth, --udp-delay, --udp-cr-repeat, --udp-cr-interval (knock serve's "
    "names); waits: --inform-within (TR-069's 30 s), "
    "--quiet-for, --rate-gap. "
    "Verdicts: pass, warn (a SHOULD the device does not do), fail, skipped (a method the "
    "device does not offer), not run (the device stopped responding in an earlier case). The "
    "exit status is 0 when cases only passed, warned or were skipped, 1 when any failed or was "
    "not run, 2 on a usage or start-up error."
)
CHECK_EPILOG: Final = (
    "Examples: knock check --list  |  knock check --html report.html --junit junit.xml  |  "
    "knock check 'http.*' datamodel.cr-url-http  |  against the simulator: knock check "
    "--host 127.0.0.1 & knock sim --acs http://127.0.0.1:7547/ --count 1 --cr http,udp,xmpp "
    "--ca THE-LAB-CA-IT-PRINTED"
)
err = Console(stderr=True)
T = TypeVar("T")


def _renamed(old: str, new: str, given: T | None, value: T) -> T:
    """The value of an option's old name if one was given, with a word to use the new one."""
    if given is None:
        return value
    err.print(f"warning: {old} is now {new}, the name knock serve uses; {old} will go away")
    return given


def register(app: typer.Typer) -> None:
    """Add `knock check` to the `knock` command line."""
    app.command("check", help=CHECK_HELP, epilog=CHECK_EPILOG)(check)


def check(
    cases: Annotated[
        list[str] | None,
        typer.Argument(help="Case ids or globs (http.*, *nonce*); every case when none."),
    ] = None,
    list_cases: Annotated[
        bool, typer.Option("--list", help="Print the cases, their requirements, and exit.")
    ] = False,
    device: Annotated[
        str | None,
        typer.Option(help="Device id to wait for (OUI-ProductClass-Serial); the first to come."),
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="TOML file of ACS settings (knock serve).")
    ] = None,
    host: Annotated[
        str,
        typer.Option(
            help="Address CWMP, STUN and XMPP bind: one or several, comma-separated; :: alone "
            "listens on IPv4 and IPv6."
        ),
    ] = "0.0.0.0",
    url: Annotated[
        str, typer.Option(help="ACS URL the device uses, when not http://HOST:CWMP-PORT/.")
    ] = "",
    cwmp_port: Annotated[int, typer.Option(help="CWMP port.")] = 7547,
    stun_port: Annotated[int, typer.Option(help="STUN port (udp).")] = 3478,
    xmpp_port: Annotated[int, typer.Option(help="XMPP client port.")] = 5222,
    xmpp_tls_port: Annotated[
        int, typer.Option(help="XMPP direct-TLS port; 0 picks a free one.")
    ] = 5223,
    xmpp_domain: Annotated[str, typer.Option(help="XMPP domain of the built-in server.")] = "",
    xmpp_tls: Annotated[
        bool,
        typer.Option(
            "--xmpp-tls/--xmpp-lab-plaintext",
            help="Require TLS on the device's XMPP connection (UseTLS true), or, in a lab, "
            "accept it in clear (UseTLS false).",
        ),
    ] = True,
    xmpp_connect: Annotated[
        str,
        typer.Option(help="XMPP ServerConnectAlgorithm the cases set: DNS-SRV, DNS, ServerTable."),
    ] = "ServerTable",
    stun_require_auth: Annotated[
        bool, typer.Option(help="The STUN server demands MESSAGE-INTEGRITY (401 first).")
    ] = True,
    udp_delay: Annotated[
        float, typer.Option(help="Seconds between the STUN binding and a UDP CR.")
    ] = 0.0,
    udp_cr_repeat: Annotated[
        int,
        typer.Option(help="Copies of a UDP CR; also the tries of a CR before it counts as lost."),
    ] = 3,
    udp_cr_interval: Annotated[
        float, typer.Option(help="Seconds between those copies and tries.")
    ] = 1.0,
    # The names before knock serve's were adopted: they still work, hidden from --help.
    stun_auth: Annotated[bool | None, typer.Option(hidden=True)] = None,
    cr_attempts: Annotated[int | None, typer.Option(hidden=True)] = None,
    cr_interval: Annotated[float | None, typer.Option(hidden=True)] = None,
    inform_within: Annotated[
        float, typer.Option(help="Seconds a CR's session may take to begin.")
    ] = 30.0,
    quiet_for: Annotated[
        float, typer.Option(help="Seconds watched for a session that must not come.")
    ] = 10.0,
    rate_gap: Annotated[
        float, typer.Option(help="Seconds from a session to the next CR that should pass.")
    ] = 5.0,
    schedule_delay: Annotated[
        int,
        typer.Option(
            min=1,
            help="DelaySeconds of the ScheduleInform cases; the Inform may come 1 s early to "
            "5 s late.",
        ),
    ] = 5,
    periodic_interval: Annotated[
        int,
        typer.Option(
            min=3,
            help="PeriodicInformInterval session.periodic-inform sets; the case watches two "
            "intervals.",
        ),
    ] = 10,
    retry_wait: Annotated[
        int,
        typer.Option(
            min=0,
            max=65535,
            help="CWMPRetryMinimumWaitInterval session.retry-backoff sets while it times the "
            "device's retries (set back after); 0 keeps the device's own (TR-069's default 5: "
            "the case waits about 25 s).",
        ),
    ] = 0,
    download_file: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="The file the Download cases serve (default 4096 random bytes): one the "
            "device takes for --download-type without harm.",
        ),
    ] = None,
    download_type: Annotated[
        str, typer.Option(help="FileType of the Download cases (TR-069 Annex A.3.2.8).")
    ] = "2 Web Content",
    notify_parameter: Annotated[
        str,
        typer.Option(
            help="The parameter rpc.*.active-notify sets active notification on: one that "
            "changes on its own within seconds, relative to the data model's root or a full "
            "name (UpTime changes each second; a device may refuse it with 9009, then the "
            "case is skipped).",
        ),
    ] = "DeviceInfo.UpTime",
    case_timeout: Annotated[float, typer.Option(help="Seconds a case may run.")] = 120.0,
    device_within: Annotated[
        float, typer.Option(help="Seconds to wait for the device's first Inform.")
    ] = 600.0,
    junit: Annotated[Path | None, typer.Option(help="Write JUnit XML here.")] = None,
    html: Annotated[Path | None, typer.Option(help="Write the HTML report here.")] = None,
) -> None:
    from knock.check import report_console
    from knock.check.cases import select
    from knock.check.options import CheckOptions, ConnectAlgorithm

    out = Console()
    try:
        chosen = select(cases or ())
    except KeyError as exc:
        raise typer.BadParameter(str(exc.args[0]), param_hint="CASES") from None
    if list_cases:
        report_console.listing(out, chosen)
        return
    try:
        connect = ConnectAlgorithm(xmpp_connect)
    except ValueError:
        raise typer.BadParameter(
            "one of " + ", ".join(a.value for a in ConnectAlgorithm), param_hint="--xmpp-connect"
        ) from None
    options = CheckOptions(
        inform_within=inform_within,
        quiet_for=quiet_for,
        case_timeout=case_timeout,
        device_within=device_within,
        rate_gap=rate_gap,
        xmpp_tls=xmpp_tls,
        xmpp_connect=connect,
        stun_auth=_renamed("--stun-auth", "--stun-require-auth", stun_auth, stun_require_auth),
        udp_delay=udp_delay,
        cr_attempts=_renamed("--cr-attempts", "--udp-cr-repeat", cr_attempts, udp_cr_repeat),
        cr_interval=_renamed("--cr-interval", "--udp-cr-interval", cr_interval, udp_cr_interval),
        schedule_delay=schedule_delay,
        periodic_interval=periodic_interval,
        retry_wait=retry_wait,
        download_file=str(download_file or ""),
        download_type=download_type,
        notify_parameter=notify_parameter,
    )
    from knock.check.device import NoDevice
    from knock.check.report_html import html_report
    from knock.check.report_junit import junit_xml
    from knock.check.run import run_check
    from knock.config import ConfigError, Settings, load_settings

    with tempfile.TemporaryDirectory(prefix="knock-check-") as scratch:
        try:
            settings = load_settings(config, {})
            settings = replace(
                settings,
                cwmp_host=host,
                cwmp_port=cwmp_port,
                cwmp_url=url or settings.cwmp_url,
                stun_host=host,
                stun_port=stun_port,
                xmpp_host=host,
                xmpp_port=xmpp_port,
                xmpp_tls_port=xmpp_tls_port,
                xmpp_domain=xmpp_domain or settings.xmpp_domain,
                nbi_port=0,  # not used by the check; never in the way of a knock serve
                files_host=host,
                files_port=0,
                # A fresh store and folder, unless the configuration names its own: the device
                # then bootstraps anew and no production database is touched by accident.
                store_url=settings.store_url
                if settings.store_url != Settings.store_url
                else f"sqlite:///{Path(scratch) / 'check.db'}",
                data_dir=settings.data_dir
                if settings.data_dir != Settings.data_dir
                else str(Path(scratch) / "data"),
            )
            logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")

            def started(acs: Running) -> None:
                out.print(f"Knock check: set the device's ManagementServer.URL to {acs.acs_url}")
                if acs.stun is not None:
                    out.print(f"STUN udp {authority(*acs.stun.address)}")
                if acs.xmpp is not None:
                    out.print(
                        f"XMPP tcp {authority(host, acs.xmpp.port)} ({settings.xmpp_domain}), "
                        f"certificate {acs.xmpp.certificate}"
                    )
                if acs.files_url is not None:
                    out.print(f"Files {acs.files_url} (the Download cases fetch from it)")
                if acs.ca is not None:
                    out.print(
                        f"Lab CA {acs.ca.cert_path}: the device must trust it (knock sim --ca "
                        f"{acs.ca.cert_path})"
                    )
                out.print(f"Waiting up to {device_within:g} s for a device to Inform ...")

            run = asyncio.run(
                run_check(
                    settings,
                    options,
                    chosen,
                    device_id=device,
                    on_started=started,
                    on_device=lambda d: out.print(f"Device {d} provisioned; {len(chosen)} cases"),
                    on_result=lambda r: out.print(report_console.case_line(r)),
                )
            )
        except (ConfigError, NoDevice) as exc:
            err.print(f"[bold red]error:[/] {escape(str(exc))}")
            raise typer.Exit(2) from None
        except OSError as exc:
            err.print(f"[bold red]error:[/] {escape(settings.listen_error(exc))}")
            raise typer.Exit(2) from None
    report_console.summary(out, run.results, run.device_id)
    out.print(report_console.timing(run.results, run.wall, run.device_after))
    if junit is not None:
        junit.write_bytes(junit_xml(run.results, run.device_id, run.started))
        out.print(f"JUnit XML: {junit}")
    if html is not None:
        html.write_text(html_report(run.results, run.device_id, run.acs_url, run.started), "utf-8")
        out.print(f"HTML report: {html}")
    from knock.check.runner import exit_code

    raise typer.Exit(exit_code(run.results))
