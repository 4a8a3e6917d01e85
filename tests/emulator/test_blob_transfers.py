"""The Blob endpoint's data paths made faster for issue 16 keep their semantics: a large Put Blob
is hashed on a second thread and still checked against Content-MD5 (nothing stored on a
mismatch), and Put Block hashes a block only when the request sends Content-MD5, as the service
answers since 2019-02-02."""
from __future__ import annotations

import base64
import datetime
import hashlib
import http.client
import os
import ssl
from urllib.parse import urlsplit

from azure.storage.blob import generate_container_sas

from emulator.core.storage_http import PIPELINE_MIN

MiB = 1024 * 1024


def sas(emulator) -> str:
    return generate_container_sas(emulator.account_name, "data", account_key=emulator.account_key, permission="rcw",
                                  expiry=datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1))


def put(emulator, name: str, query: str, headers: dict, body: bytes):
    parts = urlsplit(emulator.blob_url)
    conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=30,
                                       context=ssl.create_default_context(cafile=emulator.ca_cert))
    try:
        conn.request("PUT", "/{}/data/{}?{}{}".format(emulator.account_name, name, query, sas(emulator)), body=body,
                     headers=dict(headers, **{"x-ms-version": "2026-10-06"}))
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def md5_header(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def test_a_large_put_blob_is_hashed_and_checked(emulator, container):
    data = os.urandom(PIPELINE_MIN + 3 * MiB + 5)
    blob = container.upload_blob("big.bin", data)
    assert blob.get_blob_properties().content_settings.content_md5 == hashlib.md5(data).digest()
    assert blob.download_blob().readall() == data
    status, headers, _ = put(emulator, "other.bin", "", {"x-ms-blob-type": "BlockBlob",
                                                         "Content-MD5": md5_header(b"something else")}, data)
    assert (status, headers["x-ms-error-code"]) == (400, "Md5Mismatch")
    assert not container.get_blob_client("other.bin").exists()
    status, headers, _ = put(emulator, "other.bin", "", {"x-ms-blob-type": "BlockBlob",
                                                         "Content-MD5": md5_header(data)}, data)
    assert status == 201 and headers["content-md5"] == md5_header(data)


def test_put_block_answers_content_md5_only_when_the_request_sends_one(emulator, container):
    block = os.urandom(MiB)
    status, headers, _ = put(emulator, "b.bin", "comp=block&blockid=YQ%3D%3D&", {}, block)
    assert status == 201 and "content-md5" not in headers
    status, headers, _ = put(emulator, "b.bin", "comp=block&blockid=Yg%3D%3D&", {"Content-MD5": md5_header(block)},
                             block)
    assert status == 201 and headers["content-md5"] == md5_header(block)
    status, headers, _ = put(emulator, "b.bin", "comp=block&blockid=Yw%3D%3D&", {"Content-MD5": md5_header(b"x")},
                             block)
    assert (status, headers["x-ms-error-code"]) == (400, "Md5Mismatch")
    blob = container.get_blob_client("b.bin")
    assert [b.id for b in blob.get_block_list("uncommitted")[1]] == ["a", "b"]  # the SDK decodes the ids
    # The SDK's own checked upload (validate_content sends Content-MD5 with each block) works.
    blob.stage_block("c", block, validate_content=True)
    blob.commit_block_list(["a", "c"])
    assert blob.download_blob().readall() == block + block


def test_an_upload_cut_short_stores_nothing_and_leaves_no_thread(emulator, container, monkeypatch):
    import socket
    import threading
    import time

    from emulator.core import serving

    objects = emulator.data_dir / "blob" / "objects"
    container.upload_blob("kept.bin", b"kept")
    before = set(os.listdir(objects))
    handled = []   # connections accepted from now on, once the server is done with them
    real = serving._ConnectionThreadServer.process_request_thread

    def recording(self, request, client_address):
        try:
            return real(self, request, client_address)
        finally:
            handled.append(client_address)

    monkeypatch.setattr(serving._ConnectionThreadServer, "process_request_thread", recording)
    parts = urlsplit(emulator.blob_url)
    context = ssl.create_default_context(cafile=emulator.ca_cert)
    length = PIPELINE_MIN + 2 * MiB
    target = "/{}/data/cut.bin?{}".format(emulator.account_name, sas(emulator))
    head = ("PUT {} HTTP/1.1\r\nHost: {}\r\nx-ms-version: 2026-10-06\r\nx-ms-blob-type: BlockBlob\r\n"
            "Content-Length: {}\r\n\r\n".format(target, parts.netloc, length)).encode()
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=parts.hostname) as tls:
            tls.sendall(head + os.urandom(length // 2))  # half the body, then hang up
    deadline = time.monotonic() + 60
    while not handled and time.monotonic() < deadline:
        time.sleep(0.05)
    assert handled, "the server never finished with the cut connection"
    assert not any(t.name == "storage-copy" for t in threading.enumerate())
    assert not container.get_blob_client("cut.bin").exists()
    assert set(os.listdir(objects)) == before
    assert container.get_blob_client("kept.bin").download_blob().readall() == b"kept"
