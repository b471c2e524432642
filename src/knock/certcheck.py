"""Checks on an operator's server certificate before Knock serves it: readable, the key
matches, not expired, and it names what clients will check (RFC 6125; for XMPP, RFC 6120
§13.7.1.2: a dNSName or an id-on-xmppAddr for the domain)."""

from __future__ import annotations

import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

ID_ON_XMPP_ADDR = x509.ObjectIdentifier("1.3.6.1.5.5.7.8.5")
UTF8_STRING_TAG = 0x0C


class CertificateError(ValueError):
    """The certificate or key cannot be served; the message says what to change."""


def _der_utf8(data: bytes) -> str | None:
    """The text of a DER UTF8String, or None for anything else."""
    if len(data) < 2 or data[0] != UTF8_STRING_TAG:
        return None
    length, offset = data[1], 2
    if length & 0x80:
        size = length & 0x7F
        length, offset = int.from_bytes(data[2 : 2 + size]), 2 + size
    body = data[offset : offset + length]
    return body.decode("utf-8", "replace") if len(body) == length else None


def _matches(pattern: str, name: str) -> bool:
    """RFC 6125 §6.4.3: exact, or a wildcard as the whole left-most label."""
    pattern, name = pattern.lower().rstrip("."), name.lower().rstrip(".")
    if pattern == name:
        return True
    if pattern.startswith("*.") and "." in name:
        return name.split(".", 1)[1] == pattern[2:]
    return False


def certificate_names(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    """The dNSNames and id-on-xmppAddr values of *cert*'s subjectAltName."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    xmpp = [
        text
        for other in san.get_values_for_type(x509.OtherName)
        if other.type_id == ID_ON_XMPP_ADDR and (text := _der_utf8(other.value)) is not None
    ]
    return san.get_values_for_type(x509.DNSName), xmpp


def names_domain(cert: x509.Certificate, domain: str) -> bool:
    dns, xmpp = certificate_names(cert)
    return any(_matches(p, domain) for p in dns) or any(a.lower() == domain.lower() for a in xmpp)


def check_server_pair(cert_path: Path, key_path: Path, domain: str, options: str) -> None:
    """Raise `CertificateError` unless *cert_path* (a PEM chain, leaf first) and *key_path* can
    serve *domain*. *options* names the settings to change, for the message."""
    try:
        chain = x509.load_pem_x509_certificates(cert_path.read_bytes())
    except (OSError, ValueError) as exc:
        raise CertificateError(
            f"{options}: cannot read the certificate {cert_path} ({exc}); give a PEM file"
        ) from None
    try:
        key: PrivateKeyTypes = serialization.load_pem_private_key(
            key_path.read_bytes(), password=None
        )
    except (OSError, ValueError, TypeError) as exc:
        raise CertificateError(
            f"{options}: cannot read the private key {key_path} ({exc}); give an unencrypted "
            "PEM key"
        ) from None
    leaf = chain[0]
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(
        serialization.Encoding.DER, public
    ) != leaf.public_key().public_bytes(serialization.Encoding.DER, public):
        raise CertificateError(
            f"{options}: the key {key_path} does not match the certificate {cert_path} (the "
            "first one in the file); give the key the certificate was issued for"
        )
    if leaf.not_valid_after_utc <= datetime.datetime.now(datetime.UTC):
        raise CertificateError(
            f"{options}: the certificate {cert_path} expired on "
            f"{leaf.not_valid_after_utc:%Y-%m-%d}; renew it"
        )
    if not names_domain(leaf, domain):
        dns, xmpp = certificate_names(leaf)
        has = ", ".join(dns + [f"xmppAddr {a}" for a in xmpp]) or "no subjectAltName"
        raise CertificateError(
            f"{options}: the certificate {cert_path} does not name {domain} (it has {has}); "
            f"devices check that name: get one with subjectAltName DNS:{domain}, or set "
            "xmpp_domain to a name it holds"
        )
