"""Issue 10, the File endpoint: odd files are refused without blocking, a Put Range is all or
nothing and a failed write is answered at once, names that are not UTF-8 and links never give a
500 or a way out of the share, and malformed settings are refused as Azure Storage does."""
from __future__ import annotations

import errno
import os
import socket
import threading
import time
from urllib.parse import urlsplit

import pytest
from azure.core.exceptions import HttpResponseError

from test_files import VERSION, account_path, signed_request

MiB = 1024 * 1024


@pytest.fixture
def share(share_service):
    return share_service.create_share("myshare")


@pytest.fixture
def root(emulator, share):
    return emulator.services["files"].backend.share_path("myshare")


def path(emulator, *parts: str) -> str:
    return account_path(emulator) + "/myshare/" + "/".join(parts)


def error_code(headers) -> str:
    return headers.get("x-ms-error-code", "")


# ---- files that are not regular files --------------------------------------------------------------

def test_a_fifo_is_refused_without_blocking(emulator, share, root):
    os.mkfifo(root / "pipe")
    started = time.monotonic()
    for method in ("GET", "HEAD"):
        status, headers, _ = signed_request(emulator, method, path(emulator, "pipe"))  # 10 s client timeout
        assert (status, error_code(headers)) == (404, "ResourceNotFound")
    status, headers, _ = signed_request(emulator, "PUT", path(emulator, "pipe"), "",
                                        {"x-ms-type": "file", "x-ms-content-length": "4"})
    assert status in (404, 409) and error_code(headers) in ("ResourceNotFound", "ResourceTypeMismatch")
    status, headers, _ = signed_request(emulator, "PUT", path(emulator, "pipe"), "comp=range",
                                        {"x-ms-write": "update", "x-ms-range": "bytes=0-3"}, b"data")
    assert status == 404
    assert time.monotonic() - started < 10
    assert "pipe" not in [e["name"] for e in share.list_directories_and_files()]
    share.get_file_client("after.txt").upload_file(b"the endpoint still answers")
    assert root.joinpath("pipe").is_fifo()


# ---- Put Range: all or nothing ---------------------------------------------------------------------

def test_an_aborted_put_range_leaves_the_file_as_it_was(emulator, share, root):
    share.get_file_client("data.bin").upload_file(b"A" * (2 * MiB))
    before = root.joinpath("data.bin").read_bytes()
    target = path(emulator, "data.bin") + "?comp=range"
    # Send the headers and half of a 2 MiB range, then hang up.
    parts = urlsplit(emulator.files_url)
    headers = _signed_headers(emulator, "PUT", path(emulator, "data.bin"), "comp=range",
                              {"x-ms-write": "update", "x-ms-range": "bytes=0-{}".format(2 * MiB - 1)}, 2 * MiB)
    connection = socket.create_connection((parts.hostname, parts.port), timeout=10)
    head = "PUT {} HTTP/1.1\r\nHost: {}\r\n".format(target, parts.netloc) + "".join(
        "{}: {}\r\n".format(k, v) for k, v in headers.items()) + "\r\n"
    connection.sendall(head.encode() + b"B" * MiB)
    connection.close()
    time.sleep(0.5)  # give the server time to see the short body (nothing must have been written anyway)
    share.get_file_client("other.txt").upload_file(b"next request served")
    assert root.joinpath("data.bin").read_bytes() == before


def _signed_headers(emulator, method, raw_path, query, headers, length):
    """The headers signed_request would send for a body of ``length`` bytes."""
    import base64
    import email.utils
    import hashlib
    import hmac
    import requests
    headers = dict(headers)
    headers.setdefault("x-ms-date", email.utils.formatdate(usegmt=True))
    headers.setdefault("x-ms-version", VERSION)
    headers["Content-Length"] = str(length)
    lower = {k.lower(): v for k, v in headers.items()}
    standard = ["content-encoding", "content-language", "content-length", "content-md5", "content-type", "date",
                "if-modified-since", "if-match", "if-none-match", "if-unmodified-since"]
    values = [lower.get(h, "") for h in standard]
    sts = method + "\n" + "\n".join(values) + "\n\n"
    sts += "".join("{}:{}\n".format(k, v) for k, v in sorted(lower.items()) if k.startswith("x-ms-"))
    sts += "/" + emulator.account_name + raw_path
    pairs = sorted(p.partition("=")[::2] for p in query.split("&") if p)
    sts += "".join("\n{}:{}".format(k.lower(), requests.utils.unquote(v)) for k, v in pairs)
    signature = base64.b64encode(hmac.new(base64.b64decode(emulator.account_key), sts.encode(),
                                          hashlib.sha256).digest()).decode()
    headers["Authorization"] = "SharedKey {}:{}".format(emulator.account_name, signature)
    return headers


def test_a_failed_write_is_answered_at_once_and_changes_nothing(emulator, share, root, monkeypatch):
    share.get_file_client("data.bin").upload_file(b"A" * MiB)
    before = root.joinpath("data.bin").read_bytes()
    share_dir = os.path.realpath(root)

    def on_share(fd) -> bool:
        try:
            return os.readlink("/proc/self/fd/{}".format(fd)).startswith(share_dir)
        except OSError:
            return False

    def disk_full(real):
        def call(fd, *args, **kwargs):
            if on_share(fd):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real(fd, *args, **kwargs)
        return call

    monkeypatch.setattr(os, "posix_fallocate", disk_full(os.posix_fallocate))
    monkeypatch.setattr(os, "pwrite", disk_full(os.pwrite))
    monkeypatch.setattr(os, "splice", disk_full(os.splice))
    started = time.monotonic()
    status, headers, _ = signed_request(emulator, "PUT", path(emulator, "data.bin"), "comp=range",
                                        {"x-ms-write": "update", "x-ms-range": "bytes=0-{}".format(MiB - 1)},
                                        b"B" * MiB)
    assert (status, error_code(headers)) == (403, "ShareSizeLimitReached")
    assert time.monotonic() - started < 10
    monkeypatch.undo()
    assert root.joinpath("data.bin").read_bytes() == before
    share.get_file_client("data.bin").upload_range(b"C" * 10, offset=0, length=10)  # the connection pool is fine
    assert root.joinpath("data.bin").read_bytes()[:11] == b"C" * 10 + b"A"


# ---- names that are not UTF-8 --------------------------------------------------------------------------

def test_names_that_are_not_utf8_are_refused_at_the_api_and_skipped_in_listings(emulator, share, root):
    status, headers, _ = signed_request(emulator, "PUT", path(emulator, "bad%FFname"), "",
                                        {"x-ms-type": "file", "x-ms-content-length": "4"})
    assert (status, error_code(headers)) == (400, "InvalidUri")
    assert os.listdir(root) == []
    share.create_directory("out")
    os.makedirs(os.path.join(os.fsencode(root), b"out", b"dir\xfe"))
    with open(os.path.join(os.fsencode(root), b"out", b"model\xff.pt"), "wb") as f:
        f.write(b"written by a job")
    share.get_directory_client("out").get_file_client("ok.txt").upload_file(b"ok")
    assert [e["name"] for e in share.list_directories_and_files("out")] == ["ok.txt"]
    for method in ("GET", "HEAD", "DELETE"):
        status, headers, _ = signed_request(emulator, method, path(emulator, "out", "model%FF.pt"))
        assert status == 400, method
    with pytest.raises(HttpResponseError) as caught:
        share.get_directory_client("out").delete_directory()
    assert caught.value.status_code == 409  # not empty: what the job wrote stays


# ---- symbolic links --------------------------------------------------------------------------------------

def test_dangling_and_escaping_links_never_break_a_listing(emulator, share, root, tmp_path):
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"x" * 12345)
    share.create_directory("out")
    out = root / "out"
    (out / "ckpt_3.pt").write_bytes(b"checkpoint")
    os.symlink("ckpt_3.pt", out / "latest.pt")
    os.symlink("gone.pt", out / "dangling.pt")
    os.symlink(str(outside), out / "outside.pt")
    os.symlink("loop_b", out / "loop_a")
    os.symlink("loop_a", out / "loop_b")
    os.symlink(str(out / "ckpt_3.pt"), out / "absolute.pt")  # absolute, but inside the share
    listed = {e["name"]: e for e in share.list_directories_and_files("out")}
    assert sorted(listed) == ["absolute.pt", "ckpt_3.pt", "latest.pt"]
    assert listed["latest.pt"]["size"] == len(b"checkpoint")
    directory = share.get_directory_client("out")
    assert directory.get_file_client("latest.pt").download_file().readall() == b"checkpoint"
    assert directory.get_file_client("absolute.pt").download_file().readall() == b"checkpoint"
    for name in ("dangling.pt", "outside.pt", "loop_a"):
        with pytest.raises(HttpResponseError) as caught:
            directory.get_file_client(name).download_file().readall()
        assert caught.value.status_code in (400, 404), name


def test_a_link_swapped_in_mid_request_never_serves_a_file_outside(emulator, share, root, tmp_path):
    secret_dir = tmp_path / "secret"
    secret_dir.mkdir()
    (secret_dir / "f.txt").write_bytes(b"TOP SECRET")
    (root / "real").mkdir()
    (root / "real" / "f.txt").write_bytes(b"inside")
    stop = threading.Event()

    def swap():
        while not stop.is_set():
            try:
                os.rename(root / "real", root / "parked")
                os.symlink(str(secret_dir), root / "real")
                time.sleep(0.0005)
                os.unlink(root / "real")
                os.rename(root / "parked", root / "real")
                time.sleep(0.0005)  # both states last about as long
            except OSError:
                pass

    swapper = threading.Thread(target=swap)
    swapper.start()
    served = []
    try:
        for _ in range(150):
            status, _, body = signed_request(emulator, "GET", path(emulator, "real", "f.txt"))
            served.append((status, body))
    finally:
        stop.set()
        swapper.join()
    assert not any(b"TOP SECRET" in body for _, body in served)
    assert any(status == 200 and body == b"inside" for status, body in served)


# ---- malformed settings ------------------------------------------------------------------------------------

def test_malformed_xml_settings_and_versions_are_refused(emulator, share):
    service = account_path(emulator) + "/"
    status, headers, body = signed_request(emulator, "PUT", service, "restype=service&comp=properties",
                                           {"Content-Type": "application/xml"}, b"<StorageServiceProperties><Hour")
    assert (status, error_code(headers)) == (400, "InvalidXmlDocument"), body
    status, headers, _ = signed_request(emulator, "PUT", service, "restype=service&comp=properties",
                                        {}, b"<Other/>")
    assert (status, error_code(headers)) == (400, "InvalidXmlDocument")
    good = (b'<?xml version="1.0" encoding="utf-8"?><StorageServiceProperties><HourMetrics><Version>1.0</Version>'
            b"<Enabled>false</Enabled></HourMetrics></StorageServiceProperties>")
    status, _, _ = signed_request(emulator, "PUT", service, "restype=service&comp=properties", {}, good)
    assert status == 202
    share_path = account_path(emulator) + "/myshare"
    status, headers, _ = signed_request(emulator, "PUT", share_path, "restype=share&comp=properties",
                                        {"x-ms-share-quota": "10"}, b"<not xml")
    assert (status, error_code(headers)) == (400, "InvalidXmlDocument")
    for version in ("garbage", "2026-13-45", "1999-01-01", "2026-10-06x"):
        status, headers, body = signed_request(emulator, "GET", share_path, "restype=share",
                                               {"x-ms-version": version})
        assert (status, error_code(headers)) == (400, "InvalidHeaderValue"), version
        assert b"<HeaderName>x-ms-version</HeaderName>" in body
        assert headers["x-ms-version"] != version
    status, _, _ = signed_request(emulator, "GET", share_path, "restype=share")
    assert status == 200
