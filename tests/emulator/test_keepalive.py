"""HTTP/1.1 persistent connections (emulator/core/keepalive.py): requests share a connection,
and every answer on it is delimited, whatever the application read or wrote."""
from __future__ import annotations

import http.client
import os
import socket

import pytest
from azure.storage.blob import BlobServiceClient

from emulator.core import serving
from emulator.core.keepalive import DRAIN_LIMIT
from emulator.core.serving import Server

MiB = 1024 * 1024


def app(environ, start_response):
    """Answers with the client's port (one per connection) and what it was asked to do."""
    path = environ["PATH_INFO"]
    body = b"port=%d" % environ["REMOTE_PORT"]
    if path == "/read":  # reads the whole body
        body += b" body=%d" % len(environ["wsgi.input"].read())
    elif path == "/short":  # declares more than it sends
        start_response("200 OK", [("Content-Length", "100")])
        return [b"only this"]
    elif path == "/long":  # yields more than it declares
        start_response("200 OK", [("Content-Length", "4")])
        return [b"four", b"and more"]
    elif path == "/unsized":
        start_response("200 OK", [])
        return [b"chunk one ", b"chunk two"]
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]


@pytest.fixture
def server():
    server = Server(0)
    server.serve(app)
    try:
        yield server
    finally:
        server.stop()


def test_requests_share_one_connection(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    answers = []
    for path, body in (("/", None), ("/read", b"x" * 1000), ("/unsized", None), ("/read", b"")):
        conn.request("PUT" if body is not None else "GET", path, body=body)
        response = conn.getresponse()
        answers.append(response.read())
        assert response.status == 200 and response.getheader("Connection") is None
    conn.close()
    ports = {answer.split()[0] for answer in answers if answer.startswith(b"port=")}
    assert len(ports) == 1
    assert answers[1].endswith(b"body=1000") and answers[2] == b"chunk one chunk two" and answers[3].endswith(b"body=0")


def test_a_body_the_application_did_not_read_is_drained(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("PUT", "/", body=os.urandom(MiB))   # "/" never reads its body
    first = conn.getresponse().read()
    conn.request("PUT", "/read", body=b"next")
    second = conn.getresponse().read()
    conn.close()
    assert second == first + b" body=4"  # the same connection, and the next request parsed cleanly


def test_a_large_unread_body_closes_the_connection_after_the_answer(server):
    # The head announces more than the server drains; the answer comes before the body is sent.
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall("PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n".format(
            DRAIN_LIMIT + MiB).encode() + b"z" * 1000)
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += sock.recv(65536)
    head = answer.split(b"\r\n\r\n", 1)[0]
    assert head.startswith(b"HTTP/1.1 200") and b"Connection: close" in head


def raw_exchange(port: int, request: bytes) -> bytes:
    """Send ``request`` and read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while True:
            data = sock.recv(65536)
            if not data:
                return received
            received += data


def test_a_short_answer_closes_the_connection(server):
    received = raw_exchange(server.port, b"GET /short HTTP/1.1\r\nHost: x\r\n\r\n")
    assert received.endswith(b"\r\n\r\nonly this")  # then the server closed: no next answer is confused


def test_an_answer_never_carries_more_than_it_declares(server):
    received = raw_exchange(server.port, b"GET /long HTTP/1.1\r\nHost: x\r\n\r\n"
                                         b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, rest = received.partition(b"\r\n\r\n")
    assert rest.startswith(b"fourHTTP/1.1 200 OK\r\n")  # the next answer follows the 4 declared bytes


def test_the_client_may_ask_to_close(server):
    received = raw_exchange(server.port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert b"Connection: close" in received and received.count(b"HTTP/1.1 200") == 1


def test_a_chunked_request_body_is_read_and_the_connection_closed(server):
    received = raw_exchange(server.port, b"PUT /read HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                                         b"5\r\nhello\r\n0\r\n\r\n")
    assert received.endswith(b"body=5") and b"Connection: close" in received


def test_an_sdk_block_upload_reuses_its_connections(emulator, monkeypatch):
    opened = []
    real = serving._ConnectionThreadServer.process_request_thread

    def counting(self, request, client_address):
        opened.append(client_address)
        return real(self, request, client_address)

    monkeypatch.setattr(serving._ConnectionThreadServer, "process_request_thread", counting)
    client = BlobServiceClient.from_connection_string(emulator.blob_connection_string, max_single_put_size=64 * 1024,
                                                      max_block_size=64 * 1024, connection_verify=emulator.ca_cert)
    blob = client.create_container("data").get_blob_client("big.bin")
    data = os.urandom(16 * 64 * 1024)
    for _ in range(3):
        blob.upload_blob(data, overwrite=True, max_concurrency=4)  # 3 x (16 Put Block + Put Block List)
    assert blob.download_blob().readall() == data
    assert len(opened) <= 5  # the SDK's pool of 4, and the first request's; not one per request
