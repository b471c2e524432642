"""Certificates for TLS tests: a lab CA, a client it signed, and a self-signed stranger."""

from __future__ import annotations

import asyncio
import datetime
import os
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _issue(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate | None,
    signer: ec.EllipticCurvePrivateKey,
) -> x509.Certificate:
    """A CA certificate when *issuer* is None (self-signed), else a leaf signed by *signer*."""
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name if issuer is None else issuer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()),
            critical=False,
        )
        .sign(signer, hashes.SHA256())
    )


def _write_identity(
    directory: Path, name: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> tuple[Path, Path]:
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def make_client_ca(tmp_path: Path) -> tuple[Path, tuple[Path, Path], tuple[Path, Path]]:
    """A CA file, a client identity it signed, and a self-signed client identity."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _issue("lab CA", ca_key, None, ca_key)
    ca_path, _ = _write_identity(tmp_path, "ca", ca, ca_key)
    member_key = ec.generate_private_key(ec.SECP256R1())
    member = _issue("cpe-0001", member_key, ca, ca_key)
    rogue_key = ec.generate_private_key(ec.SECP256R1())
    rogue = _issue("rogue", rogue_key, None, rogue_key)
    return (
        ca_path,
        _write_identity(tmp_path, "member", member, member_key),
        _write_identity(tmp_path, "rogue", rogue, rogue_key),
    )


class OperatorCa:
    """An operator's private CA made in a test, and the server certificates it issues."""

    def __init__(self, directory: Path, name: str = "operator CA") -> None:
        self.directory = directory
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.certificate = _issue(name, self.key, None, self.key)
        self.path, _ = _write_identity(
            directory, name.replace(" ", "-"), self.certificate, self.key
        )

    def issue(
        self,
        name: str,
        dns: list[str],
        xmpp_addrs: list[str] = [],  # noqa: B006 - never changed
        *,
        days: float = 1,
    ) -> tuple[Path, Path]:
        """A server certificate for *dns* names and id-on-xmppAddr *xmpp_addrs*, valid for
        *days* from now (negative: expired); its PEM file and its key's."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns]
        names += [x509.OtherName(ID_ON_XMPP_ADDR, _der_utf8(a)) for a in xmpp_addrs]
        leaf = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=2))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        return _write_identity(self.directory, name, leaf, key)


ID_ON_XMPP_ADDR = x509.ObjectIdentifier("1.3.6.1.5.5.7.8.5")


def _der_utf8(text: str) -> bytes:
    body = text.encode()
    assert len(body) < 128
    return bytes([0x0C, len(body)]) + body


def install(pair: tuple[Path, Path], cert: Path, key: Path) -> None:
    """Put a certificate pair in place as renewal tools do: each file replaced whole, at once."""
    for source, target in zip(pair, (cert, key), strict=True):
        staged = target.with_suffix(".new")
        staged.write_bytes(source.read_bytes())
        os.replace(staged, target)


async def served_certificate(port: int, trust: ssl.SSLContext, name: str) -> bytes:
    """The certificate (DER) a new TLS client on *port* gets, checked as *name*."""
    _reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=trust, server_hostname=name
    )
    der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    writer.close()
    assert isinstance(der, bytes)
    return der
