"""Self-signed certificates (test and benchmark servers: Prosody, ejabberd) and server TLS
contexts. Knock's own servers use the lab CA (`knock.labca`) instead."""

from __future__ import annotations

import datetime
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from knock.labca import CLOCK_SKEW, general_name, key_usage, write_key

VALIDITY = datetime.timedelta(days=3650)


def ensure_self_signed(cert_path: Path, key_path: Path, hostnames: list[str]) -> None:
    """Create an EC P-256 key and a self-signed certificate for *hostnames*, unless both exist.

    The certificate is its own trust anchor: clients pin it (load it as their CA file).
    """
    if cert_path.exists() and key_path.exists():
        return
    if not hostnames:
        raise ValueError("a certificate needs at least one hostname")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])])
    now = datetime.datetime.now(datetime.UTC)
    public_key = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + VALIDITY)
        .add_extension(
            x509.SubjectAlternativeName([general_name(h) for h in hostnames]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .sign(key, hashes.SHA256())
    )
    write_key(key_path, key)
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    # Written last: a crash in between leaves no certificate, so the next call starts over.
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def server_context(cert: Path, key: Path, client_ca: Path | None = None) -> ssl.SSLContext:
    """A TLS 1.2+ server context; with *client_ca*, clients must present a cert it signed."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cafile=client_ca)
    return context


def trusting(*files: Path | None) -> ssl.SSLContext:
    """A client context that trusts the system's CAs and each PEM file of *files*, a server's
    own certificate among them (partial chains accepted): how Knock's own clients reach
    Knock's own servers."""
    context = ssl.create_default_context()
    for path in files:
        if path is not None:
            context.load_verify_locations(cafile=path)
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    return context
