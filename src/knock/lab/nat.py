"""NatLab: three network namespaces, an ACS side, a NAT router and a LAN of CPEs, built for real
so connection requests meet a real address-and-port-restricted NAT.

    with NatLab(lan_hosts=3) as lab:
        acs = lab.python("pub", "-m", "knock", "serve", "--cwmp-host", lab.acs_address)
        sim = lab.python("lan", "-m", "knock", "sim", "--acs", f"http://{lab.acs_address}:7547/")
        stun = lab.socket("pub")  # a socket in pub, for this process's own event loop

The ACS sees every CPE as lab.router_public (203.0.113.1) on a port from lab.port_range, and
cannot reach lab.cpe_address (198.51.100.10) at all; lab.rebind() changes the CPEs' public ports.

NatLab(ipv6=True) is the IPv6 lab in the same namespaces: the ACS dual-stack in pub
(lab.acs_address 2001:db8:1::10, and 203.0.113.10), IPv6-only CPEs in lan (2001:db8:2::10 and up)
with addresses of their own, and between them no NAT but a stateful firewall: replies and what a
CPE keeps open (its STUN keep-alives' pinhole) get in, a new connection from outside is dropped
and counted (lab.dropped()).

Everything lives in namespaces this object creates: nothing is routed to or from the host's
interfaces, and the host's own namespace is never changed. Leaving the `with` block (normally,
by an exception or by Ctrl-C) stops the processes started in the lab and deletes the namespaces,
and with them the veth pairs and the router's nftables table. A run killed outright leaves them
behind; the next NatLab (or `knock lab clean`) removes labs whose owning process has died.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Coroutine, Iterator, Sequence
from types import TracebackType
from typing import Any, TypeVar

from knock.lab import netns, topology
from knock.lab.netns import LabError
from knock.lab.stale import OwnerLock, clean_stale
from knock.lab.topology import Plan, Role

T = TypeVar("T")
log = logging.getLogger("knock.lab")


class NatLab:
    """The lab's namespaces, named by role ("pub", "nat", "lan") in every method."""

    def __init__(
        self,
        *,
        lan_hosts: int = 1,
        pub_hosts: int = 1,
        tag: str | None = None,
        ipv6: bool = False,
    ) -> None:
        self.plan = Plan.make(
            tag or topology.new_tag(), pub_hosts=pub_hosts, lan_hosts=lan_hosts, ipv6=ipv6
        )
        self.tag = self.plan.tag
        self.ipv6 = ipv6
        self.pub_addresses = self.plan.pub_hosts
        self.lan_addresses = self.plan.lan_hosts
        self.acs_address = self.pub_addresses[0]  # 203.0.113.10 (2001:db8:1::10): the ACS
        self.cpe_address = self.lan_addresses[0]  # 198.51.100.10 (2001:db8:2::10): a CPE
        # What the ACS sees a CPE as (no NAT in the IPv6 lab: the CPE's own address), and the
        # CPEs' gateway.
        self.router_public = self.cpe_address if ipv6 else topology.ROUTER_PUBLIC
        self.router_lan = topology.ROUTER_LAN6 if ipv6 else topology.ROUTER_LAN
        self.generation = 0  # how many times rebind() moved the masquerade's port block
        self._tools: dict[str, str] = {}
        self._built = False
        self._children: list[subprocess.Popen[Any]] = []
        self._async_children: list[asyncio.subprocess.Process] = []
        self._lock = OwnerLock(self.tag)

    @property
    def acs_hosts(self) -> str:
        """The host option an ACS in pub listens on: in the IPv6 lab both of its addresses, the
        IPv6 one first (the URL, STUN and XMPP addresses devices are given)."""
        if not self.ipv6:
            return self.acs_address
        return f"{self.acs_address},{topology.hosts(topology.PUBLIC_NET, 1)[0]}"

    # -- life cycle ---------------------------------------------------------------------------

    @property
    def tools(self) -> dict[str, str]:
        """Full paths of ip, nft and conntrack (known once the lab is built)."""
        return dict(self._tools)

    @property
    def port_range(self) -> tuple[int, int]:
        """The public ports new mappings get now."""
        return topology.port_range(self.generation)

    def namespace(self, role: Role | str) -> str:
        """The real namespace name for a role (a full lab namespace name passes through)."""
        if role in topology.ROLES:
            return self.plan.namespace(role)
        if role in (self.plan.namespace(r) for r in topology.ROLES):
            return role
        raise ValueError(f"{role!r} is not a namespace of this lab; use pub, nat or lan")

    def build(self) -> None:
        """Create the namespaces, veths, addresses, routes and NAT rules; on any failure, remove
        what was made and raise LabError."""
        if self._built:
            raise LabError(f"lab {self.tag} is already built")
        self._tools = netns.tool_paths()
        try:
            clean_stale(self._tools["ip"])
        except LabError as exc:  # a dead run's leftovers do not stand in this lab's way
            log.warning("%s", exc)
        try:
            with _signals_deferred():
                self._lock.acquire()  # before the first namespace: the lab counts as alive
                self._built = True
                self._create()
        except BaseException:
            self.close()
            raise

    def _create(self) -> None:
        ip, plan = self._tools["ip"], self.plan
        for role in topology.ROLES:
            name = plan.namespace(role)
            netns.command([ip, "netns", "add", name])
            for scope in ("all", "default"):
                for key, value in self._ipv6_sysctls():
                    netns.write_sysctl(name, f"net.ipv6.conf.{scope}.{key}", value)
            netns.command([ip, "-n", name, "link", "set", "lo", "up"])
        nat = plan.namespace("nat")
        # Created inside the namespaces, so no interface ever appears on the host.
        links: tuple[tuple[str, str, Role], ...] = (
            (topology.WAN_IF, topology.PUB_IF, "pub"),
            (topology.LAN_IF, topology.CPE_IF, "lan"),
        )
        for here, there, peer_role in links:
            peer = ["peer", "name", there, "netns", plan.namespace(peer_role)]
            netns.command([ip, "-n", nat, "link", "add", here, "type", "veth", *peer])
        for role, pairs in plan.addresses().items():
            name = plan.namespace(role)
            for ifname, address in pairs:
                # nodad: usable at once (the lab's addresses are unique by construction).
                nodad = ["nodad"] if ":" in address else []
                netns.command([ip, "-n", name, "addr", "add", address, "dev", ifname, *nodad])
            for ifname in dict.fromkeys(ifname for ifname, _ in pairs):
                netns.command([ip, "-n", name, "link", "set", ifname, "up"])
        for role, routes in plan.routes().items():
            for route in routes:
                family = ["-6"] if ":" in route else []
                namespace = plan.namespace(role)
                netns.command([ip, "-n", namespace, *family, "route", "add", *route.split()])
        # Forwarding in the router's namespace only.
        if self.ipv6:
            netns.write_sysctl(nat, "net.ipv6.conf.all.forwarding", "1")
        else:
            netns.write_sysctl(nat, "net.ipv4.ip_forward", "1")
        self._nft(plan.ruleset(self.port_range))

    def _ipv6_sysctls(self) -> tuple[tuple[str, str], ...]:
        """The NAT lab turns IPv6 off (no router solicitations or DAD probes, only its own IPv4
        traffic); the IPv6 lab keeps it, without router advertisements: addresses and routes
        are the plan's alone."""
        if not self.ipv6:
            return (("disable_ipv6", "1"),)
        return (("accept_ra", "0"), ("autoconf", "0"), ("accept_dad", "0"))

    def close(self) -> None:
        """Stop what runs in the lab and delete its namespaces. Safe to call twice."""
        if not self._built:
            self._lock.release()
            return
        with _signals_deferred():
            # Every process in the namespaces is stopped, ours and whatever they started.
            names = [self.plan.namespace(role) for role in topology.ROLES]
            # One started just before may not have joined its namespace yet (`ip netns exec`
            # between its fork and its setns), so no look inside finds it: stop it by its pid.
            # Only unreaped children, whose pids cannot have been reused.
            running = [c.pid for c in self._children if c.poll() is None]
            running += [c.pid for c in self._async_children if c.returncode is None]
            netns.stop_processes(running)
            self._async_children.clear()
            problems = netns.remove(self._tools["ip"], names)
            for child in self._children:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.wait(netns.STOP_GRACE_S)  # reap, so no zombie outlives the lab
            self._children.clear()
            self._built = False
            if not problems:
                self._lock.release()  # a lab not fully removed stays locked until we exit
        if problems:
            raise LabError("the lab was not fully removed: " + "; ".join(problems))

    def __enter__(self) -> NatLab:
        self.build()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    async def __aenter__(self) -> NatLab:
        await asyncio.to_thread(self.build)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.close)

    # -- running things inside ----------------------------------------------------------------

    def argv(self, role: Role | str, argv: Sequence[str]) -> list[str]:
        """The command line that runs argv inside a namespace (`ip netns exec ...`)."""
        self._require_built()
        return netns.exec_argv(self._tools["ip"], self.namespace(role), argv)

    def run(
        self,
        role: Role | str,
        argv: Sequence[str],
        *,
        check: bool = True,
        timeout: float = 30.0,
        **kwargs: Any,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command to completion inside a namespace; output captured as text."""
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        return subprocess.run(self.argv(role, argv), check=check, timeout=timeout, **kwargs)

    def popen(self, role: Role | str, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """Start a command inside a namespace; the lab stops it when it closes."""
        child = subprocess.Popen(self.argv(role, argv), **kwargs)
        self._children.append(child)
        return child

    def python(self, role: Role | str, *args: str, **kwargs: Any) -> subprocess.Popen[Any]:
        """Start this Python (this venv's) inside a namespace: python("pub", "-m", "knock", ...)."""
        return self.popen(role, [sys.executable, *args], **kwargs)

    async def start(
        self, role: Role | str, argv: Sequence[str], **kwargs: Any
    ) -> asyncio.subprocess.Process:
        """asyncio's subprocess, inside a namespace; the lab kills it when it closes if it still
        runs (everything in the lab's namespaces is stopped then)."""
        process = await asyncio.create_subprocess_exec(*self.argv(role, argv), **kwargs)
        self._async_children.append(process)
        return process

    def socket(
        self, role: Role | str, family: int = socket.AF_INET, kind: int = socket.SOCK_DGRAM
    ) -> socket.socket:
        """A socket in a namespace, for use from this process (e.g. asyncio's `sock=`)."""
        self._require_built()
        return netns.socket_in(self.namespace(role), family, kind)

    def call(self, role: Role | str, fn: Callable[..., T], *args: Any) -> T:
        """fn(*args) in a thread inside a namespace: the sockets it opens live there."""
        self._require_built()
        return netns.call_in(self.namespace(role), fn, *args)

    async def run_coroutine(
        self, role: Role | str, factory: Callable[[], Coroutine[Any, Any, T]]
    ) -> T:
        """Await factory() on an event loop of its own in a thread inside a namespace."""
        self._require_built()
        return await netns.run_coroutine_in(self.namespace(role), factory)

    # -- the router ---------------------------------------------------------------------------

    def rebind(self, *, flush: bool = True, next_range: bool = True) -> tuple[int, int]:
        """Make the NAT forget its mappings, as a router reboot or timeout does: the next packet
        from the LAN leaves from a new public port. next_range moves new mappings to the next
        port block (so the port surely differs); flush drops the existing conntrack entries (so
        even an open flow gets a new mapping). Returns the port block now in use."""
        self._require_built()
        if self.ipv6:
            raise LabError("the IPv6 lab has no NAT to rebind: its CPEs keep their addresses")
        if next_range:
            self.generation += 1
            self._nft(topology.remasquerade(self.port_range))
        if flush:
            lan = topology.LAN_NET
            self.conntrack("-D", "-s", str(lan.network_address), "--mask-src", str(lan.netmask))
        return self.port_range

    def conntrack(self, *args: str) -> str:
        """Run conntrack in the router's namespace ("-L" lists its NAT mappings)."""
        done = self.run("nat", [self._tools["conntrack"], *args], check=False)
        # conntrack -D exits 1 when there was nothing to delete: not a failure for rebind().
        if done.returncode != 0 and "0 flow entries" not in done.stderr:
            raise LabError(f"conntrack {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout

    def dropped(self) -> int:
        """Packets the router dropped as unsolicited on its public side so far."""
        nft = [self._tools["nft"], "-j", "list", "counter", "inet", topology.TABLE]
        out = self.run("nat", [*nft, topology.DROP_COUNTER]).stdout
        for item in json.loads(out)["nftables"]:
            if "counter" in item:
                return int(item["counter"]["packets"])
        raise LabError(f"nft printed no counter {topology.DROP_COUNTER!r}: {out}")

    def nat_rules(self) -> tuple[str, ...]:
        """The router's masquerade rules as they stand (they change on rebind); none in the
        IPv6 lab."""
        return () if self.ipv6 else topology.masquerade_rules(self.port_range)

    def _nft(self, script: str) -> None:
        netns.command(self.argv("nat", [self._tools["nft"], "-f", "-"]), stdin=script)

    def _require_built(self) -> None:
        if not self._built:
            raise LabError("the lab is not built: use `with NatLab() as lab:` or call build()")


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM while the lab is built or torn down, then deliver them, so an
    impatient second Ctrl-C cannot leave half a lab behind."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers; a worker thread sees no signals anyway
        return
    caught: list[int] = []
    previous = {
        sig: signal.signal(sig, lambda number, frame: caught.append(number))
        for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for sig, handler in previous.items():
            # None: a handler set outside Python, which cannot be put back; default is closest.
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
        for number in dict.fromkeys(caught):
            signal.raise_signal(number)
