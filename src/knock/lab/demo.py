"""Connection requests through the NAT lab: `knock serve` in pub, a `knock sim` device in lan.

Shared by `knock lab nat --demo` and the NAT tests, so what a newcomer watches is what CI proves.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

from knock.lab.nat import NatLab
from knock.nbi.client import NbiClient

DEVICE: Final = "00D09E-KnockBox-SIM000001"
NBI: Final = "http://127.0.0.1:7557"  # the NBI listens on the public side's own loopback
BOOT_S: Final = 60.0


class DemoError(RuntimeError):
    """The ACS or the device did not come up; the message says which and what it printed."""


@dataclass
class NatDemo:
    lab: NatLab
    serve: subprocess.Popen[str]
    sim: subprocess.Popen[str]

    async def reach(self, via: str | None, wait_s: float = 15) -> dict[str, Any]:
        """A connection request through the NBI, sent from the public side: outcome, method,
        latency and every attempt, as `POST /devices/<id>/connection-request` answers."""

        async def ask() -> dict[str, Any]:
            async with NbiClient(NBI) as nbi:
                return await nbi.connection_request(DEVICE, via, wait_s)

        return await self.lab.run_coroutine("pub", ask)

    def close(self) -> None:
        for process in (self.sim, self.serve):
            process.terminate()
            process.wait(10)


def start_demo(lab: NatLab, folder: Path) -> NatDemo:
    """Start the ACS on the public side and one device with every method behind the NAT; return
    once the device is provisioned, bound through the NAT and logged in to XMPP."""
    acs = lab.acs_address
    serve = lab.python(
        "pub", "-m", "knock", "serve",
        "--cwmp-host", acs, "--stun-host", acs, "--xmpp-host", acs,
        "--nbi-host", "127.0.0.1", "--store-url", f"sqlite:///{folder / 'knock.db'}",
        "--data-dir", str(folder / "data"), "--log-level", "warning",
        # HTTP first, so that the dispatcher's fallback shows; quick keep-alives and answers.
        "--cr-order", "http,udp,xmpp", "--cr-timeout", "2", "--cr-session-wait", "10",
        "--stun-keepalive-min", "1", "--stun-keepalive-max", "2",
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    sim = lab.python(
        "lan", "-m", "knock", "sim", "--acs", f"http://{acs}:7547/", "--count", "1",
        "--cr", "http,udp,xmpp", "--cr-host", lab.cpe_address, "--cr-rate-limit", "0",
        "--periodic-interval", "0", "--no-live",
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    demo = NatDemo(lab, serve, sim)
    try:
        _wait_for_line(serve.stdout, "XMPP", 20, "knock serve")
        # Provisioned, bound through the NAT, logged in, and both reported (4 VALUE CHANGE).
        _wait_for_line(
            sim.stdout, "online=1 in_session=0 stun_bound=1 xmpp_online=1", BOOT_S, "knock sim"
        )
    except BaseException:
        demo.close()
        raise
    return demo


def _wait_for_line(stream: IO[str] | None, wanted: str, seconds: float, who: str) -> None:
    """Read lines until one holds every word of *wanted* (`key=value` pairs or a word)."""
    assert stream is not None
    words = wanted.split()
    deadline = time.monotonic() + seconds
    seen = ""
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        seen = line.strip()
        if all(f" {word} " in f" {seen} " for word in words):
            return
    raise DemoError(f"{who} did not get to {wanted!r} within {seconds:g} s; last said: {seen!r}")
