"""The demo: `knock serve` and a small `knock sim` fleet with every method, then one connection
request by each method and one by the dispatcher's choice.

Behind the NAT lab (`knock serve` in pub, the fleet in lan) or on loopback. Shared by `knock
demo`, `knock lab nat --demo` and the NAT tests, so what a newcomer watches is what CI proves.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final

from rich.table import Table

from knock.labca import CA_CERT
from knock.nbi.client import NbiClient

if TYPE_CHECKING:
    from knock.lab.nat import NatLab

DEVICE: Final = "00D09E-KnockBox-SIM000001"
NBI_PORT: Final = 7557
BOOT_S: Final = 60.0
# (method or None for the dispatcher's choice, seconds to wait): HTTP is given less, since
# behind the NAT it can only fail.
ASKS: Final[tuple[tuple[str | None, float], ...]] = (
    ("http", 5.0),
    ("udp", 15.0),
    ("xmpp", 15.0),
    (None, 15.0),
)
CR_ORDER: Final = "http,udp,xmpp"  # HTTP first, so that the dispatcher's fallback shows


class DemoError(RuntimeError):
    """The ACS or the fleet did not come up; the message says which and what it printed."""


Launch = Callable[[str, Sequence[str]], "subprocess.Popen[str]"]
"""(namespace role, `knock` arguments) -> the running command, its stdout piped as text."""


@dataclass
class Demo:
    serve: subprocess.Popen[str]
    sim: subprocess.Popen[str]
    nbi: str  # the NBI's URL, as seen from the ACS's side
    lab: NatLab | None = None  # None: everything on this host's loopback

    async def reach(self, via: str | None, wait_s: float = 15) -> dict[str, Any]:
        """A connection request through the NBI, sent from the ACS's side: outcome, method,
        latency and every attempt, as `POST /devices/<id>/connection-request` answers."""

        async def ask() -> dict[str, Any]:
            async with NbiClient(self.nbi) as nbi:
                return await nbi.connection_request(DEVICE, via, wait_s)

        if self.lab is None:
            return await ask()
        return await self.lab.run_coroutine("pub", ask)

    async def reach_each(self) -> list[dict[str, Any]]:
        """One request per entry of ASKS, in order."""
        return [await self.reach(via, wait_s) for via, wait_s in ASKS]

    def close(self) -> None:
        for process in (self.sim, self.serve):
            process.terminate()
            process.wait(10)


def start_demo(lab: NatLab, folder: Path, devices: int = 1) -> Demo:
    """The ACS on the public side and *devices* devices with every method behind the NAT."""

    def launch(role: str, args: Sequence[str]) -> subprocess.Popen[str]:
        return lab.python(role, "-m", "knock", *args, stdout=subprocess.PIPE, text=True)

    return _start(launch, folder, lab.acs_hosts, lab.cpe_address, NBI_PORT, devices, lab)


def start_loopback_demo(folder: Path, devices: int = 3, nbi_port: int = NBI_PORT) -> Demo:
    """The ACS and *devices* devices with every method on 127.0.0.1; only the NBI (and so the
    dashboard) has a fixed port, every other listener a free one."""

    def launch(role: str, args: Sequence[str]) -> subprocess.Popen[str]:
        command = [sys.executable, "-m", "knock", *args]
        return subprocess.Popen(command, stdout=subprocess.PIPE, text=True)

    return _start(launch, folder, "127.0.0.1", "127.0.0.1", nbi_port, devices, None)


def expected_outcomes(behind_nat: bool, ipv6: bool = False) -> list[str]:
    """Per entry of ASKS: behind the NAT, HTTP to the device's private address cannot connect;
    behind the IPv6 lab's firewall it reaches the device's own address, where the firewall drops
    it unanswered (a timeout). UDP and XMPP get through and the dispatcher falls back to UDP."""
    http = "timeout" if ipv6 else "unreachable" if behind_nat else "delivered"
    return [http] + ["delivered"] * (len(ASKS) - 1)


def outcome_table(title: str, results: Sequence[dict[str, Any]]) -> Table:
    table = Table(title=title)
    for column in ("asked", "outcome", "by", "latency", "attempts"):
        table.add_column(column)
    for (via, _), result in zip(ASKS, results, strict=True):
        latency = result["latencyMs"]
        table.add_row(
            via or f"any (cr_order {CR_ORDER})",
            result["outcome"],
            result["method"] or "",
            "" if latency is None else f"{latency:.0f} ms",
            "; ".join(f"{a['method']}: {a['outcome']} ({a['detail']})" for a in result["attempts"]),
        )
    return table


def _start(
    launch: Launch,
    folder: Path,
    acs_host: str,
    cpe_host: str,
    nbi_port: int,
    devices: int,
    lab: NatLab | None,
) -> Demo:
    """Start the ACS, then the fleet at the URL it printed; return once every device is
    provisioned, bound through STUN and logged in to XMPP."""
    # Devices authenticate as in production (and the ACS does not warn that anyone could pose
    # as one); the pair is made anew for each run.
    acs_user, acs_password = "demo", secrets.token_urlsafe(12)
    serve = launch(
        "pub",
        [
            "serve",
            "--cwmp-host", acs_host, "--cwmp-port", "0", "--cwmp-auth", "digest",
            "--cwmp-username", acs_user, "--cwmp-password", acs_password,
            "--stun-host", acs_host, "--stun-port", "0",
            "--xmpp-host", acs_host, "--xmpp-port", "0", "--xmpp-tls-port", "0",
            "--nbi-host", "127.0.0.1", "--nbi-port", str(nbi_port),
            "--files-host", acs_host, "--files-port", "0",
            "--store-url", f"sqlite:///{folder / 'knock.db'}",
            "--data-dir", str(folder / "data"), "--log-level", "warning",
            # Quick keep-alives and answers.
            "--cr-order", CR_ORDER, "--cr-timeout", "2", "--cr-session-wait", "10",
            "--stun-keepalive-min", "1", "--stun-keepalive-max", "2",
        ],
    )  # fmt: skip
    sim: subprocess.Popen[str] | None = None
    try:
        acs_url = wait_for_line(serve.stdout, "point CPEs at", 20, "knock serve").split()[-1]
        nbi = wait_for_line(serve.stdout, "NBI:", 5, "knock serve").split()[-1].rstrip("/")
        wait_for_line(serve.stdout, "XMPP", 5, "knock serve")
        sim = launch(
            "lan",
            [
                "sim", "--acs", acs_url, "--count", str(devices),
                "--acs-username", acs_user, "--acs-password", acs_password,
                "--cr", "http,udp,xmpp", "--cr-host", cpe_host, "--cr-rate-limit", "0",
                "--periodic-interval", "0", "--no-live",
                # The lab CA installed on the devices: they check the XMPP server's certificate.
                "--ca", str(folder / "data" / CA_CERT),
            ],
        )  # fmt: skip
        # Provisioned, bound, logged in, and both reported (4 VALUE CHANGE).
        ready = f"online={devices} in_session=0 stun_bound={devices} xmpp_online={devices}"
        wait_for_line(sim.stdout, ready, BOOT_S, "knock sim")
    except BaseException:
        for process in (sim, serve):
            if process is not None:
                process.terminate()
                process.wait(10)
        raise
    for process in (serve, sim):
        # Read on, or a demo left up fills the pipe and its printing blocks the process.
        threading.Thread(target=discard, args=(process.stdout,), daemon=True).start()
    return Demo(serve, sim, nbi, lab)


def discard(stream: IO[str] | None) -> None:
    assert stream is not None
    for _ in stream:
        pass


def wait_for_line(stream: IO[str] | None, wanted: str, seconds: float, who: str) -> str:
    """Read lines until one holds every word of *wanted* (`key=value` pairs or a word)."""
    assert stream is not None
    words = wanted.split()
    deadline = time.monotonic() + seconds
    seen: list[str] = []
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        seen = [*seen[-9:], line.rstrip()]
        if all(f" {word} " in f" {seen[-1].strip()} " for word in words):
            return seen[-1].strip()
    said = "\n".join(seen)
    raise DemoError(f"{who} did not get to {wanted!r} within {seconds:g} s; last said:\n{said}")
