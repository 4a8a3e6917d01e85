"""The File service's HTTP layer: the WSGI application (parse, route, authenticate, answer,
errors) and one handler per operation (``FilesResponses``).

A Put Range body is received whole into a reusable buffer (``recv_into``, no copies in Python)
and then written with one ``os.pwrite``, so a range is applied all or nothing; downloads are
streamed from the file with ``os.pread``. Nothing on the Put Range path writes to SQLite.
"""
from __future__ import annotations

import logging
from typing import Optional
from urllib.parse import unquote

from . import exceptions as err
from . import xml
from ..core.storage_http import (FileStream, Reply, StorageApplication, StorageRequest, content_md5,
                                 decode_base64_header, download_headers, int_query, meta_headers, parse_range,
                                 range_reply, reply_from_open_file, request_range, resolve_range)
from ..core import public_urls
from .auth import check_version
from .models import (CONTENT_PROPERTIES, MAX_RANGE_SIZE, Entry, FilesBackend, is_utf8, validate_segment,
                     validate_share_name)
from .urls import FilesRouter

log = logging.getLogger("emulator.files")

#: Settings bodies (service and share properties) are a few KiB.
_SETTINGS_BODY_LIMIT = 64 * 1024


def _entry_headers(entry: Entry) -> dict:
    return {"ETag": entry.etag, "Last-Modified": entry.last_modified,
            "x-ms-file-attributes": "Directory" if entry.is_dir else "Archive",
            "x-ms-file-creation-time": entry.creation_time, "x-ms-file-last-write-time": entry.last_write_time,
            "x-ms-file-change-time": entry.change_time, "x-ms-file-id": str(entry.ino),
            "x-ms-file-permission-key": "emulator-default"}


def _int_header(request: StorageRequest, name: str, required: bool = False) -> Optional[int]:
    raw = request.header(name)
    if not raw:
        if required:
            raise err.missing_required_header(name)
        return None
    try:
        value = int(raw)
    except ValueError:
        raise err.invalid_header_value(name, raw) from None
    if value < 0:
        raise err.invalid_header_value(name, raw)
    return value


def _content_properties(request: StorageRequest) -> dict:
    properties = {}
    for header in CONTENT_PROPERTIES:
        value = request.header(header)
        if value:
            properties[header] = value
    if "x-ms-content-md5" in properties:
        decode_base64_header("x-ms-content-md5", properties["x-ms-content-md5"])
    return properties


class FilesResponses:
    """One method per File service operation; each returns a ``Reply`` or raises StorageError."""

    def __init__(self, backend: FilesBackend) -> None:
        self.backend = backend

    @property
    def service_url(self) -> str:
        return public_urls.files_account(self.backend.files_url, self.backend.account_name) + "/"

    # ------------------------------------------------------------ service
    def list_shares(self, request: StorageRequest, share, segments) -> Reply:
        prefix, marker = request.query.get("prefix", ""), request.query.get("marker", "")
        max_results = int_query(request, "maxresults")
        include = {i.strip().lower() for i in request.query.get("include", "").split(",")}
        shares, next_marker = self.backend.list_shares(prefix, marker, max_results)
        body = xml.list_shares(self.service_url, shares, prefix, marker, max_results, next_marker,
                               "metadata" in include)
        return Reply(200, {"Content-Type": "application/xml"}, body)

    def get_service_properties(self, request: StorageRequest, share, segments) -> Reply:
        return Reply(200, {"Content-Type": "application/xml"}, xml.service_properties())

    def set_service_properties(self, request: StorageRequest, share, segments) -> Reply:
        xml.parse_body(request.read_body(_SETTINGS_BODY_LIMIT), "StorageServiceProperties")
        return Reply(202)  # checked, then ignored: the emulator has no metrics, CORS or SMB settings

    # ------------------------------------------------------------ shares
    def create_share(self, request: StorageRequest, share, segments) -> Reply:
        created = self.backend.create_share(share, _int_header(request, "x-ms-share-quota"), request.metadata())
        return Reply(201, {"ETag": created.etag, "Last-Modified": created.last_modified})

    def get_share_properties(self, request: StorageRequest, share, segments) -> Reply:
        found = self.backend.get_share(share)
        headers = {"ETag": found.etag, "Last-Modified": found.last_modified, "x-ms-share-quota": str(found.quota),
                   "x-ms-access-tier": "TransactionOptimized"}
        headers.update(meta_headers(found.metadata))
        return Reply(200, headers)

    def delete_share(self, request: StorageRequest, share, segments) -> Reply:
        self.backend.delete_share(share)
        return Reply(202)

    def set_share_metadata(self, request: StorageRequest, share, segments) -> Reply:
        updated = self.backend.update_share(share, metadata=request.metadata())
        return Reply(200, {"ETag": updated.etag, "Last-Modified": updated.last_modified})

    def set_share_properties(self, request: StorageRequest, share, segments) -> Reply:
        body = request.read_body(_SETTINGS_BODY_LIMIT)
        if body.strip():  # the operation takes no body; one that is there must at least be XML
            xml.parse_body(body, None)
        updated = self.backend.update_share(share, quota=_int_header(request, "x-ms-share-quota"))
        return Reply(200, {"ETag": updated.etag, "Last-Modified": updated.last_modified})

    def get_share_stats(self, request: StorageRequest, share, segments) -> Reply:
        found = self.backend.get_share(share)
        body = xml.share_stats(self.backend.share_usage_bytes(share))
        return Reply(200, {"Content-Type": "application/xml", "ETag": found.etag,
                           "Last-Modified": found.last_modified}, body)

    # ------------------------------------------------------------ directories
    def create_directory(self, request: StorageRequest, share, segments) -> Reply:
        entry = self.backend.create_directory(share, segments, request.metadata())
        headers = _entry_headers(entry)
        headers["x-ms-request-server-encrypted"] = "true"
        return Reply(201, headers)

    def get_directory_properties(self, request: StorageRequest, share, segments) -> Reply:
        entry = self.backend.directory_entry(share, segments)
        headers = _entry_headers(entry)
        headers["x-ms-server-encrypted"] = "true"
        if segments:
            headers.update(meta_headers(self.backend.properties(share, segments, entry)[1]))
        return Reply(200, headers)

    def delete_directory(self, request: StorageRequest, share, segments) -> Reply:
        self.backend.delete_directory(share, segments)
        return Reply(202)

    def set_directory_metadata(self, request: StorageRequest, share, segments) -> Reply:
        entry = self.backend.set_metadata(share, segments, request.metadata(), directory=True)
        return Reply(200, {"ETag": entry.etag, "Last-Modified": entry.last_modified,
                           "x-ms-request-server-encrypted": "true"})

    def list_directory(self, request: StorageRequest, share, segments) -> Reply:
        prefix, marker = request.query.get("prefix", ""), request.query.get("marker", "")
        max_results = int_query(request, "maxresults")
        entries, next_marker = self.backend.list_directory(share, segments, prefix, marker, max_results)
        body = xml.list_directory(self.service_url, share, "/".join(segments), entries, prefix, marker, max_results,
                                  next_marker)
        return Reply(200, {"Content-Type": "application/xml"}, body)

    # ------------------------------------------------------------ files
    def create_file(self, request: StorageRequest, share, segments) -> Reply:
        file_type = request.header("x-ms-type")
        if not file_type:
            raise err.missing_required_header("x-ms-type")
        if file_type.lower() != "file":
            raise err.invalid_header_value("x-ms-type", file_type, "Must be 'file'.")
        if request.header("x-ms-copy-source"):
            raise err.not_implemented("Copy File (x-ms-copy-source)")
        size = _int_header(request, "x-ms-content-length", required=True)
        entry = self.backend.create_file(share, segments, size, _content_properties(request), request.metadata())
        headers = _entry_headers(entry)
        headers["x-ms-request-server-encrypted"] = "true"
        return Reply(201, headers)

    def put_range(self, request: StorageRequest, share, segments) -> Reply:
        mode = request.header("x-ms-write").lower()
        if mode not in ("update", "clear"):
            if not mode:
                raise err.missing_required_header("x-ms-write")
            raise err.invalid_header_value("x-ms-write", request.header("x-ms-write"), "Must be update or clear.")
        header, value = request_range(request)
        if not header:
            raise err.missing_required_header("x-ms-range")
        start, end = parse_range(value, header)
        if start is None or end is None:
            raise err.invalid_header_value(header, value, "Put Range needs bytes=START-END.")
        length = end - start + 1
        content_length = request.content_length()
        chunked = content_length is None and request.environ.get("wsgi.input_terminated")
        if mode == "clear":
            if content_length:
                raise err.invalid_header_value("Content-Length", str(content_length), "Must be 0 for x-ms-write: clear.")
            entry = self.backend.write_range(share, segments, start, length, None)
            return Reply(201, {"ETag": entry.etag, "Last-Modified": entry.last_modified})
        if length > MAX_RANGE_SIZE:
            raise err.request_body_too_large(MAX_RANGE_SIZE)
        if content_length != length and not chunked:
            raise err.invalid_header_value("Content-Length", "" if content_length is None else str(content_length),
                                           "The body must be exactly as long as the range ({} bytes).".format(length))
        md5_header = request.header("content-md5")
        expected_md5 = content_md5(request)
        body = request.body()
        entry = self.backend.write_range(share, segments, start, length, body, expected_md5)
        if chunked and not body.at_end():
            raise err.invalid_header_value("Content-Length", "", "The body is longer than the range.")
        headers = {"ETag": entry.etag, "Last-Modified": entry.last_modified, "x-ms-request-server-encrypted": "true",
                   "x-ms-file-last-write-time": entry.last_write_time}
        if md5_header:
            headers["Content-MD5"] = md5_header
        return Reply(201, headers)

    def _file_headers(self, request: StorageRequest, share, segments, entry: Entry) -> dict:
        properties, metadata = self.backend.properties(share, segments, entry)
        headers = _entry_headers(entry)
        headers["x-ms-type"] = "File"
        return download_headers(headers, properties, CONTENT_PROPERTIES, metadata, request.grant)

    def get_file_properties(self, request: StorageRequest, share, segments) -> Reply:
        entry = self.backend.file_entry(share, segments)
        headers = self._file_headers(request, share, segments, entry)
        headers["Content-Length"] = str(entry.size)
        return Reply(200, headers, b"", length=entry.size)

    def get_file(self, request: StorageRequest, share, segments) -> Reply:
        fd, entry = self.backend.open_file(share, segments)
        return reply_from_open_file(fd, lambda: self._read_file(request, share, segments, fd, entry))

    def _read_file(self, request: StorageRequest, share, segments, fd: int, entry: Entry) -> Reply:
        headers = self._file_headers(request, share, segments, entry)
        header, value = request_range(request)
        size = entry.size
        if not header:
            return Reply(200, headers, FileStream(fd, 0, size), length=size)
        start, end = resolve_range(value, header, size)
        length = end - start + 1
        headers["Content-Range"] = "bytes {}-{}/{}".format(start, end, size)
        headers.pop("Content-MD5", None)  # the whole file's MD5 does not describe a range
        return range_reply(request, fd, headers, start, length)

    def list_ranges(self, request: StorageRequest, share, segments) -> Reply:
        entry = self.backend.file_entry(share, segments)
        return Reply(200, {"Content-Type": "application/xml", "ETag": entry.etag, "Last-Modified": entry.last_modified,
                           "x-ms-content-length": str(entry.size)}, xml.ranges(entry.size))

    def set_file_properties(self, request: StorageRequest, share, segments) -> Reply:
        size = _int_header(request, "x-ms-content-length")
        if size is not None:
            self.backend.resize_file(share, segments, size)
        entry = self.backend.set_file_properties(share, segments, _content_properties(request))
        headers = _entry_headers(entry)
        headers["x-ms-request-server-encrypted"] = "true"
        return Reply(200, headers)

    def set_file_metadata(self, request: StorageRequest, share, segments) -> Reply:
        entry = self.backend.set_metadata(share, segments, request.metadata(), directory=False)
        return Reply(200, {"ETag": entry.etag, "Last-Modified": entry.last_modified,
                           "x-ms-request-server-encrypted": "true"})

    def delete_file(self, request: StorageRequest, share, segments) -> Reply:
        self.backend.delete_file(share, segments)
        return Reply(202)



class FilesApplication(StorageApplication):
    """The WSGI application of the File endpoint (``core.storage_http``): the File service's URL
    levels and routing rows, then authentication, authorization and the handler."""

    def __init__(self, backend: FilesBackend, responses: Optional[FilesResponses] = None,
                 router: Optional[FilesRouter] = None) -> None:
        self.backend = backend
        self.auth = backend.auth
        self.responses = responses or FilesResponses(backend)
        self.router = router or FilesRouter()

    def handle(self, request: StorageRequest) -> Reply:
        raw_path = request.raw_path
        if not raw_path.startswith("/"):
            raise err.invalid_uri("The request path must start with '/'.")
        parts = raw_path[1:].split("/")
        host = request.host.rsplit(":", 1)[0].lower() if not request.host.startswith("[") else ""
        if ".file." in host:  # host-style, as through the proxy: the account is the host's first label
            account, parts = host.split(".", 1)[0], [""] + parts
        else:
            account = unquote(parts[0])
        if not account:
            raise err.invalid_uri("The path must start with the account: /{}/<share>/...".format(
                self.backend.account_name))
        if account != self.backend.account_name:
            raise err.account_not_served(account[:64], self.backend.account_name)
        rest = parts[1:]
        if rest and rest[-1] == "":  # one trailing slash: /account/ or /account/share/dir/
            rest = rest[:-1]
        share, segments = None, []
        if rest:
            share = unquote(rest[0])
            validate_share_name(share)
            # Like the service, an encoded slash separates segments too: the SDK sends
            # "dir1/sub" as "dir1%2Fsub".
            if len(rest) > 1:
                segments = unquote("/".join(rest[1:]), errors="surrogateescape").split("/")
            for segment in segments:
                if not is_utf8(segment):
                    raise err.invalid_uri("File and directory names must be UTF-8 (percent-encoded in the URL).")
                validate_segment(segment)
        check_version(request.header("x-ms-version"))  # the File endpoint checks the address first
        level = "account" if share is None else ("share" if not segments else "path")
        return self.dispatch(request, level, share, "/".join(segments) or None, (share, segments))
