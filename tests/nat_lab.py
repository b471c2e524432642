"""The NAT lab for tests: `nat_lab` builds a real one (namespaces pub, nat and lan, see
knock.lab) once per test module and tears it down after the module's last test.

Root and the Debian packages iproute2, nftables and conntrack are required (CI runs as root and
`make test` installs them through scripts/prepare-test-host.sh). Without them the tests that ask
for the lab FAIL, naming what to do: a NAT test that silently skips proves nothing.

Tests share the module's lab, so one that changes it (an extra route, a rebind) puts it back or
only relies on what holds after any rebind (lab.port_range is always the current block).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, TypeVar

import pytest

from knock.lab import LabError, NatLab

LAN_HOSTS = 3  # 198.51.100.10-12: simulated CPEs that want addresses of their own
PUB_HOSTS = 2  # 203.0.113.10 (the ACS) and .11, a stranger on the public side


@pytest.fixture(scope="module")
def nat_lab() -> Iterator[NatLab]:
    """A built NatLab: lab.acs_address (203.0.113.10) in "pub", lab.cpe_address (198.51.100.10)
    in "lan", lab.router_public (203.0.113.1) in between."""
    yield from built(NatLab(lan_hosts=LAN_HOSTS, pub_hosts=PUB_HOSTS), "nat_lab")


class Lab(Protocol):
    def build(self) -> None: ...
    def close(self) -> None: ...


L = TypeVar("L", bound=Lab)


def built(lab: L, fixture: str) -> Iterator[L]:
    """A fixture's body: build the lab (a LabError fails the test with its message alone), yield
    it, close it."""
    try:
        lab.build()
        problem = ""
    except LabError as exc:
        problem = str(exc)  # failed outside the handler, so the report shows no chained trace
    if problem:
        pytest.fail(f"{fixture} fixture: {problem}", pytrace=False)
    try:
        yield lab
    finally:
        lab.close()
