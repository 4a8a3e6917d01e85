"""The HTTP side of an Azure Storage endpoint, apart from any one service's operations: the
request as the authenticator and handlers read it, replies streamed from files, byte ranges,
routing rows by (method, level, restype, comp), and the WSGI application that ties them
together and turns ``StorageError`` into the service's XML error.

The Blob endpoint is built on it; the File endpoint takes the request, body, replies, ranges and
file streams from here and keeps its own addressing in its application.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import queue
import re
import threading
import uuid
from http import HTTPStatus
from typing import Callable, Iterable, Optional, Union
from urllib.parse import quote, urlsplit

from . import storage_errors as err
from .serving import RAW_HEADERS
from .storage_auth import DEFAULT_VERSION, Grant, StorageAuthenticator, check_version, parse_query, valid_version

log = logging.getLogger("emulator.storage")

READ_CHUNK = 1024 * 1024
#: Bodies larger than this are hashed and written on a second thread while the next piece arrives.
PIPELINE_MIN = 2 * READ_CHUNK
_DRAIN_LIMIT = 8 * 1024 * 1024
_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)
_META_PREFIX = "x-ms-meta-"
#: The most bytes of metadata (names and values of the x-ms-meta-* headers together) one item holds.
MAX_METADATA_BYTES = 8 * 1024
#: The most x-ms-range-get-content-md5 hashes (the services refuse larger ranges).
_MAX_RANGE_MD5 = 4 * 1024 * 1024
#: SAS response-header overrides (``rscc`` ...) and the headers they replace on a download.
_SAS_OVERRIDES = (("rscc", "Cache-Control"), ("rscd", "Content-Disposition"), ("rsce", "Content-Encoding"),
                  ("rscl", "Content-Language"), ("rsct", "Content-Type"))


class StorageRequest:
    """One request: method, the path and query as sent, headers (names lower-cased, as sent
    even when they hold '_'), the body, and the ``grant`` authentication produced."""

    def __init__(self, environ: dict) -> None:
        self.environ = environ
        self.method = environ["REQUEST_METHOD"].upper()
        raw = environ.get("REQUEST_URI") or environ.get("RAW_URI") or ""
        if "://" in raw.split("?", 1)[0]:  # absolute-form request target
            parts = urlsplit(raw)
            raw = parts.path + ("?" + parts.query if parts.query else "")
        raw_path, _, raw_query = raw.partition("?")
        if not raw_path:  # not werkzeug: rebuild from the decoded path
            raw_path = quote(environ.get("PATH_INFO", "/"))
            raw_query = environ.get("QUERY_STRING", "")
        self.raw_path = raw_path
        self.query_pairs = parse_query(raw_query)
        self.query: dict[str, str] = {}
        for name, value in self.query_pairs:
            self.query.setdefault(name.lower(), value)
        self.scheme = environ.get("wsgi.url_scheme", "http")
        self.remote_addr = environ.get("REMOTE_ADDR", "")
        self.request_id = str(uuid.uuid4())
        self.grant: Optional[Grant] = None
        self._headers = _headers_of(environ)
        self._body: Optional[RequestBody] = None

    def header(self, name: str) -> str:
        return self._headers.get(name.lower(), ("", ""))[1]

    def x_ms_headers(self) -> list:
        return [(name, value) for name, (_, value) in self._headers.items() if name.startswith("x-ms-")]

    def metadata(self) -> dict:
        """``x-ms-meta-*`` headers, names in the case the client sent them; more than 8 KiB in all is
        refused (400 MetadataTooLarge), as the services refuse it. Header text is decoded as latin-1,
        so its length is its length on the wire."""
        metadata = {sent[len(_META_PREFIX):]: value for name, (sent, value) in self._headers.items()
                    if name.startswith(_META_PREFIX)}
        if sum(len(name) + len(value) for name, value in metadata.items()) > MAX_METADATA_BYTES:
            raise err.metadata_too_large(MAX_METADATA_BYTES)
        return metadata

    @property
    def host(self) -> str:
        return self.header("host")

    def content_length(self) -> Optional[int]:
        raw = self.header("content-length")
        if raw == "":
            return None
        try:
            value = int(raw)
        except ValueError:
            raise err.invalid_header_value("Content-Length", raw) from None
        if value < 0:
            raise err.invalid_header_value("Content-Length", raw)
        return value

    def body(self) -> "RequestBody":
        if self._body is None:
            self._body = RequestBody(self.environ, self.content_length())
        return self._body

    def read_body(self, limit: int) -> bytes:
        """The whole (small) body; longer than ``limit`` is refused with 413."""
        body = self.body()
        if body.left is not None and body.left > limit:
            raise err.request_body_too_large(limit)
        data = bytearray()
        chunk = memoryview(bytearray(64 * 1024))
        while True:
            n = body.readinto(chunk)
            if not n:
                return bytes(data)
            data += chunk[:n]
            if len(data) > limit:
                raise err.request_body_too_large(limit)

    def discard_body(self) -> None:
        """Read and drop what the handler left of the body (an early error), so that a keep-alive
        connection finds the next request line; very large leftovers are left to the server."""
        try:
            body = self.body()
        except err.StorageError:
            return
        budget = body.left
        if budget is None:
            budget = _DRAIN_LIMIT if self.environ.get("wsgi.input_terminated") else 0
        if budget <= 0 or budget > _DRAIN_LIMIT:
            return
        scratch = memoryview(bytearray(min(budget, 256 * 1024)))
        try:
            while budget > 0:
                n = body.readinto(scratch[:min(len(scratch), budget)])
                if not n:
                    break
                budget -= n
        except OSError:
            pass


def _headers_of(environ: dict) -> dict:
    """lower-case name -> (name as sent, value); repeated headers joined with ','."""
    headers: dict[str, tuple[str, str]] = {}
    raw = environ.get(RAW_HEADERS)
    if raw is None:  # another WSGI server: rebuild from the environ (names with '_' are lost)
        raw = []
        for key, value in environ.items():
            if key.startswith("HTTP_"):
                raw.append((key[5:].replace("_", "-").lower(), value))
            elif key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                raw.append((key.replace("_", "-").lower(), value))
    for name, value in raw:
        value = value.replace("\r\n", "").strip()
        key = name.lower()
        if key in headers:
            headers[key] = (headers[key][0], headers[key][1] + "," + value)
        else:
            headers[key] = (name, value)
    return headers


class RequestBody:
    """The request body (``Content-Length`` bytes, or a chunked body up to its end);
    ``readinto`` never reads past it, so the connection stays usable."""

    def __init__(self, environ: dict, length: Optional[int]) -> None:
        self._stream, self._left = environ["wsgi.input"], length
        if length is None and not environ.get("wsgi.input_terminated"):
            self._left = 0  # neither a length nor chunked: no body

    @property
    def left(self) -> Optional[int]:
        """Body bytes not read yet (None: unknown, a chunked body)."""
        return self._left

    def readinto(self, view: memoryview) -> int:
        if self._left is not None:
            if self._left <= 0:
                return 0
            view = view[:self._left]
        if hasattr(self._stream, "readinto"):
            n = self._stream.readinto(view)
        else:
            data = self._stream.read(len(view))
            view[:len(data)] = data
            n = len(data)
        if self._left is not None:
            self._left -= n or 0
        return n or 0

    def at_end(self) -> bool:
        """Whether the body has nothing left (a chunked body is probed with a one-byte read)."""
        if self._left is not None:
            return self._left <= 0
        return not self.readinto(memoryview(bytearray(1)))

    def copy_to(self, fd: int, limit: int, on_data: Optional[Callable[[memoryview], None]] = None) -> int:
        """Write the rest of the body to ``fd``; returns its length. Longer than ``limit`` is
        refused with 413; a body shorter than its Content-Length with 400.

        ``on_data`` (a hash's ``update``) sees every piece before it is written. For a large body
        the hashing and writing run on a second thread while this one receives the next piece
        (TLS decryption, the hash and the write all release the GIL), so a hashed upload costs
        about the slower of receiving and hashing, not their sum."""
        if self._left is not None and self._left > limit:
            raise err.request_body_too_large(limit)
        expected = self._left
        if on_data is not None and (expected is None or expected > PIPELINE_MIN):
            total = _PipelinedCopy(fd, on_data).run(self, limit)
        else:
            buffer = memoryview(bytearray(READ_CHUNK))
            total = 0
            while True:
                n = self.readinto(buffer)
                if not n:
                    break
                total += n
                if total > limit:
                    raise err.request_body_too_large(limit)
                if on_data is not None:
                    on_data(buffer[:n])
                write_all(fd, buffer[:n])
        if expected is not None and total < expected:
            raise err.incomplete_body()
        return total


class _PipelinedCopy:
    """Receive into one buffer while a worker thread hashes and writes the one before."""

    def __init__(self, fd: int, on_data: Callable[[memoryview], None]) -> None:
        self._fd, self._on_data = fd, on_data
        self._free: "queue.Queue" = queue.Queue()
        self._full: "queue.Queue" = queue.Queue()
        for _ in range(3):
            self._free.put(memoryview(bytearray(READ_CHUNK)))
        self._failure: Optional[BaseException] = None

    def _work(self) -> None:
        while True:
            item = self._full.get()
            if item is None:
                return
            buffer, n = item
            try:
                if self._failure is None:
                    self._on_data(buffer[:n])
                    write_all(self._fd, buffer[:n])
            except BaseException as exc:  # handed to the receiving thread
                self._failure = exc
            self._free.put(buffer)

    def run(self, body: "RequestBody", limit: int) -> int:
        worker = threading.Thread(target=self._work, name="storage-copy", daemon=True)
        worker.start()
        total = 0
        try:
            while self._failure is None:
                buffer = self._free.get()
                n = _fill(body, buffer)
                if not n:
                    self._free.put(buffer)
                    break
                total += n
                if total > limit:
                    raise err.request_body_too_large(limit)
                self._full.put((buffer, n))
        finally:
            self._full.put(None)
            worker.join()
        if self._failure is not None:
            raise self._failure
        return total


def _fill(body: "RequestBody", buffer: memoryview) -> int:
    """Read into ``buffer`` until it is full or the body ends (TLS hands over one record a read)."""
    filled = 0
    while filled < len(buffer):
        n = body.readinto(buffer[filled:])
        if not n:
            break
        filled += n
    return filled


def write_all(fd: int, data) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


class Reply:
    """A response: status, headers and a body (bytes or an iterable of bytes with ``length``)."""

    def __init__(self, status: int, headers: Optional[dict] = None, body: Union[bytes, Iterable[bytes]] = b"",
                 length: Optional[int] = None) -> None:
        self.status = status
        self.headers = headers or {}
        self.body = body
        self.length = len(body) if isinstance(body, bytes) else length


class FileStream:
    """Streams ``length`` bytes of an open file from ``offset`` and closes it."""

    def __init__(self, fd: int, offset: int, length: int) -> None:
        self._fd, self._offset, self._left = fd, offset, length

    def __iter__(self):
        try:
            while self._left > 0:
                data = os.pread(self._fd, min(self._left, READ_CHUNK), self._offset)
                if not data:  # truncated behind our back: the client sees a short body
                    return
                self._offset += len(data)
                self._left -= len(data)
                yield data
        finally:
            self.close()

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def request_range(request: StorageRequest) -> tuple[str, str]:
    """(header name, value) of the request's byte range (``x-ms-range`` wins), or ('', '')."""
    for header in ("x-ms-range", "range"):
        value = request.header(header)
        if value:
            return header, value
    return "", ""


def parse_range(value: str, header: str) -> tuple[Optional[int], Optional[int]]:
    """``bytes=START-END``, ``bytes=START-`` or ``bytes=-SUFFIX`` as (start, end); start None
    for a suffix range (end is then the suffix length)."""
    m = _RANGE.match(value)
    if not m or (m.group(1) == "" and m.group(2) == ""):
        raise err.invalid_header_value(header, value, "Expected bytes=START-END.")
    start = int(m.group(1)) if m.group(1) else None
    end = int(m.group(2)) if m.group(2) else None
    if start is not None and end is not None and end < start:
        raise err.invalid_header_value(header, value, "The range end is before its start.")
    return start, end


def resolve_range(value: str, header: str, size: int) -> tuple[int, int]:
    """The (start, end) a range names within ``size`` bytes, clamped as the service does;
    416 InvalidRange when it starts past the end."""
    start, end = parse_range(value, header)
    if start is None:  # suffix range: the last END bytes
        if not end or not size:
            raise err.invalid_range(size)
        return max(0, size - end), size - 1
    if start >= size:
        raise err.invalid_range(size)
    return start, size - 1 if end is None else min(end, size - 1)


def content_md5(request: StorageRequest) -> Optional[bytes]:
    """The request's ``Content-MD5``, decoded (None when absent); not base64 is refused with 400."""
    value = request.header("content-md5")
    if not value:
        return None
    return decode_base64_header("Content-MD5", value)


def decode_base64_header(name: str, value: str) -> bytes:
    """A base64 header value (an MD5) decoded; not base64 is refused with 400 InvalidHeaderValue."""
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise err.invalid_header_value(name, value) from None


def meta_headers(metadata: dict) -> dict:
    return {_META_PREFIX + key: value for key, value in metadata.items()}


def download_headers(headers: dict, properties: dict, response_headers: dict, metadata: dict,
                     grant: Optional[Grant]) -> dict:
    """``headers`` (the item's own) completed as a blob or file download answers: the stored
    content properties under their response names (``response_headers``), the metadata, and
    the response headers a SAS overrides."""
    headers.update({"Accept-Ranges": "bytes", "x-ms-server-encrypted": "true", "x-ms-lease-state": "available",
                    "x-ms-lease-status": "unlocked", "Content-Type": "application/octet-stream"})
    for header, response_header in response_headers.items():
        if properties.get(header):
            headers[response_header] = properties[header]
    headers.update(meta_headers(metadata))
    if grant is not None and grant.overrides:
        for field, response_header in _SAS_OVERRIDES:
            if field in grant.overrides:
                headers[response_header] = grant.overrides[field]
    return headers


def reply_from_open_file(fd: int, answer: Callable[[], Reply]) -> Reply:
    """``answer()``'s reply; ``fd`` is closed here unless the reply streams it (a ``FileStream``)."""
    try:
        reply = answer()
    except BaseException:
        os.close(fd)
        raise
    if not isinstance(reply.body, FileStream):
        os.close(fd)
    return reply


def range_reply(request: StorageRequest, fd: int, headers: dict, start: int, length: int) -> Reply:
    """The 206 answer for ``length`` bytes of ``fd`` from ``start``: streamed, or read whole and
    hashed when ``x-ms-range-get-content-md5: true`` asks (4 MiB at most)."""
    if request.header("x-ms-range-get-content-md5").lower() == "true":
        if length > _MAX_RANGE_MD5:
            raise err.out_of_range_input("x-ms-range-get-content-md5 needs a range of at most 4 MiB.")
        data = os.pread(fd, length, start)
        headers["Content-MD5"] = base64.b64encode(hashlib.md5(data).digest()).decode()
        return Reply(206, headers, data)
    return Reply(206, headers, FileStream(fd, start, length), length=length)


def int_query(request: StorageRequest, name: str, low: int = 1, high: int = 5000) -> Optional[int]:
    raw = request.query.get(name)
    if raw in (None, ""):
        return None
    try:
        value = int(raw)
    except ValueError:
        raise err.invalid_query_parameter_value(name, raw) from None
    if not low <= value <= high:
        raise err.invalid_query_parameter_value(name, raw, "{} must be {} to {}.".format(name, low, high))
    return value


class Route:
    __slots__ = ("handler", "permissions", "level")

    def __init__(self, handler: str, permissions: Optional[str], level: str) -> None:
        # level: the resource the SAS check takes the operation to act on
        self.handler, self.permissions, self.level = handler, permissions, level


class StorageRouter:
    """Storage services tell operations apart by the URL's depth (``level``), the ``restype``
    and ``comp`` query parameters and the method: a row is ``(method, level, restype, comp,
    handler name, SAS permissions)``; permissions None means SharedKey only.

    A service whose SAS resources are not its URL levels maps them with ``resource_of(level,
    restype)``; one that names its levels otherwise in errors overrides ``_where``/``_at``."""

    def __init__(self, rows: Iterable[tuple], hints: dict,
                 resource_of: Optional[Callable[[str, Optional[str]], str]] = None) -> None:
        self.rows = list(rows)
        self._routes: dict[tuple, Route] = {}
        self._methods: dict[tuple, set] = {}
        self._hints = hints
        for method, level, restype, comp, handler, permissions in self.rows:
            key = (level, restype, comp)
            resource = resource_of(level, restype) if resource_of else level
            self._routes[(method,) + key] = Route(handler, permissions, resource)
            self._methods.setdefault(key, set()).add(method)

    def _where(self, level: str) -> str:
        """The level, as the error for an unknown ``comp`` names it (after "on")."""
        return "the {} level".format(level)

    def _at(self, level: str) -> str:
        """The level, as the error for an unknown restype names it (after "No GET operation")."""
        return "at the {} level".format(level)

    def match(self, method: str, level: str, restype: Optional[str], comp: Optional[str]) -> Route:
        key = (level, restype or None, comp or None)
        route = self._routes.get((method,) + key)
        if route is not None:
            return route
        if key in self._methods:
            raise err.unsupported_http_verb(method)
        known_restypes = {row[2] for row in self.rows if row[2]}
        if restype and restype not in known_restypes:
            raise err.invalid_query_parameter_value("restype", restype)
        if comp:
            raise err.not_implemented("comp={} on {} (restype={})".format(comp, self._where(level), restype or ""))
        raise err.invalid_query_parameter_value(
            "restype", restype or "", "No {} operation {} has restype={!r} and no comp; {}.".format(
                method, self._at(level), restype or "", self._hints.get(level, "")))


class StorageApplication:
    """The WSGI application of a storage endpoint: ``locate`` (the service's addressing),
    route, authenticate and authorize, run the handler, answer; ``StorageError`` becomes the
    service's XML error."""

    request_class = StorageRequest

    def __init__(self, router: StorageRouter, auth: StorageAuthenticator, responses,
                 locate: Callable[[StorageRequest], tuple]) -> None:
        self.router, self.auth, self.responses, self._locate = router, auth, responses, locate

    def __call__(self, environ, start_response):
        request = self.request_class(environ)
        try:
            reply = self.handle(request)
        except err.StorageError as exc:
            reply = self._error(request, exc)
        except Exception:  # a bug in the emulator: log it (never the query: it may hold a SAS)
            log.exception("internal error handling %s %s", request.method, request.raw_path)
            reply = self._error(request, err.internal_error())
        request.discard_body()
        headers = dict(reply.headers)
        headers["x-ms-request-id"] = request.request_id
        headers["x-ms-version"] = (valid_version(request.header("x-ms-version"))
                                   or (request.grant and valid_version(request.grant.version or "")) or DEFAULT_VERSION)
        client_request_id = request.header("x-ms-client-request-id")
        if client_request_id:
            headers["x-ms-client-request-id"] = client_request_id
        if "Content-Length" not in headers:
            headers["Content-Length"] = str(reply.length or 0)
        start_response("{} {}".format(reply.status, HTTPStatus(reply.status).phrase), list(headers.items()))
        body = reply.body
        if request.method == "HEAD":
            if isinstance(body, FileStream):
                body.close()
            return []
        return [body] if isinstance(body, bytes) else body

    def _error(self, request: StorageRequest, error: err.StorageError) -> Reply:
        # HEAD and 304 answers carry no body (a client would read it as the next response).
        headers, body = err.render(error, request.request_id,
                                   with_body=request.method != "HEAD" and error.status != 304)
        return Reply(error.status, headers, body)

    def handle(self, request: StorageRequest) -> Reply:
        check_version(request.header("x-ms-version"))
        return self.dispatch(request, *self._locate(request))

    def dispatch(self, request: StorageRequest, level: str, container: Optional[str], path: Optional[str],
                 args: tuple) -> Reply:
        """Route a located request, authenticate and authorize it, and run its handler."""
        route = self.router.match(request.method, level, request.query.get("restype"), request.query.get("comp"))
        request.grant = self.auth.authenticate(request, container, path)
        self.auth.authorize(request.grant, route.permissions, route.level, route.handler)
        return getattr(self.responses, route.handler)(request, *args)
