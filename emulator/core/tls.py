"""The self-signed certificate for the https (Resource Manager and Batch AI) endpoint.

azure-core refuses bearer tokens over plain http, so the management side must speak TLS. The
certificate is its own trust anchor (CA:TRUE) for 127.0.0.1 and localhost; clients pass its path
as ``connection_verify``.
"""
from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

VALIDITY = datetime.timedelta(days=30)
RENEW_BEFORE = datetime.timedelta(days=1)
#: Host names the certificate covers besides 127.0.0.1: ``<account>.blob.core.localhost`` is the
#: host-style Blob address azure-ai-ml builds from a cloud whose storage suffix is core.localhost.
DNS_NAMES = ("localhost", "*.blob.core.localhost")


def ensure_certificate(directory: Path) -> tuple[Path, Path]:
    """Return (cert.pem, key.pem) in ``directory``, making them when missing or about to expire."""
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    if cert_path.exists() and key_path.exists() and not _expires_soon(cert_path) and _covers_names(cert_path):
        return cert_path, key_path
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        # Verification uses the SAN, not the CN.
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))] + [x509.DNSName(n) for n in DNS_NAMES]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    _write_private(key_path, key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def _expires_soon(cert_path: Path) -> bool:
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    remaining = cert.not_valid_after_utc - datetime.datetime.now(datetime.timezone.utc)
    return remaining < RENEW_BEFORE


def _covers_names(cert_path: Path) -> bool:
    """False for a certificate made before a name was added to DNS_NAMES (it is then remade)."""
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    return set(DNS_NAMES) <= set(names.get_values_for_type(x509.DNSName))


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
