"""Issue 15, storage edge cases as Azure behaves: Shared Key signs the path exactly as sent, a SAS
names a service version the emulator implements, and metadata is at most 8 KiB (Blob and Files)."""
from __future__ import annotations

import base64
import datetime
import email.utils
import hashlib
import hmac
import http.client
import ssl
from urllib.parse import urlsplit

import pytest
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import BlobServiceClient, generate_blob_sas
from azure.storage.fileshare import generate_file_sas

from emulator.core.storage_auth import DEFAULT_VERSION

VERSION = DEFAULT_VERSION


@pytest.fixture
def share(share_service):
    return share_service.create_share("myshare")


def future(minutes: int = 30) -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=minutes)


def send(emulator, endpoint: str, method: str, target: str, headers=None):
    """One request to the Blob (https) or File (http) endpoint, sent exactly as written."""
    parts = urlsplit(emulator.blob_url if endpoint == "blob" else emulator.files_url)
    if endpoint == "blob":
        conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=10,
                                           context=ssl.create_default_context(cafile=emulator.ca_cert))
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request(method, target, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def shared_key_headers(emulator, method: str, signed_path: str) -> dict:
    """SharedKey headers for a body-less request, signed for ``signed_path`` as the SDK signs it."""
    headers = {"x-ms-date": email.utils.formatdate(usegmt=True), "x-ms-version": VERSION}
    sts = method + "\n" * 12 + "".join("{}:{}\n".format(k, v) for k, v in sorted(headers.items()))
    sts += "/" + emulator.account_name + signed_path
    signature = base64.b64encode(hmac.new(base64.b64decode(emulator.account_key), sts.encode(),
                                          hashlib.sha256).digest()).decode()
    headers["Authorization"] = "SharedKey {}:{}".format(emulator.account_name, signature)
    return headers


# ---- Shared Key: the canonicalised resource is the path as sent -------------------------------------

def test_a_blob_signature_holds_only_for_the_path_it_was_signed_for(emulator, container):
    container.upload_blob("a b", b"space")
    container.upload_blob("a%20b", b"percent")
    spaced = "/{}/data/a%20b".format(emulator.account_name)       # blob "a b"
    percent = "/{}/data/a%2520b".format(emulator.account_name)    # blob "a%20b"
    status, _, body = send(emulator, "blob", "GET", spaced, shared_key_headers(emulator, "GET", spaced))
    assert (status, body) == (200, b"space")
    status, _, body = send(emulator, "blob", "GET", percent, shared_key_headers(emulator, "GET", percent))
    assert (status, body) == (200, b"percent")
    # Signed for "a b", sent for "a%20b": the decoded path of the one is the path as sent of the other.
    status, headers, body = send(emulator, "blob", "GET", percent, shared_key_headers(emulator, "GET", spaced))
    assert (status, headers["x-ms-error-code"]) == (403, "AuthenticationFailed")
    assert b"percent" not in body


def test_a_file_signature_holds_only_for_the_path_it_was_signed_for(emulator, share):
    share.get_file_client("a b").upload_file(b"space")
    share.get_file_client("a%20b").upload_file(b"percent")
    spaced = "/{}/myshare/a%20b".format(emulator.account_name)
    percent = "/{}/myshare/a%2520b".format(emulator.account_name)
    status, _, body = send(emulator, "files", "GET", percent, shared_key_headers(emulator, "GET", percent))
    assert (status, body) == (200, b"percent")
    status, headers, _ = send(emulator, "files", "GET", percent, shared_key_headers(emulator, "GET", spaced))
    assert (status, headers["x-ms-error-code"]) == (403, "AuthenticationFailed")


# ---- SAS: only the service versions the emulator implements -----------------------------------------

@pytest.mark.parametrize("version", ["2099-01-01", "2019-01-01", "garbage", "2026-10-06x"])
def test_a_sas_for_a_version_the_emulator_does_not_implement_is_refused(emulator, container, share, version):
    container.upload_blob("f.txt", b"blob")
    share.get_file_client("f.txt").upload_file(b"file")
    blob_auth = emulator.services["blob"].backend.auth
    files_auth = emulator.services["files"].backend.auth
    for endpoint, path, token in (
            ("blob", "/{}/data/f.txt".format(emulator.account_name),
             blob_auth.generate_sas("data", "f.txt", "r", future(), version=version)),
            ("files", "/{}/myshare/f.txt".format(emulator.account_name),
             files_auth.generate_sas("myshare", "f.txt", "r", future(), version=version))):
        status, headers, body = send(emulator, endpoint, "GET", path + "?" + token)
        assert (status, headers["x-ms-error-code"]) == (403, "AuthenticationFailed"), (endpoint, body)
        assert b"AuthenticationErrorDetail" in body and b"sv=" in body and b"sig=" not in body


def test_the_sdks_and_the_services_own_sas_versions_are_accepted(emulator, container, share):
    container.upload_blob("f.txt", b"blob")
    share.get_file_client("f.txt").upload_file(b"file")
    blob_auth = emulator.services["blob"].backend.auth
    files_auth = emulator.services["files"].backend.auth
    blob_path = "/{}/data/f.txt".format(emulator.account_name)
    file_path = "/{}/myshare/f.txt".format(emulator.account_name)
    sdk_blob = generate_blob_sas(emulator.account_name, "data", "f.txt", account_key=emulator.account_key,
                                 permission="r", expiry=future())
    sdk_file = generate_file_sas(emulator.account_name, "myshare", ["f.txt"], account_key=emulator.account_key,
                                 permission="r", expiry=future())
    assert send(emulator, "blob", "GET", blob_path + "?" + sdk_blob)[::2] == (200, b"blob")
    assert send(emulator, "files", "GET", file_path + "?" + sdk_file)[::2] == (200, b"file")
    for version in ("2015-04-05", "2016-05-31", "2018-03-28", "2019-02-02", "2020-12-06", DEFAULT_VERSION):
        token = blob_auth.generate_sas("data", "f.txt", "r", future(), version=version)
        assert send(emulator, "blob", "GET", blob_path + "?" + token)[::2] == (200, b"blob"), version
        token = files_auth.generate_sas("myshare", "f.txt", "r", future(), version=version)
        assert send(emulator, "files", "GET", file_path + "?" + token)[::2] == (200, b"file"), version


def test_every_version_the_installed_sdks_sign_is_a_sas_version():
    from azure.storage.blob._serialize import _SUPPORTED_API_VERSIONS as blob_versions
    from azure.storage.filedatalake._serialize import _SUPPORTED_API_VERSIONS as datalake_versions
    from azure.storage.fileshare._serialize import _SUPPORTED_API_VERSIONS as file_versions
    from emulator.core.storage_auth import SAS_VERSIONS

    assert set(blob_versions) | set(file_versions) | set(datalake_versions) <= SAS_VERSIONS
    assert max(SAS_VERSIONS) == DEFAULT_VERSION


# ---- metadata: 8 KiB in all ---------------------------------------------------------------------------

def test_blob_and_container_metadata_over_8_kib_is_refused(emulator, blob_service, container):
    at_limit = {"k": "v" * 8191}                                            # 1 + 8191 bytes
    over = {"k": "v" * 8190, "x": "yy"}                                     # 1 + 8190 + 1 + 2 bytes
    blob = container.get_blob_client("m.bin")
    blob.upload_blob(b"x", metadata=at_limit)
    in_blocks = BlobServiceClient.from_connection_string(emulator.blob_connection_string, max_single_put_size=4,
                                                         max_block_size=4, connection_verify=emulator.ca_cert)
    assert blob.get_blob_properties().metadata == at_limit
    attempts = (lambda: container.upload_blob("n.bin", b"x", metadata=over),
                lambda: blob.set_blob_metadata(over),
                lambda: container.set_container_metadata(over),
                lambda: blob_service.create_container("other", metadata=over),
                lambda: in_blocks.get_blob_client("data", "m.bin").upload_blob(b"y" * 10, metadata=over,
                                                                                overwrite=True))
    for attempt in attempts:
        with pytest.raises(HttpResponseError) as exc:
            attempt()
        assert (exc.value.status_code, exc.value.error_code) == (400, "MetadataTooLarge")
    assert blob.get_blob_properties().metadata == at_limit
    assert blob.download_blob().readall() == b"x"
    assert [b.name for b in container.list_blobs()] == ["m.bin"]
    assert "other" not in [c.name for c in blob_service.list_containers()]


def test_file_share_metadata_over_8_kib_is_refused(share):
    over = {"k": "v" * 8192}
    with pytest.raises(HttpResponseError) as exc:
        share.get_file_client("f.txt").upload_file(b"x", metadata=over)
    assert (exc.value.status_code, exc.value.error_code) == (400, "MetadataTooLarge")
    share.get_file_client("f.txt").upload_file(b"x", metadata={"k": "v" * 8191})
    with pytest.raises(HttpResponseError) as exc:
        share.get_file_client("f.txt").set_file_metadata(over)
    assert exc.value.error_code == "MetadataTooLarge"
    assert share.get_file_client("f.txt").get_file_properties().metadata == {"k": "v" * 8191}
