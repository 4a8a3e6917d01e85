"""The servers the storage benchmarks measure, each in its own process as a user runs it.

``emulator_process`` runs ``python -m emulator`` (so that the benchmark's SDK client and the
emulator do not share one interpreter lock); ``azurite_process`` runs Azurite's Blob service
(``azurite-blob``, npm package ``azurite``) when it is on PATH. Both stop when the block ends.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import types
from pathlib import Path
from typing import Iterator, Optional

ROOT = Path(__file__).resolve().parents[1]
#: Azurite's documented development account (a well-known, public key).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT if os.name == "posix" else signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def emulator_process(data_dir: Path) -> Iterator[types.SimpleNamespace]:
    """The emulator serving ``data_dir``; yields what it prints (``blob_url``, ``ca_cert``, ...)
    plus ``credential()``."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    process = subprocess.Popen([sys.executable, "-m", "emulator", "--data-dir", str(data_dir)], cwd=str(ROOT),
                               env=env, stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        if not line:
            raise RuntimeError("the emulator did not start (exit status {})".format(process.wait()))
        info = types.SimpleNamespace(**json.loads(line))
        from emulator.core.bearer import EmulatorCredential
        info.credential = lambda: EmulatorCredential(info.token)
        yield info
    finally:
        _stop(process)


def azurite_command() -> Optional[str]:
    return shutil.which("azurite-blob")


@contextlib.contextmanager
def azurite_process() -> Iterator[types.SimpleNamespace]:
    """Azurite's Blob service over http on a free port, data in a temporary directory; yields
    ``blob_connection_string`` and ``version``."""
    command = azurite_command()
    if command is None:
        raise FileNotFoundError("azurite-blob is not on PATH (npm install -g azurite)")
    version = subprocess.run([command, "--version"], capture_output=True, text=True, timeout=60).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="azurite-bench-") as location:
        # --skipApiVersionCheck: the SDK may speak a newer x-ms-version than this Azurite knows.
        process = subprocess.Popen([command, "--location", location, "--blobHost", "127.0.0.1", "--blobPort", "0",
                                    "--silent", "--skipApiVersionCheck", "--disableTelemetry", "--loose"],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            port = None
            for line in process.stdout:
                found = re.search(r"listens on https?://127\.0\.0\.1:(\d+)", line)
                if found:
                    port = int(found.group(1))
                    break
            if port is None:
                raise RuntimeError("Azurite did not start (exit status {})".format(process.wait()))
            _drain_output(process)
            url = "http://127.0.0.1:{}/{}".format(port, AZURITE_ACCOUNT)
            yield types.SimpleNamespace(
                version=version, blob_url=url,
                blob_connection_string="DefaultEndpointsProtocol=http;AccountName={};AccountKey={};BlobEndpoint={}"
                .format(AZURITE_ACCOUNT, AZURITE_KEY, url))
        finally:
            _stop(process)


def _drain_output(process: subprocess.Popen) -> None:
    """Keep reading the server's output so that it never blocks on a full pipe."""
    def drain() -> None:
        for _ in process.stdout:
            pass

    threading.Thread(target=drain, daemon=True).start()


@contextlib.contextmanager
def null_blob_process(size: int, certificate: Optional[tuple] = None) -> Iterator[types.SimpleNamespace]:
    """A server that does no work at all: it reads and drops request bodies and answers ranged
    GETs with ``size`` bytes of zeros, keep-alive, https with ``certificate``. Run against it, a
    client shows its own ceiling: no server can be measured faster than that."""
    command = [sys.executable, str(Path(__file__).resolve()), "null", str(size)] + [str(c) for c in certificate or ()]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        port = int(process.stdout.readline())
        scheme = "https" if certificate else "http"
        url = "{}://127.0.0.1:{}/{}".format(scheme, port, AZURITE_ACCOUNT)
        yield types.SimpleNamespace(blob_connection_string="DefaultEndpointsProtocol={};AccountName={};AccountKey={};"
                                    "BlobEndpoint={}".format(scheme, AZURITE_ACCOUNT, AZURITE_KEY, url))
    finally:
        _stop(process)


def _serve_null(size: int, certificate: Optional[list]) -> None:
    import socket
    import ssl
    context = None
    if certificate:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*certificate)
    listener = socket.create_server(("127.0.0.1", 0))
    print(listener.getsockname()[1], flush=True)
    zeros = memoryview(bytes(min(size, 4 * 2 ** 20) or 1))
    head = ("ETag: \"0x8D0\"\r\nLast-Modified: Wed, 02 Dec 2026 06:00:00 GMT\r\nx-ms-blob-type: BlockBlob\r\n"
            "x-ms-version: 2026-10-06\r\nx-ms-request-id: 0\r\n")

    def serve(connection) -> None:
        with contextlib.suppress(OSError, ValueError):
            if context is not None:
                connection = context.wrap_socket(connection, server_side=True)
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            stream = connection.makefile("rb")
            scratch = memoryview(bytearray(2 ** 20))
            while True:
                request = stream.readline().split()
                if not request:
                    return
                headers = {}
                for line in iter(stream.readline, b"\r\n"):
                    if not line:
                        return
                    name, _, value = line.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                left = int(headers.get("content-length", "0"))
                while left > 0:
                    got = stream.readinto(scratch[:min(left, len(scratch))])
                    if not got:
                        return
                    left -= got
                found = re.match(r"bytes=(\d+)-(\d+)", headers.get("x-ms-range") or headers.get("range") or "")
                if request[0] == b"GET" and found:
                    start, end = int(found.group(1)), min(int(found.group(2)), size - 1)
                    length = end - start + 1
                    connection.sendall("HTTP/1.1 206 Partial Content\r\n{}Content-Length: {}\r\nContent-Range: "
                                       "bytes {}-{}/{}\r\n\r\n".format(head, length, start, end, size).encode())
                    while length > 0:
                        piece = zeros[:min(length, len(zeros))]
                        connection.sendall(piece)
                        length -= len(piece)
                else:
                    connection.sendall("HTTP/1.1 201 Created\r\n{}Content-Length: 0\r\n\r\n".format(head).encode())

    while True:
        connection, _ = listener.accept()
        threading.Thread(target=serve, args=(connection,), daemon=True).start()


if __name__ == "__main__" and len(sys.argv) >= 3 and sys.argv[1] == "null":
    signal.signal(signal.SIGINT, lambda *_: os._exit(0))
    _serve_null(int(sys.argv[2]), sys.argv[3:5])
