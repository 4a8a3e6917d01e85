"""The emulator's Azure Files endpoint, driven by the real azure-storage-file-share SDK and by
plain HTTP (requests / http.client) where a test needs exact control over the wire."""
from __future__ import annotations

import base64
import datetime
import email.utils
import hashlib
import hmac
import http.client
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote, urlsplit

import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceExistsError, \
    ResourceNotFoundError
from azure.storage.fileshare import ContentSettings, ShareFileClient, ShareServiceClient, generate_file_sas, generate_share_sas

MiB = 1024 * 1024
# The x-ms-version (and SAS sv) of the installed SDK: 12.27.1 sends 2026-10-06.
from azure.storage.fileshare._shared.constants import X_MS_VERSION as VERSION  # noqa: E402


# ---------------------------------------------------------------- helpers

@pytest.fixture
def share(share_service):
    return share_service.create_share("myshare")


@pytest.fixture
def backend(emulator):
    return emulator.services["files"].backend


def future(minutes: int = 30) -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=minutes)


def file_url(emulator, share: str, path: str) -> str:
    return "{}/{}/{}".format(emulator.files_url, share, "/".join(quote(p, safe="") for p in path.split("/")))


def sdk_sas(emulator, share: str, path: str, permission: str = "r", expiry=None, **kwargs) -> str:
    parts = path.split("/")
    return generate_file_sas(emulator.account_name, share, parts, account_key=emulator.account_key,
                             permission=permission, expiry=expiry or future(), **kwargs)


def signed_request(emulator, method: str, raw_path: str, query: str = "", headers=None, body: bytes = b"",
                   key: str = None):
    """A SharedKey request signed here the way the SDK signs it, sent with http.client exactly
    as written (no path normalisation)."""
    headers = dict(headers or {})
    headers.setdefault("x-ms-date", email.utils.formatdate(usegmt=True))
    headers.setdefault("x-ms-version", VERSION)
    headers["Content-Length"] = str(len(body))
    lower = {k.lower(): v for k, v in headers.items()}
    standard = ["content-encoding", "content-language", "content-length", "content-md5", "content-type", "date",
                "if-modified-since", "if-match", "if-none-match", "if-unmodified-since"]
    values = [lower.get(h, "") for h in standard]
    if values[2] == "0":
        values[2] = ""
    sts = method + "\n" + "\n".join(values) + "\n\n"
    sts += "".join("{}:{}\n".format(k, v) for k, v in sorted(lower.items()) if k.startswith("x-ms-"))
    sts += "/" + emulator.account_name + raw_path
    pairs = sorted(p.partition("=")[::2] for p in query.split("&") if p)
    sts += "".join("\n{}:{}".format(k.lower(), requests.utils.unquote(v)) for k, v in pairs)
    secret = base64.b64decode(key or emulator.account_key)
    signature = base64.b64encode(hmac.new(secret, sts.encode(), hashlib.sha256).digest()).decode()
    headers["Authorization"] = "SharedKey {}:{}".format(emulator.account_name, signature)
    return raw_request(emulator, method, raw_path + ("?" + query if query else ""), headers, body)


def raw_request(emulator, method: str, target: str, headers=None, body: bytes = b""):
    parts = urlsplit(emulator.files_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request(method, target, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def account_path(emulator) -> str:
    return "/" + emulator.account_name


# ---------------------------------------------------------------- shares

def test_share_lifecycle_and_listing(share_service):
    for name in ("alpha", "beta", "beta2", "gamma"):
        share_service.create_share(name, metadata={"owner": "tests"})
    with pytest.raises(ResourceExistsError) as exc:
        share_service.create_share("alpha")
    assert exc.value.error_code == "ShareAlreadyExists"

    assert [s.name for s in share_service.list_shares()] == ["alpha", "beta", "beta2", "gamma"]
    assert [s.name for s in share_service.list_shares(name_starts_with="beta")] == ["beta", "beta2"]
    pages = list(share_service.list_shares(results_per_page=3).by_page())
    assert [[s.name for s in page] for page in pages] == [["alpha", "beta", "beta2"], ["gamma"]]
    with_metadata = list(share_service.list_shares(include_metadata=True))
    assert with_metadata[0].metadata == {"owner": "tests"}

    props = share_service.get_share_client("alpha").get_share_properties()
    assert props.quota == 5120 and props.etag.startswith('"0x') and props.last_modified
    assert props.metadata == {"owner": "tests"}

    share_service.delete_share("alpha")
    with pytest.raises(ResourceNotFoundError) as exc:
        share_service.get_share_client("alpha").get_share_properties()  # HEAD: code from x-ms-error-code
    assert exc.value.error_code == "ShareNotFound"
    with pytest.raises(ResourceNotFoundError) as exc:
        share_service.delete_share("alpha")
    assert exc.value.error_code == "ShareNotFound"


def test_invalid_share_names_are_refused(emulator, share_service):
    for name in ("ab", "Upper", "double--hyphen", "-lead", "trail-", "x" * 64):
        with pytest.raises(HttpResponseError) as exc:
            share_service.create_share(name)
        assert exc.value.status_code == 400 and exc.value.error_code == "InvalidResourceName", name


# ---------------------------------------------------------------- directories

def test_directories_listing_and_errors(share):
    share.create_directory("dir1")
    share.get_directory_client("dir1").create_subdirectory("sub")
    with pytest.raises(ResourceExistsError) as exc:
        share.create_directory("dir1")
    assert exc.value.error_code == "ResourceAlreadyExists"
    with pytest.raises(ResourceNotFoundError) as exc:
        share.create_directory("missing/child")
    assert exc.value.error_code == "ParentNotFound"

    directory = share.get_directory_client("dir1")
    for i in range(7):
        directory.upload_file("file{}.txt".format(i), b"x" * i)
    listed = list(share.list_directories_and_files("dir1"))
    assert sorted((e["name"], e["is_directory"]) for e in listed) == \
        [("file{}.txt".format(i), False) for i in range(7)] + [("sub", True)]
    assert [e["size"] for e in listed if not e["is_directory"]] == list(range(7))
    pages = list(share.list_directories_and_files("dir1", results_per_page=3).by_page())
    assert [len(list(page)) for page in pages] == [3, 3, 2]
    assert [e["name"] for e in share.list_directories_and_files("dir1", name_starts_with="file1")] == ["file1.txt"]
    assert [e["name"] for e in share.list_directories_and_files()] == ["dir1"]

    props = directory.get_directory_properties()
    assert props.etag and props.last_modified and props.is_directory
    with pytest.raises(ResourceNotFoundError):
        share.get_directory_client("nope").get_directory_properties()
    with pytest.raises(ResourceExistsError) as exc:
        share.delete_directory("dir1")
    assert exc.value.error_code == "DirectoryNotEmpty"
    share.get_directory_client("dir1/sub").delete_directory()
    for i in range(7):
        directory.delete_file("file{}.txt".format(i))
    share.delete_directory("dir1")
    assert list(share.list_directories_and_files()) == []


# ---------------------------------------------------------------- files

def test_upload_download_properties_delete(emulator, share):
    share.create_directory("dir1")
    small = share.get_file_client("dir1/small.txt")
    small.upload_file(b"hello world", content_settings=ContentSettings(content_type="text/plain"),
                      metadata={"kind": "greeting"})
    assert small.download_file().readall() == b"hello world"
    props = small.get_file_properties()
    assert props.size == 11 and props.content_settings.content_type == "text/plain"
    assert props.metadata == {"kind": "greeting"}

    empty = share.get_file_client("dir1/empty.bin")
    empty.upload_file(b"")
    assert empty.download_file().readall() == b""
    assert empty.get_file_properties().size == 0

    data = os.urandom(9 * MiB + 5)
    big = ShareFileClient.from_connection_string(emulator.files_connection_string, "myshare", "dir1/big.bin",
                                                 max_range_size=MiB, max_single_get_size=MiB, max_chunk_get_size=MiB)
    big.upload_file(data)
    assert big.get_file_properties().size == len(data)
    assert big.download_file().readall() == data  # 9 ranged GETs with one stable ETag
    big.upload_file(data[::-1], validate_content=True)  # Content-MD5 on every range, checked by the service
    assert big.download_file(validate_content=True).readall() == data[::-1]  # x-ms-range-get-content-md5
    big.upload_file(data)
    assert big.download_file(offset=MiB - 3, length=MiB + 10).readall() == data[MiB - 3:2 * MiB + 7]
    assert big.download_file(offset=len(data) - 2).readall() == data[-2:]
    ranges = big.list_ranges() if hasattr(big, "list_ranges") else big.get_ranges()  # 12.27 renamed it
    assert [(r["start"], r["end"]) for r in ranges] == [(0, len(data) - 1)]

    big.resize_file(100)
    assert big.download_file().readall() == data[:100]
    big.delete_file()
    with pytest.raises(ResourceNotFoundError) as exc:
        big.get_file_properties()
    assert exc.value.error_code == "ResourceNotFound"
    with pytest.raises(ResourceNotFoundError):
        big.download_file()


def test_ranged_get_edges(emulator, share):
    share.get_file_client("ten.bin").upload_file(b"0123456789")
    share.get_file_client("empty.bin").upload_file(b"")
    sas = sdk_sas(emulator, "myshare", "ten.bin")
    url = file_url(emulator, "myshare", "ten.bin") + "?" + sas
    whole = requests.get(url)
    assert whole.status_code == 200 and whole.content == b"0123456789"
    assert whole.headers["Accept-Ranges"] == "bytes" and whole.headers["x-ms-type"] == "File"
    assert whole.headers["x-ms-version"] == VERSION  # from the SAS's sv: the request sent none
    part = requests.get(url, headers={"Range": "bytes=4-100"})
    assert part.status_code == 206 and part.content == b"456789"
    assert part.headers["Content-Range"] == "bytes 4-9/10" and part.headers["ETag"] == whole.headers["ETag"]
    assert requests.get(url, headers={"x-ms-range": "bytes=0-1"}).content == b"01"
    assert requests.get(url, headers={"Range": "bytes=-3"}).content == b"789"
    past = requests.get(url, headers={"Range": "bytes=10-"})
    assert past.status_code == 416 and past.headers["x-ms-error-code"] == "InvalidRange"
    empty_url = file_url(emulator, "myshare", "empty.bin") + "?" + sdk_sas(emulator, "myshare", "empty.bin")
    assert requests.get(empty_url, headers={"Range": "bytes=0-"}).status_code == 416
    assert requests.get(empty_url).status_code == 200


def test_put_range_errors(emulator, share):
    share.get_file_client("f.bin").create_file(10)
    path = account_path(emulator) + "/myshare/f.bin"
    status, headers, _ = signed_request(emulator, "PUT", path, "comp=range",
                                        {"x-ms-write": "update", "x-ms-range": "bytes=0-4"}, b"abc")
    assert status == 400 and headers["x-ms-error-code"] == "InvalidHeaderValue"
    status, headers, _ = signed_request(emulator, "PUT", path, "comp=range",
                                        {"x-ms-write": "update", "x-ms-range": "bytes=8-11"}, b"abcd")
    assert status == 416 and headers["x-ms-error-code"] == "InvalidRange"
    status, headers, _ = signed_request(emulator, "PUT", path, "comp=range",
                                        {"x-ms-write": "update", "x-ms-range": "bytes=2-3"}, b"zz")
    assert status == 201 and headers["etag"]
    status, _, _ = signed_request(emulator, "PUT", path, "comp=range",
                                  {"x-ms-write": "update", "x-ms-range": "bytes=2-3",
                                   "Content-MD5": base64.b64encode(hashlib.md5(b"no").digest()).decode()}, b"zz")
    assert status == 400
    assert share.get_file_client("f.bin").download_file().readall() == b"\0\0zz" + b"\0" * 6


# ---------------------------------------------------------------- authentication

def test_wrong_shared_key_is_refused(emulator):
    wrong = base64.b64encode(b"not the key" * 6).decode()
    client = ShareServiceClient(emulator.files_url, credential={"account_name": emulator.account_name,
                                                                 "account_key": wrong})
    with pytest.raises(ClientAuthenticationError) as exc:
        client.create_share("nope")
    assert exc.value.status_code == 403 and exc.value.error_code == "AuthenticationFailed"
    assert wrong not in str(exc.value) and emulator.account_key not in str(exc.value)


def test_missing_auth_old_date_and_foreign_account(emulator, share):
    status, headers, body = raw_request(emulator, "GET", account_path(emulator) + "/?comp=list")
    assert status == 401 and headers["x-ms-error-code"] == "NoAuthenticationInformation"
    assert b"<Code>NoAuthenticationInformation</Code>" in body
    old = email.utils.formatdate(time.time() - 3600, usegmt=True)
    status, headers, _ = signed_request(emulator, "GET", account_path(emulator) + "/", "comp=list",
                                        {"x-ms-date": old})
    assert status == 403 and headers["x-ms-error-code"] == "AuthenticationFailed"
    status, headers, _ = raw_request(emulator, "GET", "/someoneelse/myshare?restype=share")
    assert status == 403 and headers["x-ms-error-code"] == "AuthenticationFailed"
    status, _, body = signed_request(emulator, "GET", account_path(emulator) + "/", "comp=list")
    assert status == 200 and b"<Name>myshare</Name>" in body


def test_sdk_generated_sas_and_file_sas_url(emulator, share, backend):
    data = bytes(range(256)) * 4
    share.create_directory("dir 1")
    share.get_file_client("dir 1/data.bin").upload_file(data)
    url = file_url(emulator, "myshare", "dir 1/data.bin") + "?" + sdk_sas(emulator, "myshare", "dir 1/data.bin")
    response = requests.get(url, headers={"Range": "bytes=100-"})
    assert response.status_code == 206 and response.content == data[100:]

    share_token = generate_share_sas(emulator.account_name, "myshare", emulator.account_key, permission="rl",
                                     expiry=future())
    assert requests.get(file_url(emulator, "myshare", "dir 1/data.bin") + "?" + share_token).content == data
    listing = requests.get("{}/myshare/dir%201?restype=directory&comp=list&{}".format(emulator.files_url, share_token))
    assert listing.status_code == 200 and b"<Name>data.bin</Name>" in listing.content

    mine = backend.file_sas_url("myshare", "dir 1/data.bin", expiry_minutes=5)
    assert mine.startswith(emulator.files_url + "/myshare/dir%201/data.bin?") and "sr=f" in mine and "sp=rl" in mine
    assert requests.get(mine, headers={"Range": "bytes=1000-"}).content == data[1000:]
    # the SDK accepts the emulator's token as a credential too
    client = ShareFileClient(emulator.files_url, "myshare", "dir 1/data.bin", credential=mine.split("?", 1)[1])
    assert client.download_file().readall() == data


def test_forged_expired_and_insufficient_sas_are_refused(emulator, share):
    share.get_file_client("a.txt").upload_file(b"secret a")
    share.get_file_client("b.txt").upload_file(b"secret b")
    token = sdk_sas(emulator, "myshare", "a.txt")
    a_url = file_url(emulator, "myshare", "a.txt")

    def refused(url, code="AuthenticationFailed", method="GET", **kwargs):
        response = requests.request(method, url, **kwargs)
        assert response.status_code == 403, (url, response.status_code)
        assert response.headers["x-ms-error-code"] == code
        assert b"secret" not in response.content
        return response

    assert requests.get(a_url + "?" + token).content == b"secret a"
    signature = [p for p in token.split("&") if p.startswith("sig=")][0]
    tampered = token.replace(signature, "sig=" + quote(base64.b64encode(b"x" * 32).decode(), safe=""))
    refused(a_url + "?" + tampered)
    refused(file_url(emulator, "myshare", "b.txt") + "?" + token)          # a SAS for another file
    refused(a_url + "?" + token.replace("sp=r", "sp=rwd"))                   # permissions changed after signing
    expired = sdk_sas(emulator, "myshare", "a.txt", expiry=future(-5))
    response = refused(a_url + "?" + expired)
    assert b"Signature not valid in the specified time frame" in response.content
    not_yet = sdk_sas(emulator, "myshare", "a.txt", start=future(10))
    refused(a_url + "?" + not_yet)
    https_only = sdk_sas(emulator, "myshare", "a.txt", protocol="https")
    refused(a_url + "?" + https_only, code="AuthorizationProtocolMismatch")
    refused(a_url + "?" + token, code="AuthorizationPermissionMismatch", method="DELETE")
    refused(a_url + "?" + token, code="AuthorizationPermissionMismatch", method="PUT",
            headers={"x-ms-type": "file", "x-ms-content-length": "1"})
    account_sas = "ss=f&srt=sco&sp=rl&se=2099-01-01&sv=2020-02-10&sig=abc"
    refused(a_url + "?" + account_sas)
    assert share.get_file_client("a.txt").download_file().readall() == b"secret a"


# ---------------------------------------------------------------- paths

def test_path_traversal_is_refused(emulator, share, backend, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"top secret")
    root = backend.share_path("myshare")
    share.create_directory("dir")
    os.symlink(str(outside), str(root / "dir" / "escape"))
    os.symlink(str(outside / "secret.txt"), str(root / "link.txt"))
    (root / "inside.txt").write_bytes(b"fine")
    os.symlink("inside.txt", str(root / "alias.txt"))  # a link that stays inside is served
    share_token = generate_share_sas(emulator.account_name, "myshare", emulator.account_key, permission="rwdlc",
                                     expiry=future())
    base = account_path(emulator) + "/myshare"
    attempts = [base + "/../../../../../../etc/passwd", base + "/dir/../../x", base + "/%2e%2e/%2e%2e/etc/passwd",
                base + "/dir/..%2f..%2fsecret.txt", base + "/dir%5c..%5c..%5csecret.txt",
                base + "/dir/escape/secret.txt", base + "/link.txt", base + "/dir//x", base + "/x%00y"]
    for target in attempts:
        for auth in ("sas", "sharedkey"):
            if auth == "sas":
                status, _, body = raw_request(emulator, "GET", target + "?" + share_token)
            else:
                path = target
                status, _, body = signed_request(emulator, "GET", path)
            assert status == 400, (target, auth, status)
            assert b"<Code>InvalidUri</Code>" in body or b"<Code>InvalidResourceName</Code>" in body
            assert b"top secret" not in body
    for target in (base + "/dir/escape/new.txt", base + "/../evil.txt"):
        status, _, _ = signed_request(emulator, "PUT", target, "", {"x-ms-type": "file", "x-ms-content-length": "4"})
        assert status == 400, target
    assert sorted(os.listdir(outside)) == ["secret.txt"]
    names = [e["name"] for e in share.list_directories_and_files()] + \
        [e["name"] for e in share.list_directories_and_files("dir")]
    assert "link.txt" not in names and "escape" not in names and "inside.txt" in names
    assert share.get_file_client("alias.txt").download_file().readall() == b"fine"
    with pytest.raises(HttpResponseError):
        share.get_file_client("link.txt").delete_file()
    assert (outside / "secret.txt").exists()


# ---------------------------------------------------------------- concurrency

def test_parallel_out_of_order_ranges(emulator, share):
    data = os.urandom(6 * MiB + 12345)
    client = share.get_file_client("parallel.bin")
    client.create_file(len(data))
    chunk = 512 * 1024
    offsets = list(range(0, len(data), chunk))
    random.Random(7).shuffle(offsets)

    def put(offset):
        client.upload_range(data[offset:offset + chunk], offset=offset, length=len(data[offset:offset + chunk]))

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(put, offsets))
    assert client.download_file().readall() == data

    # raw SharedKey-signed ranges of another file, in reverse order, from threads
    other = share.get_file_client("reverse.bin")
    other.create_file(len(data))
    path = account_path(emulator) + "/myshare/reverse.bin"

    def raw_put(offset):
        piece = data[offset:offset + chunk]
        status, _, _ = signed_request(emulator, "PUT", path, "comp=range",
                                      {"x-ms-write": "update",
                                       "x-ms-range": "bytes={}-{}".format(offset, offset + len(piece) - 1),
                                       "Content-Type": "application/octet-stream"}, piece)
        return status

    with ThreadPoolExecutor(max_workers=6) as pool:
        assert set(pool.map(raw_put, sorted(offsets, reverse=True))) == {201}
    assert other.download_file().readall() == data

    # SDK parallel upload of a whole file
    share.get_file_client("sdk4.bin").upload_file(data, max_concurrency=4)
    assert share.get_file_client("sdk4.bin").download_file().readall() == data


def test_follow_a_file_that_is_being_written(emulator, share, backend):
    share.create_directory("job")
    target = backend.share_path("myshare") / "job" / "stdout.txt"
    target.write_bytes(b"")
    lines = [("line {}\n".format(i) * 50).encode() for i in range(60)]
    expected = b"".join(lines)
    url = backend.file_sas_url("myshare", "job/stdout.txt", expiry_minutes=5)

    def writer():
        with open(target, "ab") as f:
            for line in lines:
                f.write(line)
                f.flush()
                time.sleep(0.003)

    thread = threading.Thread(target=writer)
    thread.start()
    seen = b""
    deadline = time.time() + 20
    while len(seen) < len(expected) and time.time() < deadline:
        response = requests.get(url, headers={"Range": "bytes={}-".format(len(seen))})
        if response.status_code == 416:
            time.sleep(0.002)
            continue
        assert response.status_code == 206, response.status_code
        start, end_total = response.headers["Content-Range"].split(" ")[1].split("-")
        assert int(start) == len(seen)
        seen += response.content
    thread.join()
    assert seen == expected


# ---------------------------------------------------------------- persistence and backend API

def test_restart_keeps_shares_and_files(emulator, share):
    import emulator as emulator_package

    data = os.urandom(300_000)
    share.create_directory("keep")
    share.get_file_client("keep/data.bin").upload_file(data, metadata={"a": "1"})
    data_dir, key = emulator.data_dir, emulator.account_key
    emulator.stop()
    again = emulator_package.start(data_dir)
    try:
        assert again.account_key == key
        service = ShareServiceClient.from_connection_string(again.files_connection_string)
        assert [s.name for s in service.list_shares()] == ["myshare"]
        client = service.get_share_client("myshare").get_file_client("keep/data.bin")
        assert client.download_file().readall() == data
        assert client.get_file_properties().metadata == {"a": "1"}
        with pytest.raises(ResourceExistsError):
            service.create_share("myshare")
    finally:
        again.stop()


def test_backend_api(emulator, share, backend):
    from emulator.files import ShareNotFound

    assert backend.account_name == emulator.account_name
    root = backend.share_path("myshare")
    assert root.is_dir()
    (root / "from-disk.txt").write_bytes(b"written by a job")
    assert share.get_file_client("from-disk.txt").download_file().readall() == b"written by a job"
    with pytest.raises(ShareNotFound):
        backend.share_path("nosuchshare")
    assert issubclass(ShareNotFound, LookupError)

    assert backend.share_from_url(emulator.files_url + "/myshare") == "myshare"
    assert backend.share_from_url(emulator.files_url + "/myshare/") == "myshare"
    assert backend.share_from_url("https://{}.file.core.windows.net/myshare".format(emulator.account_name)) == "myshare"
    for bad in ("https://other.file.core.windows.net/myshare", "http://127.0.0.1:1/other/myshare", "not a url",
                emulator.files_url, emulator.files_url + "/myshare/dir", "ftp://127.0.0.1/x/y"):
        with pytest.raises(ValueError):
            backend.share_from_url(bad)

    assert backend.check_account_key(emulator.account_name, emulator.account_key)
    assert not backend.check_account_key(emulator.account_name, emulator.account_key[:-4] + "AAAA")
    assert not backend.check_account_key("other", emulator.account_key)
    assert emulator.account_key not in repr(backend)


def test_sas_signatures_match_the_sdk(emulator, backend):
    """The emulator signs tokens exactly as generate_file_sas does (same query string)."""
    from emulator.files import auth

    expiry = datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    ours = auth.generate_sas(emulator.account_name, base64.b64decode(emulator.account_key), "myshare",
                             "dir/f.txt", "rl", expiry, version=VERSION)
    theirs = generate_file_sas(emulator.account_name, "myshare", ["dir", "f.txt"], account_key=emulator.account_key,
                               permission="rl", expiry=expiry)
    assert ours == theirs


def test_metadata_names_with_underscores_are_signed_and_kept(share):
    """werkzeug drops header names with '_' from the environ; the File endpoint reads the headers as
    sent, so such metadata round-trips and the SharedKey signature over it holds."""
    file_client = share.get_file_client("meta.txt")
    file_client.upload_file(b"x", metadata={"upload_status": "completed", "Owner": "tests"})
    assert file_client.get_file_properties().metadata == {"upload_status": "completed", "Owner": "tests"}
