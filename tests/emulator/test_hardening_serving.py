"""Issue 10, availability and TLS: a silent client never stalls the emulator, SIGTERM always stops
it, and its certificate is a loopback-only leaf that the SDKs still verify."""
from __future__ import annotations

import datetime
import json
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import types

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import emulator as emulator_package
from emulator.core.serving import Server
from emulator.core.tls import ensure_certificate


def hello(environ, start_response):
    start_response("200 OK", [("Content-Length", "2")])
    return [b"ok"]


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


def list_groups(emu, timeout: float = 10):
    return requests.get("{}/subscriptions/{}/resourcegroups?api-version=2021-04-01".format(
        emu.arm_url, emu.subscription_id), headers={"Authorization": "Bearer " + emu.token}, verify=emu.ca_cert,
        timeout=timeout)


def test_a_silent_connection_does_not_stall_other_clients(emulator, resource_client, share_service):
    silent = [socket.create_connection(("127.0.0.1", port_of(emulator.arm_url))) for _ in range(3)]
    half_hello = socket.create_connection(("127.0.0.1", port_of(emulator.arm_url)))
    half_hello.sendall(b"\x16\x03\x01\x00\xff")  # a TLS record header, then nothing
    silent_files = socket.create_connection(("127.0.0.1", port_of(emulator.files_url)))
    try:
        for _ in range(3):
            assert list_groups(emulator).status_code == 200  # a hang would raise a Timeout here
        resource_client.resource_groups.create_or_update("rg", {"location": "eastus"})
        assert [g.name for g in resource_client.resource_groups.list()] == ["rg"]
        share_service.create_share("stillserved")
    finally:
        for connection in silent + [half_hello, silent_files]:
            connection.close()


@pytest.mark.parametrize("tls", [True, False])
def test_handshake_and_idle_timeouts_close_silent_connections(tmp_path, tls):
    certificate = ensure_certificate(tmp_path / "tls") if tls else None
    server = Server(0, certificate, handshake_timeout=0.5, idle_timeout=0.5)
    server.serve(hello)
    try:
        for payload in (b"", b"GET / HTTP/1.1\r\n"):  # nothing; half a request
            connection = socket.create_connection(("127.0.0.1", server.port))
            connection.settimeout(20)
            connection.sendall(payload)
            started = time.monotonic()
            try:
                while connection.recv(1000):  # whatever the server answers, it then closes
                    pass
            except ConnectionResetError:
                pass
            assert time.monotonic() - started < 15  # closed by the server, not by our 20 s timeout
            connection.close()
    finally:
        server.stop()


def test_sigterm_stops_the_emulator_with_silent_connections_open(tmp_path):
    process = subprocess.Popen([sys.executable, "-m", "emulator", "--data-dir", str(tmp_path / "data")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    connections = []
    try:
        info = types.SimpleNamespace(**json.loads(process.stdout.readline()))
        for url in (info.arm_url, info.arm_url, info.files_url):
            connections.append(socket.create_connection(("127.0.0.1", port_of(url))))
        assert list_groups(info).status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        for connection in connections:
            connection.close()
        if process.poll() is None:
            process.kill()
            process.wait()


# ---- the certificate ------------------------------------------------------------------------------

def load(path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_certificate_is_a_loopback_leaf_and_clients_verify_it(emulator, resource_client, batchai_client):
    cert = load(emulator.data_dir / "tls" / "cert.pem")
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign is False
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == \
        [ExtendedKeyUsageOID.SERVER_AUTH]
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {str(v) for v in sans.get_values_for_type(x509.IPAddress)} == {"127.0.0.1"}
    # localhost, and the host-style Blob names (<account>.blob.core.localhost) of the Blob endpoint
    assert sans.get_values_for_type(x509.DNSName) == ["localhost", "*.blob.core.localhost"]
    # requests and azure-core verify it (and so refuse anything else)
    assert list_groups(emulator).status_code == 200
    assert list(resource_client.resource_groups.list()) == []
    assert list(batchai_client.workspaces.list()) == []
    with pytest.raises(requests.exceptions.SSLError):
        list_groups(types.SimpleNamespace(**dict(vars(emulator), ca_cert=requests.certs.where())))


def test_trusting_the_certificate_trusts_no_certificate_its_key_signs(tmp_path):
    cert_path, key_path = ensure_certificate(tmp_path / "tls")
    issuer = load(cert_path)
    key = serialization.load_pem_private_key(key_path.read_bytes(), None)
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    forged = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")]))
              .issuer_name(issuer.subject).public_key(leaf_key.public_key()).serial_number(1)
              .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
              .add_extension(x509.SubjectAlternativeName([x509.IPAddress(__import__("ipaddress").ip_address(
                  "127.0.0.1"))]), critical=False)
              .sign(key, hashes.SHA256()))
    forged_dir = tmp_path / "forged"
    forged_dir.mkdir()
    (forged_dir / "cert.pem").write_bytes(forged.public_bytes(serialization.Encoding.PEM))
    (forged_dir / "key.pem").write_bytes(leaf_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    server = Server(0, (forged_dir / "cert.pem", forged_dir / "key.pem"))
    server.serve(hello)
    try:
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(server.url, verify=str(cert_path), timeout=10)
    finally:
        server.stop()


def test_an_old_ca_certificate_is_replaced_on_start(tmp_path):
    tls = tmp_path / "data" / "tls"
    tls.mkdir(parents=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    old = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
           .serial_number(7).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=30))
           .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
           .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(key, hashes.SHA256()))
    (tls / "cert.pem").write_bytes(old.public_bytes(serialization.Encoding.PEM))
    (tls / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))
    emu = emulator_package.start(tmp_path / "data")
    try:
        cert = load(tls / "cert.pem")
        assert cert.serial_number != 7
        assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
        assert list_groups(emu).status_code == 200
    finally:
        emu.stop()


def test_certificate_names_are_a_parameter_limited_to_loopback(tmp_path):
    hosts = ("127.0.0.1", "localhost", "*.blob.core.localhost")
    cert_path, key_path = ensure_certificate(tmp_path / "tls", hosts)
    sans = load(cert_path).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(sans.get_values_for_type(x509.DNSName)) == ["*.blob.core.localhost", "localhost"]
    assert ensure_certificate(tmp_path / "tls", hosts) == (cert_path, key_path)
    assert load(cert_path).serial_number == load(ensure_certificate(tmp_path / "tls", hosts)[0]).serial_number
    for bad in ("example.com", "10.0.0.1", "*.localhost", "evil.localhost.example.com", "a*.localhost"):
        with pytest.raises(ValueError, match="loopback"):
            ensure_certificate(tmp_path / "other", (bad,))
    # a client connecting to an account host name verifies against it
    server = Server(0, (cert_path, key_path))
    server.serve(hello)
    try:
        context = ssl.create_default_context(cafile=str(cert_path))
        for host, ok in (("myaccount.blob.core.localhost", True), ("other.example.com", False)):
            with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
                if ok:
                    with context.wrap_socket(raw, server_hostname=host) as tls:
                        assert tls.getpeercert()
                else:
                    with pytest.raises(ssl.SSLCertVerificationError):
                        context.wrap_socket(raw, server_hostname=host)
    finally:
        server.stop()


def test_many_concurrent_handshakes_all_complete(emulator):
    results = []

    def call():
        results.append(list_groups(emulator, timeout=30).status_code)

    threads = [threading.Thread(target=call) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert results == [200] * 16


def test_stop_closes_open_connections_and_forgets_finished_ones(tmp_path):
    server = Server(0, ensure_certificate(tmp_path / "tls"))
    server.serve(hello)
    cert = str(tmp_path / "tls" / "cert.pem")
    with requests.Session() as session:
        for _ in range(5):
            assert session.get(server.url, verify=cert, timeout=10).text == "ok"
    context = ssl.create_default_context(cafile=cert)
    idle = context.wrap_socket(socket.create_connection(("127.0.0.1", server.port), timeout=20),
                               server_hostname="127.0.0.1")
    started = time.monotonic()
    server.stop()
    try:
        assert idle.recv(10) == b""  # the server closed it
    except (ConnectionResetError, ssl.SSLError):
        pass
    assert time.monotonic() - started < 10
    assert len(server._server.connections._sockets) <= 1
    idle.close()


def test_a_refused_body_is_read_so_the_client_gets_the_refusal(emulator):
    """A request refused before its body is read (413 for a body over the 4 MB limit) still has its body read
    and dropped: the client, still sending, is not cut off by a reset and reads the 413."""
    import socket
    import ssl
    from urllib.parse import urlsplit

    host, port = urlsplit(emulator.arm_url).hostname, urlsplit(emulator.arm_url).port
    body_size = 8 * 1024 * 1024
    context = ssl.create_default_context(cafile=emulator.ca_cert)
    with socket.create_connection((host, port), timeout=30) as raw, \
            context.wrap_socket(raw, server_hostname=host) as tls:
        tls.sendall("PUT /subscriptions/{}/resourceGroups/rg/providers/Microsoft.BatchAI/workspaces/ws?"
                    "api-version=2018-05-01 HTTP/1.1\r\nHost: {}:{}\r\nAuthorization: Bearer {}\r\n"
                    "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n".format(
                        emulator.subscription_id, host, port, emulator.token, body_size).encode())
        status = tls.recv(64)  # the refusal comes before the body is sent
        chunk = b"x" * (256 * 1024)
        for _ in range(body_size // len(chunk)):  # a reset here would raise ConnectionResetError / BrokenPipeError
            tls.sendall(chunk)
    assert status.startswith(b"HTTP/1.1 413 "), status
