"""Knock's lab CA: one local certificate authority in the data folder that signs the XMPP
server's certificate (and the CWMP one with `tls_self_signed`) when the operator gives none.

A device validates a server certificate against the CAs it trusts (RFC 6120 §13.7.2 for XMPP),
so a self-signed leaf fails on every validating device. One CA installed on the devices once
keeps working when the leaves are made again for other names or addresses. The CA's key stays
in the data folder, mode 0600, and is kept across restarts: devices trust the CA, not a leaf.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from knock.hosts import WILDCARDS, split_hosts

CA_VALIDITY = datetime.timedelta(days=3650)
LEAF_VALIDITY = datetime.timedelta(days=825)
# A leaf this close to its end is made again at start.
RENEW_BEFORE = datetime.timedelta(days=30)
# Back-dated so a client whose clock runs a little behind still accepts a fresh certificate.
CLOCK_SKEW = datetime.timedelta(days=1)
CA_CERT = "ca.pem"
CA_KEY = "ca-key.pem"


def general_name(hostname: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(hostname.strip("[]")))
    except ValueError:
        return x509.DNSName(hostname)


def listen_names(hosts: str) -> list[str]:
    """The names and addresses a client may reach a listener on *hosts* (a host option, maybe a
    list: see knock.hosts) by: each address itself, or for a wildcard this machine's name, its
    addresses and loopback."""
    names: list[str] = []
    for host in split_hosts(hosts):
        if host not in WILDCARDS:
            names.append(host)
            continue
        names += ["localhost", "127.0.0.1", "::1", socket.gethostname()]
        try:
            infos = socket.getaddrinfo(socket.gethostname(), None)
        except OSError:
            infos = []
        names += [str(info[4][0]) for info in infos]
    return names


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for name in names:
        if name and name not in WILDCARDS:
            seen.setdefault(name.strip("[]").lower(), None)
    return list(seen)


def write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    """Write *key* readable by its owner only, from the first byte on; fchmod also tightens a
    leftover file that had looser permissions."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        os.fchmod(out.fileno(), 0o600)
        out.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )


def key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


@dataclass(frozen=True, slots=True)
class LabCa:
    cert_path: Path
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @classmethod
    def ensure(cls, folder: Path) -> LabCa:
        """The CA in *folder*, made on first use and kept afterwards."""
        cert_path, key_path = folder / CA_CERT, folder / CA_KEY
        if cert_path.exists() and key_path.exists():
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise ValueError(f"{key_path} is not the EC key Knock's lab CA is made with")
            os.chmod(key_path, 0o600)
            return cls(cert_path, x509.load_pem_x509_certificate(cert_path.read_bytes()), key)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Knock lab"),
                x509.NameAttribute(NameOID.COMMON_NAME, f"Knock lab CA {socket.gethostname()}"),
            ]
        )
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW)
            .not_valid_after(now + CA_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(key_usage(ca=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        write_key(key_path, key)
        # Written last: a crash in between leaves no certificate, so the next start begins anew.
        cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        return cls(cert_path, certificate, key)

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def ensure_leaf(self, cert_path: Path, key_path: Path, names: list[str]) -> None:
        """A server certificate at *cert_path* for *names* signed by this CA: the one there
        when it still fits (same names, this CA, not near its end), else a new one."""
        wanted = _unique(names)
        if not wanted:
            raise ValueError("a certificate needs at least one name")
        if cert_path.exists() and key_path.exists() and self._fits(cert_path, wanted):
            return
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        public_key = key.public_key()
        leaf = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, wanted[0])]))
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW)
            .not_valid_after(min(now + LEAF_VALIDITY, self.certificate.not_valid_after_utc))
            .add_extension(x509.SubjectAlternativeName([general_name(n) for n in wanted]), False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(key_usage(ca=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), False
            )
            .sign(self.key, hashes.SHA256())
        )
        write_key(key_path, key)
        cert_path.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))

    def _fits(self, cert_path: Path, wanted: list[str]) -> bool:
        try:
            leaf = x509.load_pem_x509_certificate(cert_path.read_bytes())
            leaf.verify_directly_issued_by(self.certificate)
            san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
            return False
        now = datetime.datetime.now(datetime.UTC)
        return list(san) == [general_name(n) for n in wanted] and (
            leaf.not_valid_after_utc - now > RENEW_BEFORE
        )
