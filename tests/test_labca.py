"""The lab CA and the checks on an operator's certificate, on real files and a real handshake."""

from __future__ import annotations

import ipaddress
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509

from knock.certcheck import CertificateError, check_server_pair
from knock.labca import CA_CERT, CA_KEY, LabCa
from knock.tlsutil import server_context
from test_tlsutil import _exchange
from tls_support import OperatorCa

NAMES = ["knock.lab", "acs.example", "127.0.0.1", "::1"]


def _san(path: Path) -> x509.SubjectAlternativeName:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value


def test_the_ca_is_made_once_with_a_private_key_and_kept(tmp_path: Path) -> None:
    first = LabCa.ensure(tmp_path)
    key = tmp_path / CA_KEY
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    before = [(tmp_path / CA_CERT).read_bytes(), key.read_bytes()]
    key.chmod(0o644)
    again = LabCa.ensure(tmp_path)
    assert [(tmp_path / CA_CERT).read_bytes(), key.read_bytes()] == before
    assert stat.S_IMODE(key.stat().st_mode) == 0o600  # a loosened key is tightened again
    assert (
        again.pem == first.pem
        and again.certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    )


def test_a_leaf_names_everything_and_is_made_again_only_when_the_names_change(
    tmp_path: Path,
) -> None:
    ca = LabCa.ensure(tmp_path)
    cert, key = tmp_path / "leaf.pem", tmp_path / "leaf-key.pem"
    ca.ensure_leaf(cert, key, [*NAMES, "0.0.0.0", "KNOCK.lab"])  # a wildcard, a repeat
    san = _san(cert)
    assert san.get_values_for_type(x509.DNSName) == ["knock.lab", "acs.example"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    issued = cert.read_bytes()
    ca.ensure_leaf(cert, key, NAMES)
    assert cert.read_bytes() == issued
    ca.ensure_leaf(cert, key, [*NAMES, "xmpp.example"])
    assert cert.read_bytes() != issued
    assert "xmpp.example" in _san(cert).get_values_for_type(x509.DNSName)
    check_server_pair(cert, key, "xmpp.example", "test")


async def test_a_client_trusting_only_the_ca_accepts_the_leaf(tmp_path: Path) -> None:
    ca = LabCa.ensure(tmp_path)
    cert, key = tmp_path / "leaf.pem", tmp_path / "leaf-key.pem"
    ca.ensure_leaf(cert, key, ["localhost"])
    client = ssl.create_default_context(cafile=ca.cert_path)
    assert await _exchange(server_context(cert, key), client) == b"pong ping\n"


def test_an_operator_certificate_for_the_domain_passes(tmp_path: Path) -> None:
    operator = OperatorCa(tmp_path)
    check_server_pair(*operator.issue("dns", ["knock.lab"]), "knock.lab", "xmpp_tls_cert")
    check_server_pair(*operator.issue("wild", ["*.lab"]), "knock.lab", "xmpp_tls_cert")
    check_server_pair(*operator.issue("addr", [], ["knock.lab"]), "knock.lab", "xmpp_tls_cert")


@pytest.mark.parametrize(
    ("dns", "addrs", "days", "error"),
    [
        (["acs.example"], [], 1, "does not name knock.lab (it has acs.example); devices"),
        (["*.knock.lab"], ["other.lab"], 1, "(it has *.knock.lab, xmppAddr other.lab)"),
        (["knock.lab"], [], -1, "expired on"),
    ],
)
def test_an_operator_certificate_that_does_not_fit_is_refused_with_what_to_change(
    tmp_path: Path, dns: list[str], addrs: list[str], days: float, error: str
) -> None:
    pair = OperatorCa(tmp_path).issue("leaf", dns, addrs, days=days)
    with pytest.raises(CertificateError, match=r"^xmpp_tls_cert/xmpp_tls_key: ") as refused:
        check_server_pair(*pair, "knock.lab", "xmpp_tls_cert/xmpp_tls_key")
    assert error in str(refused.value)


def test_a_key_of_another_certificate_or_a_missing_file_is_refused(tmp_path: Path) -> None:
    operator = OperatorCa(tmp_path)
    cert, _ = operator.issue("one", ["knock.lab"])
    _, other_key = operator.issue("two", ["knock.lab"])
    with pytest.raises(CertificateError, match="does not match the certificate"):
        check_server_pair(cert, other_key, "knock.lab", "xmpp_tls_cert")
    with pytest.raises(CertificateError, match="cannot read the certificate"):
        check_server_pair(tmp_path / "missing.pem", other_key, "knock.lab", "xmpp_tls_cert")
