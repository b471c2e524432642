"""HostsLab: the machines of a multi-host Knock in network namespaces, built for real.

    machine  address                     runs
    db       192.0.2.10                  PostgreSQL
    acs1     192.0.2.11                  knock serve --workers 2
    acs2     192.0.2.12                  knock serve --workers 2
    xmpp     192.0.2.13                  ejabberd
    lb       192.0.2.1, 203.0.113.10     HAProxy (contrib/haproxy/knock.cfg), nftables for STUN
    nat      203.0.113.1, 198.51.100.1   a home gateway: NAT, and a `knock sim` device itself
    lan      198.51.100.10               a `knock sim` fleet behind the gateway's NAT

The back network 192.0.2.0/24 is a bridge in lb; devices see only 203.0.113.10.

The NAT lab (knock.lab.nat) provides the public side, the gateway and the LAN: its `pub`
namespace is the load balancer, its `nat` namespace the home gateway (a TR-069 device itself,
reachable on its public address, so it takes HTTP connection requests), its `lan` the CPEs
behind it (UDP through STUN, and XMPP). The back network's machines hang off a bridge in lb.

HAProxy cannot carry UDP, so lb forwards STUN statelessly with nftables (knock.lab.stun_lb):
a device's datagrams go to the ACS its public port hashes to, and whatever either ACS sends from
its STUN port leaves with lb's address as source. So the NAT binding a device opened towards
lb:3478 admits a UDP connection request from either ACS: one learns the binding, writes it to
PostgreSQL, and the other sends from the port the binding knows.

Leaving the `with` block stops everything and removes every namespace, whatever happened.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final, TypeVar

from knock.cpe.xmpp_account import device_password
from knock.lab import daemons, netns, stun_lb
from knock.lab.demo import discard, wait_for_line
from knock.lab.nat import NatLab
from knock.lab.netns import LabError

T = TypeVar("T")
log = logging.getLogger("knock.lab")

BACK_NET: Final = ipaddress.IPv4Network("192.0.2.0/24")  # RFC 5737 TEST-NET-1
LB_BACK: Final = "192.0.2.1"
MACHINES: Final = {
    "db": "192.0.2.10",
    "acs1": "192.0.2.11",
    "acs2": "192.0.2.12",
    "xmpp": "192.0.2.13",
}
ACS_MACHINES: Final = ("acs1", "acs2")
BRIDGE: Final = "back0"  # in lb
CWMP_PORT: Final = 7547
NBI_PORT: Final = 7557
STUN_PORT: Final = 3478
XMPP_PORT: Final = 5222
XMPP_DOMAIN: Final = "example.net"
ACS_XMPP_USER: Final = "acs"
ACS_CONFIG: Final = daemons.CONTRIB / "knock" / "knock.toml"  # run as shipped
START_S: Final = 90.0  # a busy 2-core machine may take long to start four ACS workers


@dataclass(frozen=True)
class Fleet:
    """A `knock sim` fleet: where it runs and what it offers."""

    role: str  # "lan" (behind the NAT) or "nat" (the gateway itself)
    prefix: str  # serial prefix
    count: int
    cr: str  # connection-request methods

    def device_ids(self) -> list[str]:
        return [f"00D09E-KnockBox-{self.prefix}{n:06d}" for n in range(1, self.count + 1)]


LAN_FLEET: Final = Fleet("lan", "LAN", 2, "http,udp,xmpp")
GATEWAY_FLEET: Final = Fleet("nat", "GW", 1, "http")


class HostsLab:
    """Build with `with HostsLab() as lab:`; machines are named db, acs1, acs2, xmpp, lb, nat
    (the gateway) and lan (the CPEs)."""

    def __init__(self, fleets: Sequence[Fleet] = (LAN_FLEET, GATEWAY_FLEET)) -> None:
        self.nat = NatLab(lan_hosts=1)
        self.tag = self.nat.tag
        self.fleets = tuple(fleets)
        self.lb_address = self.nat.acs_address  # 203.0.113.10: every device's ACS, STUN, XMPP
        self.gateway_address = self.nat.router_public
        self.cpe_address = self.nat.cpe_address
        self.acs_url = f"http://{self.lb_address}:{CWMP_PORT}/"
        self.nbi_token = secrets.token_urlsafe(24)
        self.cwmp_password = secrets.token_urlsafe(12)
        self._pg_password = secrets.token_urlsafe(18)
        self._xmpp_secret = secrets.token_hex(16)
        self.folder = Path(tempfile.mkdtemp(prefix="knock-hosts-"))
        self.folder.chmod(0o755)  # PostgreSQL and ejabberd, as their users, reach their folders
        self.xmpp_ca = self.folder / "xmpp" / "cert.pem"
        self.lb_admin_socket = self.folder / "haproxy.sock"
        self._children: list[subprocess.Popen[Any]] = []
        self.processes: dict[str, subprocess.Popen[Any]] = {}
        self._built = False

    # -- life cycle ---------------------------------------------------------------------------

    def namespace(self, machine: str) -> str:
        if machine in ("lb", "pub"):
            return self.nat.namespace("pub")
        if machine in ("nat", "lan"):
            return self.nat.namespace(machine)
        if machine in MACHINES:
            return f"{self.tag}-{machine}"
        raise ValueError(
            f"{machine!r} is not a machine of the lab; use {', '.join(self.machines())}"
        )

    @staticmethod
    def machines() -> list[str]:
        return [*MACHINES, "lb", "nat", "lan"]

    def build(self) -> None:
        try:
            daemons.require_programs()
            self.nat.build()
            self._built = True
            self._network()
            self._start_servers()
            self._start_fleets()
        except BaseException:
            self.close()
            raise

    def _ip(self, *args: str) -> None:
        netns.command([self.nat.tools["ip"], *args])

    def _network(self) -> None:
        ip, lb = self.nat.tools["ip"], self.namespace("lb")
        self._ip("-n", lb, "link", "add", BRIDGE, "type", "bridge")
        self._ip("-n", lb, "addr", "add", f"{LB_BACK}/{BACK_NET.prefixlen}", "dev", BRIDGE)
        self._ip("-n", lb, "link", "set", BRIDGE, "up")
        for machine, address in MACHINES.items():
            name = self.namespace(machine)
            netns.command([ip, "netns", "add", name])
            for scope in ("all", "default"):
                netns.write_sysctl(name, f"net.ipv6.conf.{scope}.disable_ipv6", "1")
            self._ip("-n", name, "link", "set", "lo", "up")
            port = f"b-{machine}"
            self._ip(
                "-n", lb, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", name
            )
            self._ip("-n", lb, "link", "set", port, "master", BRIDGE, "up")
            self._ip("-n", name, "addr", "add", f"{address}/{BACK_NET.prefixlen}", "dev", "eth0")
            self._ip("-n", name, "link", "set", "eth0", "up")
            self._ip("-n", name, "route", "add", "default", "via", LB_BACK)
        netns.write_sysctl(lb, "net.ipv4.ip_forward", "1")
        acs = [MACHINES[m] for m in ACS_MACHINES]
        self._nft("lb", stun_lb.ruleset(self.lb_address, acs, str(BACK_NET), STUN_PORT))
        # The gateway's own listeners (its connection-request port) answer on its WAN address,
        # as a router's TR-069 client does; the LAN behind it stays closed.
        self._nft(
            "nat",
            f'insert rule inet knock_lab input iifname "wan0" ip daddr {self.gateway_address} '
            "meta l4proto tcp accept\n",
        )

    def _nft(self, machine: str, script: str) -> None:
        argv = netns.exec_argv(
            self.nat.tools["ip"], self.namespace(machine), [self.nat.tools["nft"], "-f", "-"]
        )
        netns.command(argv, stdin=script)

    def close(self) -> None:
        """Stop everything and remove every namespace. Safe to call twice."""
        problems: list[str] = []
        if self._built:
            running = [c.pid for c in self._children if c.poll() is None]
            netns.stop_processes(running)
            extra = [self.namespace(m) for m in MACHINES]
            problems = netns.remove(self.nat.tools["ip"], extra)
            for child in self._children:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.wait(netns.STOP_GRACE_S)
            self._children.clear()
            self._built = False
        try:
            self.nat.close()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
        if problems:
            raise LabError("the lab was not fully removed: " + "; ".join(problems))

    def __enter__(self) -> HostsLab:
        self.build()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- running things -----------------------------------------------------------------------

    def popen(self, machine: str, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """Start argv on a machine; the lab stops it when it closes."""
        child = subprocess.Popen(
            netns.exec_argv(self.nat.tools["ip"], self.namespace(machine), argv), **kwargs
        )
        self._children.append(child)
        return child

    def run(self, machine: str, argv: Sequence[str], stdin: str | None = None) -> str:
        return netns.command(
            netns.exec_argv(self.nat.tools["ip"], self.namespace(machine), argv),
            stdin=stdin,
            timeout=60,
        )

    async def run_coroutine(self, machine: str, factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Await factory() on an event loop of its own in a thread inside a machine."""
        return await netns.run_coroutine_in(self.namespace(machine), factory)

    def kill_machine(self, machine: str) -> set[int]:
        """SIGKILL every process on the machine at once, as a power cut would; their pids."""
        pids = netns.pids_in(self.nat.tools["ip"], self.namespace(machine))
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return pids

    def lb_command(self, command: str) -> str:
        """One command to HAProxy's runtime API (`show stat`, `set server ... state drain`)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(10)
            sock.connect(str(self.lb_admin_socket))
            sock.sendall(command.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def nbi_url(self, machine: str) -> str:
        return f"http://{MACHINES[machine]}:{NBI_PORT}"

    # -- the servers --------------------------------------------------------------------------

    @property
    def store_url(self) -> str:
        return f"postgresql://knock:{self._pg_password}@{MACHINES['db']}/knock"

    def _start_servers(self) -> None:
        self._start_postgres()
        self._start_ejabberd()
        for machine in ACS_MACHINES:
            self._start_acs(machine)
        self._start_haproxy()

    def _start_postgres(self) -> None:
        root = self.folder / "db"
        root.mkdir()
        for argv in daemons.postgres_init(root, str(BACK_NET)):
            self.run("db", daemons.as_user("postgres", argv))
        self.run("db", daemons.as_user("postgres", daemons.postgres_start(root, MACHINES["db"])))
        psql, sql = daemons.postgres_role(root, self._pg_password)
        self.run("db", daemons.as_user("postgres", psql), stdin=sql)

    def _start_ejabberd(self) -> None:
        root = self.folder / "xmpp"
        self.xmpp_ca = daemons.ejabberd_prepare(
            root, XMPP_DOMAIN, MACHINES["xmpp"], XMPP_PORT, self._xmpp_secret
        )
        argv, env = daemons.ejabberd_command(root)
        self.processes["xmpp"] = self.popen(
            "xmpp", argv, env=env, cwd=root, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self._wait_tcp("xmpp", MACHINES["xmpp"], XMPP_PORT, self.processes["xmpp"])

    def acs_environment(self) -> dict[str, str]:
        """The secrets of /etc/knock/knock.env (docs/deploy.md): never on a command line."""
        return {
            "KNOCK_STORE_URL": self.store_url,
            "KNOCK_NBI_TOKEN": self.nbi_token,
            "KNOCK_CWMP_PASSWORD": self.cwmp_password,
            "KNOCK_XMPP_ACS_PASSWORD": device_password(ACS_XMPP_USER, self._xmpp_secret),
        }

    def acs_overrides(self, machine: str) -> dict[str, str]:
        """What a machine's /etc/knock/knock.env sets beside the secrets, and what the lab runs
        faster than production (quick STUN keep-alives and connection-request answers)."""
        return {
            "KNOCK_NBI_HOST": MACHINES[machine],
            "KNOCK_DATA_DIR": str(self.folder / machine),
            "KNOCK_XMPP_ACS_CA": str(self.xmpp_ca),
            "KNOCK_LOG_LEVEL": "warning",
            "KNOCK_STUN_KEEPALIVE_MIN": "1",
            "KNOCK_STUN_KEEPALIVE_MAX": "2",
            "KNOCK_CR_TIMEOUT": "3",
            "KNOCK_CR_SESSION_WAIT": "15",
        }

    def _start_acs(self, machine: str) -> None:
        log.info("starting knock serve on %s", machine)
        env = {**os.environ, **self.acs_overrides(machine), **self.acs_environment()}
        process = self.popen(
            machine, [sys.executable, "-m", "knock", *acs_arguments(ACS_CONFIG)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self.processes[machine] = process
        _wait_ready(process, "worker pids", f"knock serve on {machine}")

    def _start_haproxy(self) -> None:
        log.info("starting haproxy on lb")
        env = {
            **os.environ,
            "KNOCK_LB_ADDRESS": self.lb_address,
            "KNOCK_ACS1": MACHINES["acs1"],
            "KNOCK_ACS2": MACHINES["acs2"],
            "KNOCK_XMPP": MACHINES["xmpp"],
            "KNOCK_LB_ADMIN_SOCKET": str(self.lb_admin_socket),
        }
        process = self.popen(
            "lb", daemons.haproxy_command(), env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=(self.folder / "haproxy.log").open("w"),
        )  # fmt: skip
        self.processes["lb"] = process
        self._wait_tcp("lb", self.lb_address, CWMP_PORT, process)

    def _wait_tcp(self, machine: str, host: str, port: int, process: subprocess.Popen[Any]) -> None:
        """Until host:port accepts a connection from inside the machine, or the process died."""
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline and process.poll() is None:
            sock = netns.socket_in(self.namespace(machine), socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.settimeout(1.0)
                sock.connect((host, port))
                return
            except OSError:
                time.sleep(0.05)  # polling a port: the server says nothing when it listens
            finally:
                sock.close()
        raise LabError(
            f"{machine}: nothing listens on {host}:{port} (exit {process.poll()}); its log is "
            f"in {self.folder}"
        )

    # -- the devices --------------------------------------------------------------------------

    def _start_fleets(self) -> None:
        for fleet in self.fleets:
            self._start_fleet(fleet)

    def _start_fleet(self, fleet: Fleet) -> None:
        log.info("starting knock sim %s on %s", fleet.prefix, fleet.role)
        host = self.cpe_address if fleet.role == "lan" else self.gateway_address
        argv = [
            sys.executable, "-m", "knock", "sim", "--acs", self.acs_url,
            "--count", str(fleet.count), "--serial-prefix", fleet.prefix, "--cr", fleet.cr,
            "--cr-host", host, "--acs-username", "cpe", "--cr-rate-limit", "0",
            "--periodic-interval", "0", "--no-live",
        ]  # fmt: skip
        ready = f"online={fleet.count} in_session=0"
        if "xmpp" in fleet.cr:
            argv += [
                "--xmpp-server",
                f"{self.lb_address}:{XMPP_PORT}",
                "--xmpp-domain",
                XMPP_DOMAIN,
            ]
            argv += ["--xmpp-tls", "--xmpp-ca", str(self.xmpp_ca)]
            ready += f" xmpp_online={fleet.count}"
        if "udp" in fleet.cr:
            ready = ready.replace("in_session=0", f"in_session=0 stun_bound={fleet.count}")
        env = {**os.environ, "KNOCK_SIM_ACS_PASSWORD": self.cwmp_password}
        if "xmpp" in fleet.cr:
            env["KNOCK_SIM_XMPP_PASSWORD_SECRET"] = self._xmpp_secret
        process = self.popen(fleet.role, argv, env=env, stdout=subprocess.PIPE, text=True)
        self.processes[f"sim-{fleet.prefix}"] = process
        _wait_ready(process, ready, f"knock sim {fleet.prefix} on {fleet.role}")


def acs_arguments(config: Path) -> list[str]:
    """`knock` arguments of an ACS machine, as contrib/systemd/knock.service gives them."""
    return ["serve", "--config", str(config)]


def _wait_ready(process: subprocess.Popen[str], wanted: str, who: str) -> None:
    """Until the process prints `wanted`, then read on in a thread (a full pipe would block its
    printing). A process silent past START_S is killed, which ends the wait with its last
    words: a read of its output alone would wait for ever."""
    watchdog = threading.Timer(START_S, process.kill)
    watchdog.start()
    try:
        wait_for_line(process.stdout, wanted, START_S, who)
    finally:
        watchdog.cancel()
    threading.Thread(target=discard, args=(process.stdout,), daemon=True).start()
