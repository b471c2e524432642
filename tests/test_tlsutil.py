from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from knock.tlsutil import ensure_self_signed, server_context
from tls_support import make_client_ca

HOSTNAMES = ["localhost", "acs.lab.example", "127.0.0.1", "::1"]


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "tls" / "cert.pem", tmp_path / "tls" / "key.pem"
    ensure_self_signed(cert, key, HOSTNAMES)
    return cert, key


def test_files_are_created_with_a_private_key(pair: tuple[Path, Path]) -> None:
    cert_path, key_path = pair
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert isinstance(key.curve, ec.SECP256R1)
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    assert cert.public_key() == key.public_key()
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert lifetime >= datetime.timedelta(days=3650)


def test_san_holds_every_name_and_address(pair: tuple[Path, Path]) -> None:
    cert = x509.load_pem_x509_certificate(pair[0].read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost", "acs.lab.example"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]


def test_existing_files_are_kept(pair: tuple[Path, Path]) -> None:
    before = [path.read_bytes() for path in pair]
    ensure_self_signed(*pair, ["other.example"])
    assert [path.read_bytes() for path in pair] == before


def test_a_missing_certificate_regenerates_both(pair: tuple[Path, Path]) -> None:
    cert_path, key_path = pair
    old_key = key_path.read_bytes()
    key_path.chmod(0o644)
    cert_path.unlink()
    ensure_self_signed(cert_path, key_path, HOSTNAMES)
    assert cert_path.exists()
    assert key_path.read_bytes() != old_key
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600


def test_no_hostname_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one hostname"):
        ensure_self_signed(tmp_path / "c.pem", tmp_path / "k.pem", [])


def test_server_context_refuses_tls_before_1_2(pair: tuple[Path, Path]) -> None:
    assert server_context(*pair).minimum_version is ssl.TLSVersion.TLSv1_2


async def _exchange(context: ssl.SSLContext, client: ssl.SSLContext) -> bytes:
    """Send a line over TLS on loopback and return the server's answer."""

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"pong " + await reader.readline())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    async with server:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client, server_hostname="localhost"
        )
        writer.write(b"ping\n")
        await writer.drain()
        reply = await asyncio.wait_for(reader.readline(), timeout=5)
        writer.close()
        with contextlib.suppress(ssl.SSLError, ConnectionError):
            await writer.wait_closed()
        return reply


async def _refused(context: ssl.SSLContext, client: ssl.SSLContext) -> bool:
    # Under TLS 1.3 the client's handshake completes before the server has judged the client's
    # certificate, so the refusal surfaces on the first read, as an alert or as a closed stream.
    try:
        return await _exchange(context, client) == b""
    except (ssl.SSLError, ConnectionError):
        return True


def _client(cert: Path, version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_3) -> ssl.SSLContext:
    client = ssl.create_default_context(cafile=cert)
    client.maximum_version = version
    return client


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
async def test_loopback_handshake_with_the_pinned_certificate(
    pair: tuple[Path, Path], version: ssl.TLSVersion
) -> None:
    assert await _exchange(server_context(*pair), _client(pair[0], version)) == b"pong ping\n"


async def test_a_client_that_does_not_trust_the_cert_is_refused(
    pair: tuple[Path, Path], tmp_path: Path
) -> None:
    stranger = tmp_path / "stranger.pem"
    ensure_self_signed(stranger, tmp_path / "stranger.key", ["localhost"])
    with pytest.raises(ssl.SSLCertVerificationError):
        await _exchange(server_context(*pair), _client(stranger))


@pytest.fixture
def client_ca(tmp_path: Path) -> tuple[Path, tuple[Path, Path], tuple[Path, Path]]:
    return make_client_ca(tmp_path)


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
async def test_client_certificates_are_required_with_a_client_ca(
    pair: tuple[Path, Path],
    client_ca: tuple[Path, tuple[Path, Path], tuple[Path, Path]],
    version: ssl.TLSVersion,
) -> None:
    ca_path, member, rogue = client_ca
    context = server_context(*pair, client_ca=ca_path)
    assert await _refused(context, _client(pair[0], version))
    outsider = _client(pair[0], version)
    outsider.load_cert_chain(*rogue)
    assert await _refused(context, outsider)
    insider = _client(pair[0], version)
    insider.load_cert_chain(*member)
    assert await _exchange(context, insider) == b"pong ping\n"
