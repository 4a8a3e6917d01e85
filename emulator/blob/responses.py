"""The Blob service's handlers, one per operation (``BlobResponses``), and its addressing
(``BlobAddressing``): path-style ``/<account>/<container>/<blob>`` on 127.0.0.1 or localhost,
host-style ``/<container>/<blob>`` with ``Host: <account>.blob.<suffix>``.

Parsing, authentication, routing and errors are ``core.storage_http``'s; the state is
``models.BlobBackend``'s.
"""
from __future__ import annotations

import base64
import hashlib
from urllib.parse import unquote

from ..core import public_urls
from ..core.storage_http import (FileStream, Reply, StorageRequest, content_md5, decode_base64_header, download_headers,
                                 int_query, meta_headers, range_reply, reply_from_open_file, request_range,
                                 resolve_range)
from . import exceptions as err
from . import xml
from .models import (CONTENT_PROPERTIES, MAX_BLOCK_SIZE, MAX_PUT_BLOB_SIZE, Blob, BlobBackend, Conditions,
                     md5_writer, validate_blob_name, validate_container_name)

#: Put Blob takes the blob's properties from these standard headers when x-ms-blob-* are absent.
_STANDARD_PROPERTIES = {"content-type": "x-ms-blob-content-type", "content-encoding": "x-ms-blob-content-encoding",
                        "content-language": "x-ms-blob-content-language", "cache-control": "x-ms-blob-cache-control",
                        "content-disposition": "x-ms-blob-content-disposition"}


class BlobAddressing:
    """Splits a request's address into (level, container, blob name, handler args)."""

    def __init__(self, account_name: str) -> None:
        self.account_name = account_name

    def __call__(self, request: StorageRequest) -> tuple:
        raw_path = request.raw_path
        if not raw_path.startswith("/"):
            raise err.invalid_uri("The request path must start with '/'.")
        parts = raw_path[1:].split("/")
        host = request.host.rsplit(":", 1)[0].lower() if not request.host.startswith("[") else ""
        if ".blob." in host:   # host-style: the account is the first label of the host
            account = host.split(".", 1)[0]
        else:
            account, parts = unquote(parts[0]), parts[1:]
            if not account:
                raise err.invalid_uri("The path must start with the account: /{}/<container>/...".format(
                    self.account_name))
        if account != self.account_name:
            raise err.account_not_served(account[:64], self.account_name)
        if not parts or parts == [""]:
            return "account", None, None, (None, None)
        container = unquote(parts[0])
        validate_container_name(container)
        rest = parts[1:]
        if not rest or rest == [""]:
            return "container", container, None, (container, None)
        try:
            name = unquote("/".join(rest), errors="strict")
        except UnicodeDecodeError:
            raise err.invalid_uri("The blob name is not valid UTF-8.") from None
        validate_blob_name(name)
        return "blob", container, name, (container, name)


def _conditions(request: StorageRequest) -> Conditions:
    return Conditions(request.header("if-match"), request.header("if-none-match"),
                      request.header("if-modified-since"), request.header("if-unmodified-since"))


def _check_metadata(metadata: dict) -> dict:
    for key in metadata:
        if not key.isidentifier():
            raise err.invalid_header_value("x-ms-meta-" + key[:64], metadata[key][:64],
                                           "Metadata names must be valid C# identifiers.")
    return metadata


def _blob_properties(request: StorageRequest, standard: bool) -> dict:
    """The blob's content properties from the request (``standard``: also the plain headers)."""
    properties = {}
    if standard:
        for header, name in _STANDARD_PROPERTIES.items():
            if request.header(header):
                properties[name] = request.header(header)
    for header in CONTENT_PROPERTIES:
        if request.header(header):
            properties[header] = request.header(header)
    md5 = properties.get("x-ms-blob-content-md5")
    if md5:
        decode_base64_header("x-ms-blob-content-md5", md5)
    return properties


def _may_overwrite(request: StorageRequest) -> bool:
    grant = request.grant
    return grant is None or grant.kind in ("sharedkey", "bearer") or "w" in grant.permissions


class BlobResponses:
    """One method per Blob service operation; each returns a ``Reply`` or raises StorageError."""

    def __init__(self, backend: BlobBackend) -> None:
        self.backend = backend

    @property
    def service_url(self) -> str:
        return public_urls.blob_account(self.backend.blob_url, self.backend.account_name) + "/"

    # ------------------------------------------------------------ account
    def list_containers(self, request: StorageRequest, container, name) -> Reply:
        prefix, marker = request.query.get("prefix", ""), request.query.get("marker", "")
        max_results = int_query(request, "maxresults")
        include = {i.strip().lower() for i in request.query.get("include", "").split(",")}
        containers, next_marker = self.backend.list_containers(prefix, marker, max_results)
        body = xml.list_containers(self.service_url, containers, prefix, marker, max_results, next_marker,
                                   "metadata" in include)
        return Reply(200, {"Content-Type": "application/xml"}, body)

    def get_service_properties(self, request: StorageRequest, container, name) -> Reply:
        return Reply(200, {"Content-Type": "application/xml"}, xml.service_properties())

    def set_service_properties(self, request: StorageRequest, container, name) -> Reply:
        return Reply(202)  # accepted and ignored: the emulator has no logging, metrics or CORS

    def get_account_information(self, request: StorageRequest, container, name) -> Reply:
        return Reply(200, {"x-ms-sku-name": "Standard_LRS", "x-ms-account-kind": "StorageV2",
                           "x-ms-is-hns-enabled": "false"})

    # ------------------------------------------------------------ containers
    def create_container(self, request: StorageRequest, container, name) -> Reply:
        access = request.header("x-ms-blob-public-access") or None
        if access not in (None, "container", "blob"):
            raise err.invalid_header_value("x-ms-blob-public-access", access, "Must be container or blob.")
        created = self.backend.create_container(container, _check_metadata(request.metadata()), access)
        return Reply(201, {"ETag": created.etag, "Last-Modified": created.last_modified})

    def get_container_properties(self, request: StorageRequest, container, name) -> Reply:
        found = self.backend.get_container(container)
        headers = {"ETag": found.etag, "Last-Modified": found.last_modified, "x-ms-lease-status": "unlocked",
                   "x-ms-lease-state": "available", "x-ms-has-immutability-policy": "false",
                   "x-ms-has-legal-hold": "false"}
        if found.public_access:
            headers["x-ms-blob-public-access"] = found.public_access
        headers.update(meta_headers(found.metadata))
        return Reply(200, headers)

    def set_container_metadata(self, request: StorageRequest, container, name) -> Reply:
        updated = self.backend.set_container_metadata(container, _check_metadata(request.metadata()))
        return Reply(200, {"ETag": updated.etag, "Last-Modified": updated.last_modified})

    def delete_container(self, request: StorageRequest, container, name) -> Reply:
        self.backend.delete_container(container)
        return Reply(202)

    def list_blobs(self, request: StorageRequest, container, name) -> Reply:
        prefix, marker = request.query.get("prefix", ""), request.query.get("marker", "")
        delimiter = request.query.get("delimiter", "")
        max_results = int_query(request, "maxresults")
        include = {i.strip().lower() for i in request.query.get("include", "").split(",") if i.strip()}
        items, next_marker = self.backend.list_blobs(container, prefix, delimiter, marker, max_results)
        body = xml.list_blobs(self.service_url, container, items, prefix, marker, max_results, delimiter,
                              next_marker, "metadata" in include)
        return Reply(200, {"Content-Type": "application/xml"}, body)

    # ------------------------------------------------------------ block blobs
    def put_blob(self, request: StorageRequest, container, name) -> Reply:
        blob_type = request.header("x-ms-blob-type")
        if not blob_type:
            raise err.missing_required_header("x-ms-blob-type")
        if blob_type != "BlockBlob":
            raise err.invalid_blob_type(blob_type)
        if request.header("x-ms-copy-source"):
            raise err.not_implemented("Put Blob From URL (x-ms-copy-source)")
        expected_md5 = content_md5(request)
        properties = _blob_properties(request, standard=True)
        write = md5_writer(request.body(), MAX_PUT_BLOB_SIZE)
        if expected_md5 is not None:
            write = _checking_md5(write, expected_md5)
        blob = self.backend.put_blob(container, name, write, properties, _check_metadata(request.metadata()),
                                     _conditions(request), _may_overwrite(request))
        headers = {"ETag": blob.etag, "Last-Modified": blob.last_modified, "x-ms-request-server-encrypted": "true",
                   "Content-MD5": blob.content_md5 if expected_md5 is None or not blob.content_md5
                   else request.header("content-md5")}
        return Reply(201, headers)

    def put_block(self, request: StorageRequest, container, name) -> Reply:
        block_id = request.query.get("blockid")
        if not block_id:
            raise err.invalid_query_parameter_value("blockid", "", "Put Block needs a blockid.")
        expected_md5 = content_md5(request)
        # Since 2019-02-02 the service answers a block's Content-MD5 only when the request sent one
        # (to check it): hashing every block for nothing was a third of the block upload's cost.
        version = request.header("x-ms-version")   # none (a plain SAS request): the current behaviour
        hashing = expected_md5 is not None or bool(version and version < "2019-02-02")
        body = request.body()
        digest = {}

        def write(fd: int) -> int:
            hasher = hashlib.md5() if hashing else None
            size = body.copy_to(fd, MAX_BLOCK_SIZE, hasher.update if hasher else None)
            if hasher is not None:
                digest["md5"] = hasher.digest()
                if expected_md5 is not None and digest["md5"] != expected_md5:
                    raise err.md5_mismatch()
            return size

        self.backend.stage_block(container, name, block_id, write)
        headers = {"x-ms-request-server-encrypted": "true"}
        if "md5" in digest:
            headers["Content-MD5"] = base64.b64encode(digest["md5"]).decode()
        return Reply(201, headers)

    def put_block_list(self, request: StorageRequest, container, name) -> Reply:
        entries = xml.parse_block_list(request.read_body(xml.MAX_BLOCK_LIST_BODY))
        blob = self.backend.commit_block_list(container, name, entries, _blob_properties(request, standard=False),
                                              _check_metadata(request.metadata()), _conditions(request),
                                              _may_overwrite(request))
        return Reply(201, {"ETag": blob.etag, "Last-Modified": blob.last_modified,
                           "x-ms-request-server-encrypted": "true"})

    def get_block_list(self, request: StorageRequest, container, name) -> Reply:
        which = (request.query.get("blocklisttype") or "committed").lower()
        if which not in ("committed", "uncommitted", "all"):
            raise err.invalid_query_parameter_value("blocklisttype", which, "Must be committed, uncommitted or all.")
        blob, staged = self.backend.get_block_list(container, name)
        committed = blob.blocks if blob else []
        body = xml.block_list(committed if which in ("committed", "all") else None,
                              staged if which in ("uncommitted", "all") else None)
        headers = {"Content-Type": "application/xml", "x-ms-blob-content-length": str(blob.size if blob else 0)}
        if blob:
            headers.update({"ETag": blob.etag, "Last-Modified": blob.last_modified})
        return Reply(200, headers, body)

    # ------------------------------------------------------------ reading blobs
    def _blob_headers(self, request: StorageRequest, blob: Blob) -> dict:
        headers = {"ETag": blob.etag, "Last-Modified": blob.last_modified, "x-ms-creation-time": blob.created,
                   "x-ms-blob-type": "BlockBlob"}
        return download_headers(headers, blob.properties, CONTENT_PROPERTIES, blob.metadata, request.grant)

    def get_blob_properties(self, request: StorageRequest, container, name) -> Reply:
        blob = self.backend.get_blob(container, name)
        _conditions(request).check(blob, write=False)
        headers = self._blob_headers(request, blob)
        headers.update({"Content-Length": str(blob.size), "x-ms-access-tier": "Hot",
                        "x-ms-access-tier-inferred": "true"})
        return Reply(200, headers, b"", length=blob.size)

    def get_blob_metadata(self, request: StorageRequest, container, name) -> Reply:
        blob = self.backend.get_blob(container, name)
        headers = {"ETag": blob.etag, "Last-Modified": blob.last_modified}
        headers.update(meta_headers(blob.metadata))
        return Reply(200, headers)

    def get_blob(self, request: StorageRequest, container, name) -> Reply:
        fd, blob = self.backend.open_blob(container, name)
        return reply_from_open_file(fd, lambda: self._read_blob(request, fd, blob))

    def _read_blob(self, request: StorageRequest, fd: int, blob: Blob) -> Reply:
        _conditions(request).check(blob, write=False)
        headers = self._blob_headers(request, blob)
        header, value = request_range(request)
        if not header:
            return Reply(200, headers, FileStream(fd, 0, blob.size), length=blob.size)
        start, end = resolve_range(value, header, blob.size)
        length = end - start + 1
        headers["Content-Range"] = "bytes {}-{}/{}".format(start, end, blob.size)
        md5 = headers.pop("Content-MD5", None)
        if md5:
            headers["x-ms-blob-content-md5"] = md5  # the whole blob's MD5, on a range
        return range_reply(request, fd, headers, start, length)

    # ------------------------------------------------------------ changing blobs
    def set_blob_metadata(self, request: StorageRequest, container, name) -> Reply:
        blob = self.backend.set_blob_metadata(container, name, _check_metadata(request.metadata()),
                                              _conditions(request))
        return Reply(200, {"ETag": blob.etag, "Last-Modified": blob.last_modified,
                           "x-ms-request-server-encrypted": "true"})

    def set_blob_properties(self, request: StorageRequest, container, name) -> Reply:
        blob = self.backend.set_blob_properties(container, name, _blob_properties(request, standard=False),
                                                _conditions(request))
        return Reply(200, {"ETag": blob.etag, "Last-Modified": blob.last_modified})

    def delete_blob(self, request: StorageRequest, container, name) -> Reply:
        if request.query.get("snapshot") or request.query.get("versionid"):
            raise err.not_implemented("snapshots and versions")
        self.backend.delete_blob(container, name, _conditions(request))
        return Reply(202, {"x-ms-delete-type-permanent": "true"})


def _checking_md5(write, expected: bytes):
    """Wrap a put_blob writer so that a body whose MD5 is not Content-MD5 is refused (400 Md5Mismatch)."""
    def checked(fd: int) -> tuple[int, str]:
        size, md5 = write(fd)
        if base64.b64decode(md5) != expected:
            raise err.md5_mismatch()
        return size, md5
    return checked
