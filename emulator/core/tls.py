"""The self-signed certificate for the https (Resource Manager and Batch AI) endpoint.

azure-core refuses bearer tokens over plain http, so the management side must speak TLS. The
certificate is a self-signed *leaf* (CA:FALSE, serverAuth only) for loopback names: clients pass
its path as ``connection_verify`` and trust exactly this certificate for exactly these names, and
its key (in the data directory) can sign nothing a client would accept for another site.
"""
from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path
from typing import Iterable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .datadir import write_private

VALIDITY = datetime.timedelta(days=30)
RENEW_BEFORE = datetime.timedelta(days=1)
DEFAULT_HOSTS = ("127.0.0.1", "localhost")


def ensure_certificate(directory: Path, hosts: Iterable[str] = DEFAULT_HOSTS) -> tuple[Path, Path]:
    """Return (cert.pem, key.pem) in ``directory`` for ``hosts`` (loopback addresses, ``localhost`` and
    names under ``.localhost``, wildcards allowed), making them when missing, about to expire, made
    for other names, or not a leaf (a CA certificate from an older emulator)."""
    names = [_san(host) for host in hosts]
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    if cert_path.exists() and key_path.exists() and _still_good(cert_path, names):
        os.chmod(key_path, 0o600)
        return cert_path, key_path
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Batch AI emulator (loopback only)")])
    now = datetime.datetime.now(datetime.timezone.utc)
    public_key = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        # Verification uses the SAN, not the CN.
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key), critical=False)
        .sign(key, hashes.SHA256())
    )
    write_private(key_path, key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    write_private(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def _san(host: str) -> x509.GeneralName:
    """One SAN entry; only names that can only ever mean this machine."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        if not address.is_loopback:
            raise ValueError("the emulator's certificate is for loopback addresses only, not {}".format(host))
        return x509.IPAddress(address)
    name = host.lower().rstrip(".")
    labels = name.split(".")
    if labels[-1] != "localhost" or not all(labels) or "*" in "".join(labels[1:]) or \
            (labels[0] != "*" and "*" in labels[0]) or (labels[0] == "*" and len(labels) < 3):
        raise ValueError("the emulator's certificate is for loopback names only: 127.0.0.1, localhost or names "
                         "under .localhost (such as *.blob.core.localhost), not {!r}".format(host))
    return x509.DNSName(name)


def _still_good(cert_path: Path, names: list) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        basic = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return False
    remaining = cert.not_valid_after_utc - datetime.datetime.now(datetime.timezone.utc)
    return not basic.ca and remaining >= RENEW_BEFORE and set(sans) == set(names)


