"""Blob state: containers, blobs and staged blocks in SQLite, their bytes in files on disk.

A blob's bytes are one file under ``<data_dir>/blob/objects`` and a staged (uncommitted) block
one file under ``<data_dir>/blob/blocks``, each named by a random id, never by the blob's name:
a blob may be called ``../../etc/passwd`` or anything else Azure allows and still stays a row
in the database and a file in its folder. A new version of a blob is written to a new file and
the row switched over in one transaction, so a reader that opened the old file reads it to the
end and a crash never leaves a half-written blob behind (files no row names are swept away
on start).

A blob's committed block list is kept with it as ``[[block id, size], ...]``: the blob's bytes
are those blocks end to end, so a later Put Block List that keeps a committed block copies its
range out of the current file.
"""
from __future__ import annotations

import base64
import binascii
import datetime
import email.utils
import hashlib
import json
import os
import re
import threading
import time
import uuid
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Optional, Union
from urllib.parse import quote

from ..core import public_urls
from ..core.storage_auth import DEFAULT_VERSION, SasRules, StorageAuthenticator, format_sas_time, parse_http_date
from . import exceptions as err

#: Azure's limits (service version 2019-12-12 and later).
MAX_PUT_BLOB_SIZE = 5000 * 1024 * 1024
MAX_BLOCK_SIZE = 4000 * 1024 * 1024
MAX_BLOCKS = 50_000
MAX_UNCOMMITTED_BLOCKS = 100_000
MAX_BLOB_NAME = 1024
MAX_BLOCK_ID_BYTES = 64

_SCHEMA = """
CREATE TABLE IF NOT EXISTS blob_containers (
    name TEXT PRIMARY KEY, etag TEXT NOT NULL, last_modified TEXT NOT NULL, metadata TEXT NOT NULL DEFAULT '{}',
    public_access TEXT);
CREATE TABLE IF NOT EXISTS blobs (
    container TEXT NOT NULL, name TEXT NOT NULL, object TEXT NOT NULL, size INTEGER NOT NULL, etag TEXT NOT NULL,
    last_modified TEXT NOT NULL, created TEXT NOT NULL, properties TEXT NOT NULL DEFAULT '{}',
    metadata TEXT NOT NULL DEFAULT '{}', blocks TEXT NOT NULL DEFAULT '[]', PRIMARY KEY (container, name));
CREATE TABLE IF NOT EXISTS blob_blocks (
    container TEXT NOT NULL, name TEXT NOT NULL, block_id TEXT NOT NULL, object TEXT NOT NULL, size INTEGER NOT NULL,
    seq INTEGER NOT NULL, PRIMARY KEY (container, name, block_id));
"""

_CONTAINER_NAME = re.compile(r"[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}|\$root|\$logs|\$web")

#: Blob properties set by Put Blob / Put Block List / Set Blob Properties: request header ->
#: the header Get Blob answers with (and the name of the element in list results).
CONTENT_PROPERTIES = {
    "x-ms-blob-content-type": "Content-Type",
    "x-ms-blob-content-encoding": "Content-Encoding",
    "x-ms-blob-content-language": "Content-Language",
    "x-ms-blob-content-md5": "Content-MD5",
    "x-ms-blob-content-disposition": "Content-Disposition",
    "x-ms-blob-cache-control": "Cache-Control",
}


def http_date(seconds: Optional[float] = None) -> str:
    return email.utils.formatdate(seconds if seconds is not None else time.time(), usegmt=True)


def http_timestamp(value: str) -> Optional[float]:
    """An HTTP date as epoch seconds; None when not one."""
    parsed = parse_http_date(value)
    return None if parsed is None else parsed.timestamp()


def new_etag() -> str:
    return '"0x8D{:014X}"'.format((time.time_ns() // 100) & (16 ** 14 - 1))


def validate_container_name(name: str) -> None:
    if not _CONTAINER_NAME.fullmatch(name or ""):
        raise err.invalid_resource_name("Container names are 3-63 characters: lower-case letters, digits and single "
                                        "hyphens, starting and ending with a letter or digit.")


def validate_blob_name(name: str) -> None:
    if not name:
        raise err.invalid_uri("The blob name is empty.")
    if len(name) > MAX_BLOB_NAME:
        raise err.invalid_resource_name("A blob name is at most 1,024 characters.")
    if "\x00" in name or any(0xD800 <= ord(c) <= 0xDFFF for c in name):
        raise err.invalid_resource_name("A blob name must be valid UTF-8 without NUL characters.")


def decode_block_id(block_id: str) -> bytes:
    try:
        raw = base64.b64decode(block_id, validate=True)
    except (binascii.Error, ValueError):
        raise err.invalid_block_id() from None
    if not raw or len(raw) > MAX_BLOCK_ID_BYTES:
        raise err.invalid_block_id()
    return raw


@dataclass
class Container:
    name: str
    etag: str
    last_modified: str
    metadata: dict = field(default_factory=dict)
    public_access: Optional[str] = None


@dataclass
class Blob:
    container: str
    name: str
    object: str
    size: int
    etag: str
    last_modified: str
    created: str
    properties: dict = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)
    blocks: list = field(default_factory=list)

    @property
    def content_md5(self) -> str:
        return self.properties.get("x-ms-blob-content-md5", "")


@dataclass
class Conditions:
    """The request's conditional headers (If-Match, If-None-Match, If-(Un)Modified-Since)."""

    if_match: str = ""
    if_none_match: str = ""
    if_modified_since: str = ""
    if_unmodified_since: str = ""

    def check(self, blob: Optional[Blob], write: bool) -> None:
        """Raise the service's error when the conditions do not hold for ``blob`` (None: absent)."""
        if self.if_match:
            if blob is None or not _etag_matches(self.if_match, blob.etag):
                raise err.condition_not_met()
        if self.if_none_match and blob is not None and _etag_matches(self.if_none_match, blob.etag):
            if self.if_none_match.strip() == "*" and write:
                raise err.blob_already_exists()
            raise err.condition_not_met() if write else err.not_modified()
        if blob is None:
            return
        modified = http_timestamp(blob.last_modified) or 0
        if self.if_modified_since:
            since = http_timestamp(self.if_modified_since)
            if since is not None and modified <= since:
                raise err.condition_not_met() if write else err.not_modified()
        if self.if_unmodified_since:
            since = http_timestamp(self.if_unmodified_since)
            if since is not None and modified > since:
                raise err.condition_not_met()


def _etag_matches(header: str, etag: str) -> bool:
    wanted = [tag.strip() for tag in header.split(",")]
    bare = etag.strip('"')
    return any(tag == "*" or tag.strip('"') == bare for tag in wanted)


Item = Union[Blob, str]   # a listing holds blobs and (with a delimiter) prefixes


class _KeyedLocks:
    """One lock per blob, so writes to one blob are serialised and writes to others are not."""

    def __init__(self) -> None:
        self._locks: dict = defaultdict(threading.Lock)
        self._users: dict = defaultdict(int)
        self._guard = threading.Lock()

    @contextmanager
    def hold(self, key) -> Iterator[None]:
        with self._guard:
            self._users[key] += 1
            lock = self._locks[key]
        try:
            with lock:
                yield
        finally:
            with self._guard:
                self._users[key] -= 1
                if not self._users[key]:
                    del self._users[key], self._locks[key]


def _blob_sas_fields(version: str) -> tuple:
    """The string-to-sign's fields after the canonical resource, by signed version (sv)."""
    overrides = ("rscc", "rscd", "rsce", "rscl", "rsct")
    if version and version < "2015-04-05":
        return ("si", "sv") + overrides
    if version and version < "2018-11-09":
        return ("si", "sip", "spr", "sv") + overrides
    if version and version < "2020-12-06":
        return ("si", "sip", "spr", "sv", "sr", "snapshot") + overrides
    return ("si", "sip", "spr", "sv", "sr", "snapshot", "ses") + overrides


BLOB_SAS = SasRules(service="blob", item="b", container="c", item_level="blob", permissions="racwdxyltmeopi",
                    fields=_blob_sas_fields, hint="generate_blob_sas or generate_container_sas",
                    words={"item": "blob", "container": "container"})


class BlobAuthenticator(StorageAuthenticator):
    def __init__(self, account_name: str, account_key: str) -> None:
        super().__init__(account_name, account_key, BLOB_SAS, "Blob")

    def generate_sas(self, container: str, blob: Optional[str], permission: str, expiry: datetime.datetime,
                     version: str = DEFAULT_VERSION) -> str:
        """A service SAS token as ``generate_blob_sas`` (``sr=b``) / ``generate_container_sas`` sign it."""
        values = {"se": format_sas_time(expiry), "sp": permission, "sv": version, "sr": "b" if blob else "c"}
        values["sig"] = self.sign_sas(values, container, blob)
        return "&".join("{}={}".format(name, quote(value, safe="")) for name, value in values.items())


class BlobBackend:
    """Containers and block blobs of the emulator's storage account."""

    def __init__(self, store, root: Path, account_name: str, account_key: str, blob_url: str) -> None:
        self.store = store
        self.account_name = account_name
        self.blob_url = blob_url
        self.auth = BlobAuthenticator(account_name, account_key)
        self._objects = Path(root) / "objects"
        self._blocks = Path(root) / "blocks"
        for directory in (Path(root), self._objects, self._blocks):
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        store.ensure_schema(_SCHEMA)
        self._locks = _KeyedLocks()
        self._sequence = int(time.time_ns())
        self._sequence_lock = threading.Lock()
        self._sweep()

    def __repr__(self) -> str:
        return "BlobBackend(account_name={!r})".format(self.account_name)

    # ------------------------------------------------------------ files on disk
    def _object_path(self, object_id: str) -> Path:
        return self._objects / object_id

    def _block_path(self, object_id: str) -> Path:
        return self._blocks / object_id

    @staticmethod
    def _new_file(directory: Path) -> tuple[str, int]:
        object_id = uuid.uuid4().hex
        fd = os.open(str(directory / object_id), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        return object_id, fd

    @staticmethod
    def _remove(path: Path) -> None:
        try:
            path.unlink()
        except FileNotFoundError:
            pass

    def _sweep(self) -> None:
        """Remove files no row names (left by a crash between writing a file and committing)."""
        used = {row["object"] for row in self.store.query("SELECT object FROM blobs")}
        staged = {row["object"] for row in self.store.query("SELECT object FROM blob_blocks")}
        for directory, keep in ((self._objects, used), (self._blocks, staged)):
            for entry in os.scandir(directory):
                if entry.name not in keep:
                    self._remove(Path(entry.path))

    def _write_file(self, directory: Path, write: Callable[[int], None]) -> str:
        object_id, fd = self._new_file(directory)
        try:
            write(fd)
        except BaseException:
            os.close(fd)
            self._remove(directory / object_id)
            raise
        os.close(fd)
        return object_id

    # ------------------------------------------------------------ containers
    def create_container(self, name: str, metadata: dict, public_access: Optional[str]) -> Container:
        validate_container_name(name)
        container = Container(name, new_etag(), http_date(), metadata, public_access)
        with self.store.transaction():
            if self.store.query_one("SELECT 1 FROM blob_containers WHERE name = ?", (name,)):
                raise err.container_already_exists()
            self.store.execute("INSERT INTO blob_containers (name, etag, last_modified, metadata, public_access) "
                               "VALUES (?, ?, ?, ?, ?)", (name, container.etag, container.last_modified,
                                                          json.dumps(metadata), public_access))
        return container

    def get_container(self, name: str) -> Container:
        row = self.store.query_one("SELECT * FROM blob_containers WHERE name = ?", (name,))
        if row is None:
            raise err.ContainerNotFound(name)
        return Container(row["name"], row["etag"], row["last_modified"], json.loads(row["metadata"]),
                         row["public_access"])

    def list_containers(self, prefix: str, marker: str, max_results: Optional[int]) -> tuple[list, str]:
        limit = max_results or 5000
        rows = self.store.query("SELECT name FROM blob_containers WHERE name >= ? AND substr(name, 1, ?) = ? "
                                "ORDER BY name LIMIT ?", (max(prefix, marker), len(prefix), prefix, limit + 1))
        names = [row["name"] for row in rows]
        next_marker = names[limit] if len(names) > limit else ""
        return [self.get_container(name) for name in names[:limit]], next_marker

    def set_container_metadata(self, name: str, metadata: dict) -> Container:
        etag, modified = new_etag(), http_date()
        if not self.store.execute("UPDATE blob_containers SET metadata = ?, etag = ?, last_modified = ? WHERE name = ?",
                                  (json.dumps(metadata), etag, modified, name)):
            raise err.ContainerNotFound(name)
        return self.get_container(name)

    def delete_container(self, name: str) -> None:
        with self.store.transaction():
            self.get_container(name)
            objects = [row["object"] for row in self.store.query("SELECT object FROM blobs WHERE container = ?",
                                                                 (name,))]
            blocks = [row["object"] for row in self.store.query("SELECT object FROM blob_blocks WHERE container = ?",
                                                                (name,))]
            self.store.execute("DELETE FROM blobs WHERE container = ?", (name,))
            self.store.execute("DELETE FROM blob_blocks WHERE container = ?", (name,))
            self.store.execute("DELETE FROM blob_containers WHERE name = ?", (name,))
        for object_id in objects:
            self._remove(self._object_path(object_id))
        for object_id in blocks:
            self._remove(self._block_path(object_id))

    # ------------------------------------------------------------ blobs: reading
    def _row_to_blob(self, row) -> Blob:
        return Blob(row["container"], row["name"], row["object"], row["size"], row["etag"], row["last_modified"],
                    row["created"], json.loads(row["properties"]), json.loads(row["metadata"]),
                    json.loads(row["blocks"]))

    def find_blob(self, container: str, name: str) -> Optional[Blob]:
        row = self.store.query_one("SELECT * FROM blobs WHERE container = ? AND name = ?", (container, name))
        if row is None:
            self.get_container(container)  # ContainerNotFound before BlobNotFound, as the service
            return None
        return self._row_to_blob(row)

    def get_blob(self, container: str, name: str) -> Blob:
        blob = self.find_blob(container, name)
        if blob is None:
            raise err.BlobNotFound(name)
        return blob

    def open_blob(self, container: str, name: str) -> tuple[int, Blob]:
        """An fd on the blob's bytes and its properties, consistent with each other even while
        the blob is being replaced (the fd then still reads the version it belongs to)."""
        for _ in range(5):
            blob = self.get_blob(container, name)
            try:
                return os.open(str(self._object_path(blob.object)), os.O_RDONLY | os.O_CLOEXEC), blob
            except FileNotFoundError:
                continue  # replaced between the query and the open: read the row again
        raise err.internal_error()

    def list_blobs(self, container: str, prefix: str, delimiter: str, marker: str,
                   max_results: Optional[int]) -> tuple[list, str]:
        """Blobs (and, with ``delimiter``, ``BlobPrefix`` strings) in name order from ``marker``;
        the next marker is the name where the next page starts."""
        self.get_container(container)
        limit = max_results or 5000
        items: list[Item] = []
        starts: list[str] = []   # for each item, the first blob name it stands for
        position = max(prefix, marker)
        inclusive = True
        while len(items) <= limit:
            rows = self.store.query(
                "SELECT * FROM blobs WHERE container = ? AND name {} ? ORDER BY name LIMIT 1000".format(
                    ">=" if inclusive else ">"), (container, position))
            if not rows:
                break
            jumped = False
            for row in rows:
                name = row["name"]
                if not name.startswith(prefix):
                    return self._page(items, starts, limit)
                position, inclusive = name, False
                cut = name.find(delimiter, len(prefix)) if delimiter else -1
                if cut >= 0:
                    common = name[:cut + len(delimiter)]
                    items.append(common)
                    starts.append(name)
                    # Skip the rest of this prefix's blobs in one step.
                    position, inclusive, jumped = _successor(common), True, True
                else:
                    items.append(self._row_to_blob(row))
                    starts.append(name)
                if len(items) > limit or jumped:
                    break
            if len(rows) < 1000 and not jumped:
                break
        return self._page(items, starts, limit)

    @staticmethod
    def _page(items: list, starts: list, limit: int) -> tuple[list, str]:
        if len(items) > limit:
            return items[:limit], starts[limit]
        return items, ""

    def get_block_list(self, container: str, name: str) -> tuple[Optional[Blob], list]:
        """The blob (None if only staged) and its uncommitted blocks as ``[id, size]`` in staging order."""
        blob = self.find_blob(container, name)
        rows = self.store.query("SELECT block_id, size FROM blob_blocks WHERE container = ? AND name = ? ORDER BY seq",
                                (container, name))
        if blob is None and not rows:
            raise err.BlobNotFound(name)
        return blob, [[row["block_id"], row["size"]] for row in rows]

    # ------------------------------------------------------------ blobs: writing
    def put_blob(self, container: str, name: str, write: Callable[[int], tuple[int, str]], properties: dict,
                 metadata: dict, conditions: Conditions, may_overwrite: bool = True) -> Blob:
        """Store a whole blob: ``write(fd)`` writes its bytes and returns (size, MD5 base64)."""
        validate_blob_name(name)
        self._check_before_write(container, name, conditions, may_overwrite)
        result = {}
        object_id = self._write_file(self._objects, lambda fd: result.update(zip(("size", "md5"), write(fd))))
        properties = dict(properties)
        properties.setdefault("x-ms-blob-content-md5", result["md5"])
        try:
            return self._commit(container, name, object_id, result["size"], properties, metadata, [], conditions,
                                may_overwrite)
        except BaseException:
            self._remove(self._object_path(object_id))
            raise

    def stage_block(self, container: str, name: str, block_id: str, write: Callable[[int], int]) -> None:
        validate_blob_name(name)
        decode_block_id(block_id)
        self.get_container(container)
        size_holder = {}
        object_id = self._write_file(self._blocks, lambda fd: size_holder.update(size=write(fd)))
        old = None
        try:
            with self._locks.hold((container, name)), self.store.transaction():
                self.get_container(container)
                lengths = self._block_id_lengths(container, name)
                if lengths and lengths != {len(block_id)}:
                    raise err.invalid_block_id()
                count = self.store.query_one("SELECT COUNT(*) AS n FROM blob_blocks WHERE container = ? AND name = ?",
                                             (container, name))["n"]
                if count >= MAX_UNCOMMITTED_BLOCKS:
                    raise err.block_count_exceeds_limit()
                row = self.store.query_one("SELECT object FROM blob_blocks WHERE container = ? AND name = ? AND "
                                           "block_id = ?", (container, name, block_id))
                old = row["object"] if row else None
                self.store.execute("INSERT OR REPLACE INTO blob_blocks (container, name, block_id, object, size, seq) "
                                   "VALUES (?, ?, ?, ?, ?, ?)", (container, name, block_id, object_id,
                                                                 size_holder["size"], self._next_sequence()))
        except BaseException:
            self._remove(self._block_path(object_id))
            raise
        if old:
            self._remove(self._block_path(old))

    def commit_block_list(self, container: str, name: str, entries: list[tuple[str, str]], properties: dict,
                          metadata: dict, conditions: Conditions, may_overwrite: bool = True) -> Blob:
        """Put Block List: ``entries`` are (where, block id) with where one of "latest",
        "committed", "uncommitted"; the blob becomes those blocks end to end."""
        validate_blob_name(name)
        if len(entries) > MAX_BLOCKS:
            raise err.block_count_exceeds_limit()
        with self._locks.hold((container, name)):
            current = self._check_before_write(container, name, conditions, may_overwrite)
            committed = {}
            offset = 0
            for block_id, size in (current.blocks if current else []):
                committed[block_id] = (offset, size)
                offset += size
            staged = {row["block_id"]: (row["object"], row["size"]) for row in self.store.query(
                "SELECT block_id, object, size FROM blob_blocks WHERE container = ? AND name = ?", (container, name))}
            plan = []   # (source path, offset, size) per block
            for where, block_id in entries:
                decode_block_id(block_id)
                if where in ("latest", "uncommitted") and block_id in staged:
                    object_id, size = staged[block_id]
                    plan.append((block_id, self._block_path(object_id), 0, size))
                elif where in ("latest", "committed") and block_id in committed:
                    start, size = committed[block_id]
                    plan.append((block_id, self._object_path(current.object), start, size))
                else:
                    raise err.invalid_block_list("Block '{}' is not {}.".format(
                        block_id[:88], {"latest": "staged or committed", "committed": "committed",
                                        "uncommitted": "staged"}[where]))
            object_id = self._write_file(self._objects, lambda fd: _concatenate(fd, plan))
            try:
                return self._commit(container, name, object_id, sum(p[3] for p in plan), properties, metadata,
                                    [[p[0], p[3]] for p in plan], conditions, may_overwrite, locked=True)
            except BaseException:
                self._remove(self._object_path(object_id))
                raise

    def _check_before_write(self, container: str, name: str, conditions: Conditions,
                            may_overwrite: bool) -> Optional[Blob]:
        current = self.find_blob(container, name)
        conditions.check(current, write=True)
        if current is not None and not may_overwrite:
            raise err.authorization_permission_mismatch("The SAS grants create (c) but not write (w): it cannot "
                                                        "overwrite an existing blob.")
        return current

    def _commit(self, container: str, name: str, object_id: str, size: int, properties: dict, metadata: dict,
                blocks: list, conditions: Conditions, may_overwrite: bool, locked: bool = False) -> Blob:
        """Make ``object_id`` the blob's bytes; staged blocks are dropped, as on the service."""
        if not locked:
            with self._locks.hold((container, name)):
                return self._commit(container, name, object_id, size, properties, metadata, blocks, conditions,
                                    may_overwrite, locked=True)
        with self.store.transaction():
            current = self._check_before_write(container, name, conditions, may_overwrite)
            now = http_date()
            blob = Blob(container, name, object_id, size, new_etag(), now, current.created if current else now,
                        properties, metadata, blocks)
            dropped = [row["object"] for row in self.store.query(
                "SELECT object FROM blob_blocks WHERE container = ? AND name = ?", (container, name))]
            self.store.execute("DELETE FROM blob_blocks WHERE container = ? AND name = ?", (container, name))
            self.store.execute(
                "INSERT OR REPLACE INTO blobs (container, name, object, size, etag, last_modified, created, properties, "
                "metadata, blocks) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (container, name, object_id, size, blob.etag, blob.last_modified, blob.created, json.dumps(properties),
                 json.dumps(metadata), json.dumps(blocks)))
        if current is not None:
            self._remove(self._object_path(current.object))
        for old in dropped:
            self._remove(self._block_path(old))
        return blob

    def set_blob_metadata(self, container: str, name: str, metadata: dict, conditions: Conditions) -> Blob:
        return self._update(container, name, conditions, metadata=metadata)

    def set_blob_properties(self, container: str, name: str, properties: dict, conditions: Conditions) -> Blob:
        return self._update(container, name, conditions, properties=properties)

    def _update(self, container: str, name: str, conditions: Conditions, **changes) -> Blob:
        with self._locks.hold((container, name)), self.store.transaction():
            blob = self.get_blob(container, name)
            conditions.check(blob, write=True)
            blob.etag, blob.last_modified = new_etag(), http_date()
            for key, value in changes.items():
                setattr(blob, key, value)
            self.store.execute("UPDATE blobs SET etag = ?, last_modified = ?, properties = ?, metadata = ? "
                               "WHERE container = ? AND name = ?",
                               (blob.etag, blob.last_modified, json.dumps(blob.properties), json.dumps(blob.metadata),
                                container, name))
        return blob

    def delete_blob(self, container: str, name: str, conditions: Conditions) -> None:
        with self._locks.hold((container, name)), self.store.transaction():
            blob = self.get_blob(container, name)
            conditions.check(blob, write=True)
            dropped = [row["object"] for row in self.store.query(
                "SELECT object FROM blob_blocks WHERE container = ? AND name = ?", (container, name))]
            self.store.execute("DELETE FROM blobs WHERE container = ? AND name = ?", (container, name))
            self.store.execute("DELETE FROM blob_blocks WHERE container = ? AND name = ?", (container, name))
        self._remove(self._object_path(blob.object))
        for old in dropped:
            self._remove(self._block_path(old))

    # ------------------------------------------------------------ helpers
    def _block_id_lengths(self, container: str, name: str) -> set:
        rows = self.store.query("SELECT DISTINCT length(block_id) AS n FROM blob_blocks WHERE container = ? AND "
                                "name = ?", (container, name))
        return {row["n"] for row in rows}

    def _next_sequence(self) -> int:
        with self._sequence_lock:
            self._sequence += 1
            return self._sequence

    def blob_sas_url(self, container: str, name: str, permission: str, expiry: datetime.datetime) -> str:
        """A URL with a service SAS for one blob (what the service's SDKs make with generate_blob_sas)."""
        token = self.auth.generate_sas(container, name, permission, expiry)
        return "{}/{}/{}?{}".format(public_urls.blob_account(self.blob_url, self.account_name), container, quote(name, safe="/~"), token)


def _concatenate(fd: int, plan: list) -> None:
    for _block_id, path, offset, size in plan:
        with open(path, "rb") as source:
            left = size
            position = offset
            while left > 0:
                try:
                    copied = os.copy_file_range(source.fileno(), fd, left, position)
                except (AttributeError, OSError):
                    copied = 0
                if not copied:
                    data = os.pread(source.fileno(), min(left, 1024 * 1024), position)
                    if not data:
                        raise err.internal_error()
                    os.write(fd, data)
                    copied = len(data)
                position += copied
                left -= copied


def md5_writer(body, limit: int) -> Callable[[int], tuple[int, str]]:
    """A ``write(fd)`` for put_blob: copies the request body, returns (size, MD5 base64)."""
    def write(fd: int) -> tuple[int, str]:
        digest = hashlib.md5()
        size = body.copy_to(fd, limit, digest.update)
        return size, base64.b64encode(digest.digest()).decode()
    return write


def _successor(prefix: str) -> str:
    """The smallest string greater than every string that starts with ``prefix`` (its last
    character incremented; SQLite and Python order text by code point)."""
    last = ord(prefix[-1]) + 1
    if 0xD800 <= last <= 0xDFFF:  # no surrogates in stored names: jump over them
        last = 0xE000
    if last > 0x10FFFF:
        return _successor(prefix[:-1]) if len(prefix) > 1 else prefix + "\U0010FFFF"
    return prefix[:-1] + chr(last)
