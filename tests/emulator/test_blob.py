"""The emulator's Blob endpoint, driven by the real azure-storage-blob SDK over https, and by
plain HTTP (http.client) where a test needs exact control over the wire."""
from __future__ import annotations

import base64
import datetime
import hashlib
import http.client
import os
import socket
import ssl
from urllib.parse import quote, urlsplit

import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceExistsError, \
    ResourceNotFoundError
from azure.storage.blob import BlobBlock, BlobServiceClient, ContainerClient, ContentSettings, \
    generate_blob_sas, generate_container_sas
from doc_blocks import code_block

KiB = 1024


def future(minutes: int = 30) -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=minutes)


def container_sas(emulator, permission: str, name: str = "data", **kwargs) -> str:
    return generate_container_sas(emulator.account_name, name, account_key=emulator.account_key,
                                  permission=permission, expiry=kwargs.pop("expiry", None) or future(), **kwargs)


def sas_container_client(emulator, sas: str, name: str = "data") -> ContainerClient:
    return ContainerClient(emulator.blob_url, name, credential=sas, connection_verify=emulator.ca_cert)


def raw_request(emulator, method: str, target: str, headers=None, body: bytes = b""):
    """One https request sent exactly as written (no path normalisation by a client library)."""
    parts = urlsplit(emulator.blob_url)
    context = ssl.create_default_context(cafile=emulator.ca_cert)
    conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=10, context=context)
    try:
        conn.request(method, target, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def blob_path(emulator, container: str, name: str) -> str:
    return "/{}/{}/{}".format(emulator.account_name, container, quote(name, safe=""))


# ---------------------------------------------------------------- containers

def test_container_lifecycle_and_listing(blob_service):
    for name in ("alpha", "beta", "beta2", "gamma"):
        blob_service.create_container(name, metadata={"owner": "tests"})
    with pytest.raises(ResourceExistsError) as exc:
        blob_service.create_container("alpha")
    assert exc.value.error_code == "ContainerAlreadyExists"

    assert [c.name for c in blob_service.list_containers()] == ["alpha", "beta", "beta2", "gamma"]
    assert [c.name for c in blob_service.list_containers(name_starts_with="beta")] == ["beta", "beta2"]
    pages = list(blob_service.list_containers(results_per_page=3).by_page())
    assert [[c.name for c in page] for page in pages] == [["alpha", "beta", "beta2"], ["gamma"]]
    assert list(blob_service.list_containers(include_metadata=True))[0].metadata == {"owner": "tests"}

    client = blob_service.get_container_client("alpha")
    assert client.exists()
    props = client.get_container_properties()
    assert props.metadata == {"owner": "tests"} and props.etag.startswith('"0x')
    client.set_container_metadata({"stage": "two"})
    assert client.get_container_properties().metadata == {"stage": "two"}

    client.delete_container()
    assert not client.exists()
    with pytest.raises(ResourceNotFoundError) as exc:
        client.get_container_properties()  # HEAD-less GET; the code comes from the body
    assert exc.value.error_code == "ContainerNotFound"
    with pytest.raises(ResourceNotFoundError):
        client.upload_blob("x", b"1")
    with pytest.raises(HttpResponseError) as exc:
        blob_service.create_container("Bad_Name")
    assert exc.value.error_code == "InvalidResourceName"


# ---------------------------------------------------------------- upload and download

def test_single_shot_upload_download_properties_and_metadata(container):
    data = os.urandom(100 * KiB)
    blob = container.get_blob_client("dir/data.bin")
    blob.upload_blob(data, metadata={"upload_status": "completed", "Name": "mnist"},
                     content_settings=ContentSettings(content_type="application/x-mnist", cache_control="no-cache"))
    props = blob.get_blob_properties()  # HEAD
    assert props.size == len(data) and props.blob_type == "BlockBlob"
    # x-ms-meta-* round-trip, names with '_' and in the case they were sent included
    assert props.metadata == {"upload_status": "completed", "Name": "mnist"}
    assert props.content_settings.content_type == "application/x-mnist"
    assert props.content_settings.cache_control == "no-cache"
    assert props.content_settings.content_md5 == hashlib.md5(data).digest()  # computed by Put Blob
    assert blob.download_blob().readall() == data

    blob.set_blob_metadata({"upload_status": "done"})
    assert blob.get_blob_properties().metadata == {"upload_status": "done"}
    listed = list(container.list_blobs(include=["metadata"]))
    assert [(b.name, b.size, b.metadata) for b in listed] == [("dir/data.bin", len(data), {"upload_status": "done"})]
    assert listed[0].content_settings.content_type == "application/x-mnist"

    with pytest.raises(ResourceExistsError) as exc:  # overwrite=False sends If-None-Match: *
        blob.upload_blob(b"other")
    assert exc.value.error_code == "BlobAlreadyExists"
    blob.upload_blob(b"other", overwrite=True)
    assert blob.download_blob().readall() == b"other"

    blob.delete_blob()
    assert not blob.exists()
    with pytest.raises(ResourceNotFoundError) as exc:
        blob.get_blob_properties()  # HEAD: the code comes from x-ms-error-code
    assert exc.value.error_code == "BlobNotFound"


def test_chunked_upload_with_concurrency_and_block_list(emulator, blob_service):
    client = BlobServiceClient.from_connection_string(
        emulator.blob_connection_string, connection_verify=emulator.ca_cert,
        max_single_put_size=64 * KiB, max_block_size=16 * KiB)
    blob = client.create_container("chunks").get_blob_client("big.bin")
    data = os.urandom(300 * KiB + 7)
    blob.upload_blob(data, max_concurrency=4, metadata={"kind": "chunked"})
    committed, uncommitted = blob.get_block_list("all")
    assert len(committed) == 19 and not uncommitted
    assert sum(block.size for block in committed) == len(data)
    assert blob.get_blob_properties().metadata == {"kind": "chunked"}

    reader = BlobServiceClient.from_connection_string(
        emulator.blob_connection_string, connection_verify=emulator.ca_cert,
        max_single_get_size=32 * KiB, max_chunk_get_size=16 * KiB)
    download = reader.get_blob_client("chunks", "big.bin").download_blob(max_concurrency=3)
    assert download.readall() == data
    assert blob.download_blob(offset=1000, length=5000).readall() == data[1000:6000]
    assert blob.download_blob(offset=len(data) - 10).readall() == data[-10:]


def test_put_block_and_put_block_list(emulator, container):
    blob = container.get_blob_client("staged")
    blob.stage_block("YQ==", b"aaa")
    blob.stage_block("Yg==", b"bb")
    blob.stage_block("Yw==", b"c")
    committed, uncommitted = blob.get_block_list("all")
    assert not committed and [(b.id, b.size) for b in uncommitted] == [("YQ==", 3), ("Yg==", 2), ("Yw==", 1)]
    assert not blob.exists()  # only staged: no blob yet

    blob.commit_block_list([BlobBlock("Yw=="), BlobBlock("YQ==")], metadata={"v": "1"})
    assert blob.download_blob().readall() == b"caaa"
    committed, uncommitted = blob.get_block_list("all")
    assert [(b.id, b.size) for b in committed] == [("Yw==", 1), ("YQ==", 3)] and not uncommitted  # Yg== dropped

    # A new list may reuse committed blocks (their bytes come out of the current blob) and new ones.
    blob.stage_block("ZA==", b"dddd")
    blob.commit_block_list([BlobBlock("YQ=="), BlobBlock("ZA=="), BlobBlock("YQ==")])
    assert blob.download_blob().readall() == b"aaaddddaaa"
    assert blob.get_blob_properties().metadata == {}

    with pytest.raises(HttpResponseError) as exc:
        blob.commit_block_list([BlobBlock("eA==")])
    assert exc.value.status_code == 400 and exc.value.error_code == "InvalidBlockList"
    assert blob.download_blob().readall() == b"aaaddddaaa"  # unchanged
    with pytest.raises(HttpResponseError) as exc:  # all block ids of one blob have the same length
        blob.stage_block("YQ==", b"1")
        blob.stage_block("YWFhYQ==", b"2")
    assert exc.value.error_code == "InvalidBlockId"
    # (the SDK base64-encodes the ids it is given; on the wire an id must be base64)
    status, headers, _ = raw_request(emulator, "PUT", blob_path(emulator, "data", "staged") + "?comp=block&blockid="
                                     + quote("not base64!") + "&" + container_sas(emulator, "w"),
                                     {"Content-Length": "1"}, b"x")
    assert status == 400 and headers["x-ms-error-code"] == "InvalidBlockId"


def test_ranged_get_edges(emulator, container):
    data = bytes(range(256)) * 40
    container.upload_blob("r.bin", data)
    container.upload_blob("empty", b"")
    path = blob_path(emulator, "data", "r.bin")
    sas = container_sas(emulator, "r")
    status, headers, body = raw_request(emulator, "GET", path + "?" + sas, {"x-ms-range": "bytes=10-19"})
    assert status == 206 and body == data[10:20]
    assert headers["content-range"] == "bytes 10-19/{}".format(len(data))
    assert headers["x-ms-blob-content-md5"] == base64.b64encode(hashlib.md5(data).digest()).decode()
    status, headers, body = raw_request(emulator, "GET", path + "?" + sas, {"Range": "bytes=10000-99999"})
    assert status == 206 and body == data[10000:]  # clamped to the blob
    status, headers, body = raw_request(emulator, "GET", path + "?" + sas, {"Range": "bytes=-5"})
    assert status == 206 and body == data[-5:]
    status, headers, _ = raw_request(emulator, "GET", path + "?" + sas, {"Range": "bytes=20000-"})
    assert status == 416 and headers["x-ms-error-code"] == "InvalidRange"
    status, headers, body = raw_request(emulator, "GET", path + "?" + sas,
                                        {"x-ms-range": "bytes=0-99", "x-ms-range-get-content-md5": "true"})
    assert status == 206 and headers["content-md5"] == base64.b64encode(hashlib.md5(data[:100]).digest()).decode()
    status, headers, _ = raw_request(emulator, "GET", path + "?" + sas, {"If-None-Match": headers["etag"]})
    assert status == 304
    # An empty blob: the SDK's first ranged GET gets 416, it then asks without a range.
    assert container.get_blob_client("empty").download_blob().readall() == b""


# ---------------------------------------------------------------- listing

def test_list_with_prefix_delimiter_and_paging(container):
    names = ["a.txt", "dir/one", "dir/sub/two", "dir/sub/three", "dir2/x", "dirt", "z/y/z"]
    for name in names:
        container.upload_blob(name, name.encode(), metadata={"n": str(len(name))})
    assert [b.name for b in container.list_blobs()] == sorted(names)
    assert [b.name for b in container.list_blobs(name_starts_with="dir/")] == ["dir/one", "dir/sub/three",
                                                                             "dir/sub/two"]
    # (the SDK puts a page's prefixes before its blobs, hence the sorting)
    top = list(container.walk_blobs())
    assert sorted(b.name for b in top) == ["a.txt", "dir/", "dir2/", "dirt", "z/"]
    under_dir = list(container.walk_blobs(name_starts_with="dir/"))
    assert sorted(b.name for b in under_dir) == ["dir/one", "dir/sub/"]

    # Delimiter listing, paged: a prefix counts as one result and pages never repeat or skip.
    pages = list(container.walk_blobs(results_per_page=2).by_page())
    assert [sorted(b.name for b in page) for page in pages] == [["a.txt", "dir/"], ["dir2/", "dirt"], ["z/"]]
    flat_pages = list(container.list_blobs(results_per_page=3, include=["metadata"]).by_page())
    flat = [[(b.name, b.metadata) for b in page] for page in flat_pages]
    assert [len(page) for page in flat] == [3, 3, 1]
    assert [name for page in flat for name, _ in page] == sorted(names)
    assert flat[0][0] == ("a.txt", {"n": "5"})


# ---------------------------------------------------------------- SAS and SharedKey

def test_container_and_blob_sas(emulator, container):
    container.upload_blob("in/data.bin", b"payload")
    reader = sas_container_client(emulator, container_sas(emulator, "rl"))
    assert reader.get_blob_client("in/data.bin").download_blob().readall() == b"payload"
    assert [b.name for b in reader.list_blobs()] == ["in/data.bin"]
    with pytest.raises(HttpResponseError) as exc:  # read-only: writes refused
        reader.upload_blob("new.bin", b"x")
    assert exc.value.status_code == 403 and exc.value.error_code == "AuthorizationPermissionMismatch"
    with pytest.raises(HttpResponseError) as exc:
        reader.get_blob_client("in/data.bin").delete_blob()
    assert exc.value.error_code == "AuthorizationPermissionMismatch"

    writer = sas_container_client(emulator, container_sas(emulator, "racwdl"))
    writer.upload_blob("out/model.onnx", b"model", metadata={"upload_status": "completed"})
    writer.get_blob_client("out/model.onnx").set_blob_metadata({"a": "b"})
    assert container.get_blob_client("out/model.onnx").get_blob_properties().metadata == {"a": "b"}

    create_only = sas_container_client(emulator, container_sas(emulator, "c"))
    create_only.upload_blob("fresh.bin", b"1")
    with pytest.raises(HttpResponseError) as exc:
        create_only.upload_blob("fresh.bin", b"2", overwrite=True)
    assert exc.value.error_code == "AuthorizationPermissionMismatch"

    # A blob SAS as a plain URL (what a download link is): GET works, PUT does not.
    token = generate_blob_sas(emulator.account_name, "data", "in/data.bin", account_key=emulator.account_key,
                              permission="r", expiry=future())
    url = "{}/data/in/data.bin?{}".format(emulator.blob_url, token)
    response = requests.get(url, verify=emulator.ca_cert, timeout=10)
    assert response.status_code == 200 and response.content == b"payload"
    response = requests.put(url, data=b"x", headers={"x-ms-blob-type": "BlockBlob"}, verify=emulator.ca_cert,
                            timeout=10)
    assert response.status_code == 403 and response.headers["x-ms-error-code"] == "AuthorizationPermissionMismatch"
    other = "{}/data/in/other.bin?{}".format(emulator.blob_url, token)  # the token names one blob
    assert requests.get(other, verify=emulator.ca_cert, timeout=10).status_code == 403
    listing = "{}/data?restype=container&comp=list&{}".format(emulator.blob_url, token)
    response = requests.get(listing, verify=emulator.ca_cert, timeout=10)
    assert response.status_code == 403 and response.headers["x-ms-error-code"] == "AuthorizationResourceTypeMismatch"


def test_forged_and_expired_sas_are_refused(emulator, container):
    container.upload_blob("f", b"1")
    token = container_sas(emulator, "r")
    forged = token.replace("sp=r", "sp=rw")
    expired = container_sas(emulator, "r", start=future(-60), expiry=future(-30))
    wrong_key = generate_container_sas(emulator.account_name, "data", account_key=base64.b64encode(b"k" * 64).decode(),
                                       permission="r", expiry=future())
    for bad in (forged, expired, wrong_key):
        status, headers, body = raw_request(emulator, "GET", blob_path(emulator, "data", "f") + "?" + bad)
        assert status == 403 and headers["x-ms-error-code"] == "AuthenticationFailed"
        assert b"sig=" not in body and emulator.account_key.encode() not in body


def test_bad_shared_key_and_missing_auth(emulator, container):
    wrong = base64.b64encode(b"w" * 64).decode()
    client = BlobServiceClient(emulator.blob_url, credential={"account_name": emulator.account_name,
                                                              "account_key": wrong},
                               connection_verify=emulator.ca_cert)
    with pytest.raises(ClientAuthenticationError) as exc:
        client.get_container_client("data").upload_blob("x", b"1")
    assert exc.value.status_code == 403 and exc.value.error_code == "AuthenticationFailed"
    assert wrong not in str(exc.value) and emulator.account_key not in str(exc.value)
    status, headers, _ = raw_request(emulator, "GET", blob_path(emulator, "data", "x"))
    assert status == 401 and headers["x-ms-error-code"] == "NoAuthenticationInformation"
    status, headers, _ = raw_request(emulator, "GET", "/otheraccount/data/x?" + container_sas(emulator, "r"))
    assert status == 403
    status, headers, _ = raw_request(emulator, "GET", blob_path(emulator, "data", "x") + "?" + container_sas(
        emulator, "r"), {"x-ms-version": "garbage"})
    assert status == 400 and headers["x-ms-error-code"] == "InvalidHeaderValue"
    assert headers["x-ms-version"] != "garbage"


# ---------------------------------------------------------------- names and paths

ODD_NAMES = ["../../escape.txt", "a/../b", "./x", "sp ace/ünïcödé/日本.txt", "per%cent?q=1#frag", "back\\slash",
             "ctrl\x01char", "trailing/"]


def test_blob_names_are_stored_safely(emulator, container, tmp_path):
    sas = container_sas(emulator, "racwdl")
    for name in ODD_NAMES:
        data = name.encode("utf-8")
        status, _, body = raw_request(emulator, "PUT", blob_path(emulator, "data", name) + "?" + sas,
                                      {"x-ms-blob-type": "BlockBlob", "Content-Length": str(len(data))}, data)
        assert status == 201, (name, body)
    # Dot segments sent unencoded are part of the name too (never a path on disk).
    status, _, _ = raw_request(emulator, "PUT", "/{}/data/x/../../../etc/passwd?{}".format(emulator.account_name, sas),
                               {"x-ms-blob-type": "BlockBlob", "Content-Length": "2"}, b"pw")
    assert status == 201
    assert raw_request(emulator, "GET", blob_path(emulator, "data", "x/../../../etc/passwd") + "?" + sas)[2] == b"pw"
    assert raw_request(emulator, "DELETE", blob_path(emulator, "data", "x/../../../etc/passwd") + "?" + sas)[0] == 202
    # Every name comes back exactly (the control character percent-encoded in the XML, decoded by the SDK).
    assert sorted(b.name for b in container.list_blobs()) == sorted(ODD_NAMES)
    for name in ODD_NAMES:
        status, _, body = raw_request(emulator, "GET", blob_path(emulator, "data", name) + "?" + sas)
        assert status == 200 and body == name.encode("utf-8")
    # Nothing was written outside the data directory's object store, under any of those names.
    stray = [p for p in tmp_path.rglob("*") if p.name in ("escape.txt", "b", "x", "日本.txt")]
    assert stray == []
    objects = tmp_path / "emulator-data" / "blob" / "objects"
    assert len(list(objects.iterdir())) == len(ODD_NAMES)
    # A name that is not UTF-8 is refused, not stored.
    status, headers, _ = raw_request(emulator, "PUT", "/{}/data/bad%FFname?{}".format(emulator.account_name, sas),
                                     {"x-ms-blob-type": "BlockBlob", "Content-Length": "1"}, b"1")
    assert status == 400 and headers["x-ms-error-code"] == "InvalidUri"


def test_host_style_addressing(emulator, monkeypatch):
    """azure-ai-ml builds https://<account>.blob.<suffix>; azure-storage-blob then takes the
    account name for SharedKey from the host. *.localhost needs a resolver entry: patched here."""
    real = socket.getaddrinfo

    def resolve(host, *args, **kwargs):
        if isinstance(host, str) and host.endswith(".blob.core.localhost"):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    port = urlsplit(emulator.blob_url).port
    url = "https://{}.blob.core.localhost:{}".format(emulator.account_name, port)
    client = BlobServiceClient(url, credential=emulator.account_key, connection_verify=emulator.ca_cert)
    assert client.account_name == emulator.account_name
    client.create_container("hosted").upload_blob("LocalUpload/x/f.txt", b"hi", metadata={"upload_status": "ok"})
    # the same blob, path-style
    path_style = BlobServiceClient.from_connection_string(emulator.blob_connection_string,
                                                          connection_verify=emulator.ca_cert)
    blob = path_style.get_blob_client("hosted", "LocalUpload/x/f.txt")
    assert blob.download_blob().readall() == b"hi" and blob.get_blob_properties().metadata == {"upload_status": "ok"}
    other = BlobServiceClient("https://other.blob.core.localhost:{}".format(port), credential=emulator.account_key,
                              connection_verify=emulator.ca_cert)
    with pytest.raises(HttpResponseError) as exc:
        other.get_container_client("hosted").get_container_properties()
    assert exc.value.status_code == 403


def test_blobs_survive_a_restart(tmp_path):
    import emulator as emulator_package

    data_dir = tmp_path / "emu"
    first = emulator_package.start(data_dir)
    try:
        service = BlobServiceClient.from_connection_string(first.blob_connection_string,
                                                           connection_verify=first.ca_cert)
        blob = service.create_container("keep").get_blob_client("f")
        blob.upload_blob(b"kept", metadata={"m": "1"})
        service.get_blob_client("keep", "staged").stage_block("YQ==", b"s")
    finally:
        first.stop()
    second = emulator_package.start(data_dir)
    try:
        service = BlobServiceClient.from_connection_string(second.blob_connection_string,
                                                           connection_verify=second.ca_cert)
        blob = service.get_blob_client("keep", "f")
        assert blob.download_blob().readall() == b"kept" and blob.get_blob_properties().metadata == {"m": "1"}
        _, uncommitted = service.get_blob_client("keep", "staged").get_block_list("uncommitted")
        assert [b.id for b in uncommitted] == ["YQ=="]
    finally:
        second.stop()


def test_describe_lists_the_blob_endpoint(emulator):
    described = emulator.describe()
    assert described["blob_url"] == emulator.blob_url and emulator.blob_url.startswith("https://127.0.0.1:")
    assert "BlobEndpoint=" + emulator.blob_url in described["blob_connection_string"]


def test_docs_blob_example_runs(emulator):
    """docs/emulator.md's Blob storage example, run as written against this emulator."""
    code = code_block("docs/emulator.md", "Blob storage")
    exec(compile(code, "docs/emulator.md (Blob storage)", "exec"), {"emu": emulator})
    service = BlobServiceClient.from_connection_string(emulator.blob_connection_string,
                                                       connection_verify=emulator.ca_cert)
    assert service.get_blob_client("data", "mnist/train.txt").get_blob_properties().metadata == {
        "upload_status": "completed"}
