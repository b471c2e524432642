"""Listen addresses: host options as lists, dual-stack sockets, and the URLs that reach them.

Every host option (cwmp_host, nbi_host, stun_host, xmpp_host) takes one address or several
separated by commas. `::` alone listens on both families (IPV6_V6ONLY off, as nginx's
`ipv6only=off` and Go's listeners do); in a list beside an IPv4 address it is IPv6 only, for
systems where dual-stack sockets are off (`0.0.0.0,::`). The listeners are made here as bound
sockets, which aiohttp and asyncio are then given (`sock=`), so that every service binds the
same way.
"""

from __future__ import annotations

import errno
import fcntl
import ipaddress
import socket
import struct
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

WILDCARDS = frozenset({"", "0.0.0.0", "::"})
_SIOCGIFADDR = 0x8915  # Linux ioctl: an interface's IPv4 address


class PortInUse(OSError):
    """A listener's port is held by another socket (another program, another knock serve):
    its address and transport travel with it, so that a command can name the option that
    moves it (`knock.config.Settings.port_option`)."""

    def __init__(self, host: str, port: int, transport: str) -> None:
        super().__init__(
            errno.EADDRINUSE, f"cannot bind {authority(host, port)}/{transport}: the port is in use"
        )
        self.port = port
        self.transport = transport


def split_hosts(value: str) -> list[str]:
    """The addresses of a host option ("0.0.0.0, [::]" -> ["0.0.0.0", "::"]); "" is the
    wildcard of every family, as asyncio reads it."""
    hosts = [_unbracket(part.strip()) for part in value.split(",")]
    named = [host for host in hosts if host]
    return list(dict.fromkeys(named)) or [""]


def _unbracket(host: str) -> str:
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def is_ipv6(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).version == 6
    except ValueError:
        return False


def family(host: str) -> str:
    """ "IPv4" or "IPv6" for an IP literal (brackets allowed), "" for a name: what `knock
    check` reports each exchange went over. An IPv4-mapped address (::ffff:a.b.c.d, a peer on
    a dual-stack socket) went over IPv4."""
    try:
        address = ipaddress.ip_address(_unbracket(host))
    except ValueError:
        return ""
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    return f"IPv{(mapped or address).version}"


def over(host: str) -> str:
    """ " over IPv6" (or IPv4) to end an exchange's summary; "" for a name."""
    name = family(host)
    return f" over {name}" if name else ""


def url_host(host: str) -> str:
    """*host* as a URL's host: an IPv6 literal in brackets (RFC 3986 §3.2.2)."""
    return f"[{host}]" if ":" in host else host


def authority(host: str, port: int) -> str:
    """ "host:port", an IPv6 literal in brackets, as URLs and logs show an address."""
    return f"{url_host(host)}:{port}"


def unbracketed_ipv6(url: str) -> bool:
    """Whether *url* names an IPv6 literal without the brackets RFC 3986 §3.2.2 requires
    (http://2001:db8::1:7547/), which no parser can split from the port."""
    host = urlsplit(url).netloc.rpartition("@")[2]
    return not host.startswith("[") and host.count(":") > 1


def canonical_ip(value: str) -> str:
    """An IP address in its canonical text form (RFC 5952 for IPv6, an IPv4-mapped address as
    IPv4); anything else unchanged."""
    try:
        ip = ipaddress.ip_address(_unbracket(value.strip()).split("%")[0])
    except ValueError:
        return value
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def dial_host(hosts: str) -> str:
    """The address an in-process client dials to reach a listener on *hosts*: the first entry,
    a wildcard by its family's loopback (the IPv4 one when both are served)."""
    first = split_hosts(hosts)[0]
    if first in ("", "0.0.0.0"):
        return "127.0.0.1"
    if first == "::":
        return "::1"
    return first


def bind_sockets(
    hosts: str, port: int, kind: socket.SocketKind, *, reuse_port: bool = False, backlog: int = 1024
) -> list[socket.socket]:
    """Bound sockets (listening, for TCP) for every address *hosts* names, all on one port: the
    first picks it when *port* is 0. Raises OSError naming the address that failed."""
    addresses = _resolve(split_hosts(hosts), kind)
    dual = not any(family == socket.AF_INET for family, _ in addresses)
    sockets: list[socket.socket] = []
    try:
        for family, host in addresses:
            sock = socket.socket(family, kind)
            sockets.append(sock)
            sock.setblocking(False)
            if kind == socket.SOCK_STREAM:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                wildcard = ipaddress.ip_address(host).is_unspecified
                sock.setsockopt(
                    socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if dual and wildcard else 1
                )
            try:
                sock.bind((host, port))
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    udp = kind == socket.SOCK_DGRAM
                    raise PortInUse(host, port, "udp" if udp else "tcp") from None
                raise OSError(
                    exc.errno, f"cannot bind {authority(host, port)}: {exc.strerror}"
                ) from None
            port = sock.getsockname()[1]
            if kind == socket.SOCK_STREAM:
                sock.listen(backlog)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _resolve(hosts: list[str], kind: socket.SocketKind) -> list[tuple[int, str]]:
    """(family, address) for each host; "" is both wildcards, a name every address it has."""
    found: list[tuple[int, str]] = []
    for host in hosts:
        if host == "":
            found += [(socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")]
            continue
        for family, _kind, _proto, _name, address in socket.getaddrinfo(
            host, None, type=kind, flags=socket.AI_PASSIVE
        ):
            found.append((family, str(address[0])))
    return list(dict.fromkeys(found))


def reachable_hosts(sockets: Iterable[socket.socket]) -> list[str]:
    """The addresses clients can reach *sockets* at, IPv4 first, loopback last: a wildcard
    stands for the machine's addresses, a dual-stack `::` for both families'."""
    v4: list[str] = []
    v6: list[str] = []
    for sock in sockets:
        host = str(sock.getsockname()[0])
        if sock.family == socket.AF_INET6:
            if host == "::":
                v6 += machine_addresses(socket.AF_INET6)
                if not sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY):
                    v4 += machine_addresses(socket.AF_INET)
            else:
                v6.append(host)
        else:
            v4 += machine_addresses(socket.AF_INET) if host == "0.0.0.0" else [host]
    found = list(dict.fromkeys(v4 + v6))
    return sorted(found, key=lambda host: ipaddress.ip_address(host).is_loopback)


def machine_addresses(family: int) -> list[str]:
    """This machine's addresses of *family* (Linux), loopback included; IPv6 link-local ones are
    left out, since a URL cannot carry their zone."""
    if family == socket.AF_INET6:
        return _ipv6_addresses()
    found: list[str] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        for _index, name in socket.if_nameindex():
            request = struct.pack("256s", name.encode()[:15])
            try:
                answer = fcntl.ioctl(probe.fileno(), _SIOCGIFADDR, request)
            except OSError:
                continue  # no IPv4 address on this interface
            found.append(socket.inet_ntoa(answer[20:24]))
    return found or ["127.0.0.1"]


def _ipv6_addresses() -> list[str]:
    try:
        lines = Path("/proc/net/if_inet6").read_text().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        ip = ipaddress.IPv6Address(bytes.fromhex(line.split()[0]))
        if not ip.is_link_local:
            found.append(str(ip))
    return found
