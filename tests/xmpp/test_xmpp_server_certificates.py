"""The built-in server's certificate: the operator's pair is checked at start, a renewed pair
is picked up when the files change (no signal needed), and a pair that does not fit is logged
and left out while the one served stays."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from knock.certcheck import CertificateError
from knock.xmpp.accounts import MemoryAccounts
from knock.xmpp.c2s import Policy
from knock.xmpp.server import Listen, XmppServer
from tls_support import OperatorCa, install, served_certificate

DOMAIN = "xmpp.example"
WAIT = 10.0


async def served(server: XmppServer, trust: ssl.SSLContext) -> bytes:
    assert server.tls_port is not None
    return await served_certificate(server.tls_port, trust, DOMAIN)


def der(cert: Path) -> bytes:
    return ssl.PEM_cert_to_DER_cert(cert.read_text())


@pytest.fixture
async def operator(tmp_path: Path) -> AsyncIterator[tuple[XmppServer, OperatorCa, Path, Path]]:
    ca = OperatorCa(tmp_path)
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    install(ca.issue("first", [DOMAIN]), cert, key)
    # Short keep-alive periods make the sweeper, which also watches the files, run often.
    policy = Policy(DOMAIN, ping_interval=0.2, ping_timeout=0.2)
    listen = Listen("127.0.0.1", 0, 0, cert=cert, key=key, data_dir=tmp_path / "data")
    server = XmppServer(policy, MemoryAccounts(iterations=64), listen)
    await server.start()
    yield server, ca, cert, key
    await server.close()


async def test_a_changed_pair_is_served_to_new_logins_without_a_signal(
    operator: tuple[XmppServer, OperatorCa, Path, Path],
) -> None:
    server, ca, cert, key = operator
    trust = ssl.create_default_context(cafile=ca.path)
    first = await served(server, trust)
    assert first == der(cert) and server.ca_file is None
    install(ca.issue("renewed", [DOMAIN]), cert, key)
    async with asyncio.timeout(WAIT):
        while await served(server, trust) == first:  # noqa: ASYNC110 - the sweeper's period
            await asyncio.sleep(0.05)
    assert await served(server, trust) == der(cert)


async def test_a_pair_that_does_not_fit_is_logged_and_the_served_one_stays(
    operator: tuple[XmppServer, OperatorCa, Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    server, ca, cert, key = operator
    trust = ssl.create_default_context(cafile=ca.path)
    first = await served(server, trust)
    install(ca.issue("wrong", ["other.example"]), cert, key)
    assert not server.reload()
    assert "XMPP certificate not reloaded, still serving the previous one" in caplog.text
    assert "does not name xmpp.example" in caplog.text
    assert await served(server, trust) == first


async def test_a_pair_that_does_not_fit_stops_the_start(tmp_path: Path) -> None:
    ca = OperatorCa(tmp_path)
    cert, _ = ca.issue("one", [DOMAIN])
    _, key = ca.issue("two", [DOMAIN])
    listen = Listen("127.0.0.1", 0, None, cert=cert, key=key, data_dir=tmp_path)
    server = XmppServer(Policy(DOMAIN), MemoryAccounts(), listen)
    with pytest.raises(CertificateError, match="does not match the certificate"):
        await server.start()
    assert server.port == 0  # refused before it listened
