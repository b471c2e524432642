"""Where to dial an XMPP domain: its DNS SRV records (RFC 6120 §3.2.1), or the domain itself.

`_xmpp-client._tcp.<domain>` (or `_xmpps-client._tcp` for direct TLS, XEP-0368) lists the
servers; they are tried by priority, lowest first, and within one priority in a random order
weighted as RFC 2782 says. A domain without records is dialled itself on the fallback port
(RFC 6120 §3.2.2: 5222); a single record whose target is "." says the domain offers no XMPP
service, which is an error, not a reason to fall back.

`order_targets` is pure; `SrvResolver` asks DNS through dnspython (neither the standard library
nor aiohttp resolves SRV), and can be pointed at a given name server.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import dns.asyncresolver
import dns.exception
import dns.rdatatype
import dns.resolver
from dns.rdtypes.IN.SRV import SRV

CLIENT_SERVICE: Final = "_xmpp-client._tcp"
DIRECT_TLS_SERVICE: Final = "_xmpps-client._tcp"
DNS_TIMEOUT: Final = 5.0  # seconds for one look-up, every name server and retry included


@dataclass(frozen=True, slots=True)
class SrvRecord:
    priority: int
    weight: int
    port: int
    target: str  # without the trailing dot; "." stays "."


class ServiceNotOffered(LookupError):
    """The domain's SRV record says it has no XMPP service (target ".")."""


def order_targets(
    records: Sequence[SrvRecord], draw: Callable[[], float] = random.random
) -> list[tuple[str, int]]:
    """(host, port) in the order to try them: by priority, then RFC 2782's weighted draw.
    *draw* gives a number in [0, 1)."""
    ordered: list[tuple[str, int]] = []
    for priority in sorted({record.priority for record in records}):
        # Zero weights first, as RFC 2782 has them, so that they keep a small chance.
        left = sorted((r for r in records if r.priority == priority), key=lambda r: r.weight)
        while left:
            total = sum(record.weight for record in left)
            point = draw() * total
            chosen = left[-1]
            running = 0
            for record in left:
                running += record.weight
                if running > point or total == 0:
                    chosen = record
                    break
            left.remove(chosen)
            ordered.append((chosen.target, chosen.port))
    return ordered


def targets(
    domain: str,
    records: Sequence[SrvRecord],
    fallback_port: int,
    service: str = CLIENT_SERVICE,
    draw: Callable[[], float] = random.random,
) -> list[tuple[str, int]]:
    """Where to dial *domain* given its SRV *records* (none: the domain on *fallback_port*).
    Raises `ServiceNotOffered`."""
    if not records:
        return [(domain, fallback_port)]
    usable = [record for record in records if record.target != "."]
    if not usable:
        raise ServiceNotOffered(
            f"{service}.{domain} has the SRV target '.': the domain offers no XMPP service "
            "(RFC 2782); give the XMPP server's host explicitly, or ask the domain's "
            "administrator for its XMPP server"
        )
    return order_targets(usable, draw)


class SrvResolver:
    """SRV look-ups through the system's name servers, or the given ones."""

    def __init__(
        self, nameservers: Sequence[tuple[str, int]] = (), timeout: float = DNS_TIMEOUT
    ) -> None:
        """*nameservers*: (address, port) pairs; empty: /etc/resolv.conf's. All pairs share the
        first one's port (dnspython's resolver has one port)."""
        self._nameservers = list(nameservers)
        self._timeout = timeout
        self._resolver: dns.asyncresolver.Resolver | None = None

    def _get(self) -> dns.asyncresolver.Resolver:
        if self._resolver is None:
            if self._nameservers:
                resolver = dns.asyncresolver.Resolver(configure=False)
                resolver.nameservers = [address for address, _port in self._nameservers]
                resolver.port = self._nameservers[0][1]
            else:
                resolver = dns.asyncresolver.Resolver()
            self._resolver = resolver
        return self._resolver

    async def records(self, domain: str, service: str = CLIENT_SERVICE) -> list[SrvRecord]:
        """The SRV records of *service* at *domain*; none when there are none or DNS cannot
        say (RFC 6120 §3.2.2 falls back to the domain then). Raises `ServiceNotOffered` only
        through `targets`."""
        name = f"{service}.{domain}."
        try:
            answer = await self._get().resolve(
                name, dns.rdatatype.SRV, lifetime=self._timeout, search=False
            )
        except (
            dns.resolver.NXDOMAIN,
            dns.resolver.NoAnswer,
            dns.resolver.NoNameservers,  # every server failed (SERVFAIL, refused)
            dns.resolver.NoResolverConfiguration,
            dns.exception.Timeout,
        ):
            return []
        return [
            SrvRecord(rdata.priority, rdata.weight, rdata.port, _host(rdata))
            for rdata in answer
            if isinstance(rdata, SRV)
        ]

    async def lookup(
        self,
        domain: str,
        fallback_port: int,
        service: str = CLIENT_SERVICE,
        draw: Callable[[], float] = random.random,
    ) -> list[tuple[str, int]]:
        """Where to dial *domain*, in order. Raises `ServiceNotOffered`."""
        return targets(domain, await self.records(domain, service), fallback_port, service, draw)


def _host(rdata: SRV) -> str:
    text = str(rdata.target.to_text())
    return text if text == "." else text.removesuffix(".")


SYSTEM_RESOLVER: Final = SrvResolver()  # reads /etc/resolv.conf at its first look-up
