"""The certificate authority of the emulator's HTTPS proxy, and the leaves it mints for Azure's hostnames.

One CA per data directory, kept there (key owner-only) so that a shell's ``SSL_CERT_FILE`` stays valid across
restarts. Its nameConstraints permit only the DNS names the proxy serves and exclude every IP address, so even
a stolen key can sign nothing a client would accept for another site (OpenSSL enforces this; see
docs/any-azure-client.md). Leaves carry SAN, AKI and EKU serverAuth, as Python 3.13 / urllib3 2 verify strictly.
The loopback certificate (``tls.py``) stays the self-signed leaf it is; the bundle clients load holds both.
"""
from __future__ import annotations

import datetime
import ipaddress
import os
import threading
from pathlib import Path
from typing import Optional

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .datadir import write_private


#: The DNS subtrees the CA may sign for (a name and everything under it).
PERMITTED_NAMES = ("management.azure.com", "login.microsoftonline.com", "file.core.windows.net",
                   "blob.core.windows.net", "api.azureml.ms")
EXCLUDED_NETWORKS = (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))
CA_VALIDITY = datetime.timedelta(days=365)
LEAF_VALIDITY = datetime.timedelta(days=30)
RENEW_BEFORE = datetime.timedelta(days=1)
CA_NAME = "Batch AI emulator proxy CA (local only, name-constrained)"


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _key_usage(cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=not cert_sign, content_commitment=False, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=cert_sign, crl_sign=cert_sign,
                         encipher_only=False, decipher_only=False)


def _name_constraints() -> x509.NameConstraints:
    return x509.NameConstraints(permitted_subtrees=[x509.DNSName(name) for name in PERMITTED_NAMES],
                                excluded_subtrees=[x509.IPAddress(net) for net in EXCLUDED_NETWORKS])


class ProxyCA:
    """``ca.pem``/``ca-key.pem`` in ``directory``, made when missing, expiring or made with other constraints;
    ``leaf(name)`` mints (and caches) a certificate for one served name, wildcards allowed."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
        self.directory = directory
        self.cert_path, self.key_path = directory / "ca.pem", directory / "ca-key.pem"
        self._lock = threading.Lock()
        self._leaves: dict = {}  # name -> (cert path, not_valid_after)
        loaded = self._load()
        if loaded is None:
            loaded = self._create()
        self.cert, self._key = loaded

    def _load(self) -> Optional[tuple]:
        try:
            cert = x509.load_pem_x509_certificate(self.cert_path.read_bytes())
            key = serialization.load_pem_private_key(self.key_path.read_bytes(), None)
            constraints = cert.extensions.get_extension_for_class(x509.NameConstraints).value
        except (OSError, ValueError, TypeError, x509.ExtensionNotFound):
            return None
        if (constraints != _name_constraints() or cert.not_valid_after_utc - _now() < LEAF_VALIDITY
                or cert.public_key().public_numbers() != key.public_key().public_numbers()):
            return None
        os.chmod(self.key_path, 0o600)
        return cert, key

    def _create(self) -> tuple:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME)])
        now = _now()
        cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + CA_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(cert_sign=True), critical=True)
            .add_extension(_name_constraints(), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        write_private(self.key_path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                        serialization.NoEncryption()))
        write_private(self.cert_path, cert.public_bytes(serialization.Encoding.PEM))
        return cert, key

    def sign_leaf(self, names: list, days: Optional[float] = None) -> tuple:
        """(certificate, private key) for ``names`` (DNS names or IP addresses), signed by this CA. The proxy
        only asks for names it serves; anything else is refused by clients, which is what the tests check."""
        key = ec.generate_private_key(ec.SECP256R1())
        sans = []
        for name in names:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                sans.append(x509.DNSName(name))
        now = _now()
        expiry = min(now + (datetime.timedelta(days=days) if days else LEAF_VALIDITY), self.cert.not_valid_after_utc)
        ski = self.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, str(names[0])[:64])]))
            .issuer_name(self.cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(expiry)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(cert_sign=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        return cert, key

    def leaf(self, name: str) -> tuple:
        """(a PEM file: certificate, then key, owner-only; its expiry) for ``name``, minted once and reused until
        it is about to expire. Leaves live in this directory's ``leaves/``; only this process uses them."""
        with self._lock:
            cached = self._leaves.get(name)
            if cached and cached[1] - _now() >= RENEW_BEFORE:
                return cached
            cert, key = self.sign_leaf([name])
            leaves = self.directory / "leaves"
            leaves.mkdir(mode=0o700, exist_ok=True)
            path = leaves / (name.replace("*", "_wildcard_") + ".pem")
            write_private(path, cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
            self._leaves[name] = (path, cert.not_valid_after_utc)
            return self._leaves[name]

    def write_bundle(self, path: Path, *extra_pems: Path) -> Path:
        """The PEM bundle clients trust through the proxy: this CA, then ``extra_pems`` (the loopback
        certificate, so that ``https://127.0.0.1:PORT`` verifies too when a client sends it through the proxy)."""
        data = self.cert.public_bytes(serialization.Encoding.PEM)
        for extra in extra_pems:
            data += Path(extra).read_bytes()
        write_private(path, data)
        return path
