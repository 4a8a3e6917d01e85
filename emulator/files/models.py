"""Azure Files state: shares in SQLite, share contents as real directories and files on disk.

A share's contents live under ``<data_dir>/files/<share>``. Batch AI nodes "mount" a share by
symlinking that directory and jobs write into it directly, so everything the endpoint reports
about files and directories (size, Last-Modified, ETag, listings) comes from ``os.stat`` at
request time. SQLite holds the shares and the few file properties that have no place on disk
(content type and friends, metadata); it is never written on the put-range path.

Every path a client names is checked to stay inside its share: no ``.``/``..`` or empty
segments, no separators or NUL inside a name, and the real path (after symbolic links) must
be inside the share's real directory.
"""
from __future__ import annotations

import datetime
import errno
import hashlib
import json
import os
import re
import shutil
import stat as stat_module
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from typing import Iterator, Optional
from urllib.parse import quote, unquote, urlsplit

from . import exceptions as err
from .auth import Authenticator

#: Azure's limit for one Put Range request.
MAX_RANGE_SIZE = 4 * 1024 * 1024
#: Put Range bodies are written in pieces of this size as they arrive.
STREAM_CHUNK = 512 * 1024
#: Azure's largest file.
MAX_FILE_SIZE = 4 * 1024 ** 4
DEFAULT_QUOTA_GIB = 5120

_SCHEMA = """
CREATE TABLE IF NOT EXISTS file_shares (
    name TEXT PRIMARY KEY, created TEXT NOT NULL, etag TEXT NOT NULL, last_modified TEXT NOT NULL,
    quota INTEGER NOT NULL, metadata TEXT NOT NULL DEFAULT '{}');
CREATE TABLE IF NOT EXISTS file_properties (
    share TEXT NOT NULL, path TEXT NOT NULL, ino INTEGER NOT NULL, properties TEXT NOT NULL DEFAULT '{}',
    metadata TEXT NOT NULL DEFAULT '{}', PRIMARY KEY (share, path));
"""

_SHARE_NAME = re.compile(r"[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}")
# Never allowed in a path segment (they would change what the path means on disk).
_UNSAFE_CHARS = re.compile(r"[\x00-\x1f\x7f\\/]")
# Not allowed in names the service creates (Azure Files' naming rules).
_INVALID_NAME_CHARS = re.compile(r'["\\/:|<>*?\x00-\x1f]')

#: File properties that live in SQLite (request header -> response header).
CONTENT_PROPERTIES = {
    "x-ms-content-type": "Content-Type",
    "x-ms-content-encoding": "Content-Encoding",
    "x-ms-content-language": "Content-Language",
    "x-ms-cache-control": "Cache-Control",
    "x-ms-content-disposition": "Content-Disposition",
    "x-ms-content-md5": "Content-MD5",
}


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def http_date(seconds: float) -> str:
    return formatdate(seconds, usegmt=True)


def iso_time_ns(ns: int) -> str:
    """Azure's file times: ISO 8601 UTC with 7 fractional digits."""
    seconds, rest = divmod(ns, 1_000_000_000)
    base = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return "{}.{:07d}Z".format(base, rest // 100)


def new_etag() -> str:
    return '"0x8D{:014X}"'.format((time.time_ns() // 100) & (16 ** 14 - 1))


def validate_share_name(name: str) -> None:
    if not _SHARE_NAME.fullmatch(name or ""):
        raise err.invalid_resource_name("Share names are 3-63 characters: lower-case letters, digits and single "
                                        "hyphens, starting and ending with a letter or digit.")


def validate_segment(segment: str) -> None:
    """Refuse a path segment that could leave its directory (applies to every request)."""
    if segment in ("", ".", ".."):
        raise err.invalid_uri("Empty, '.' and '..' path segments are not allowed.")
    if _UNSAFE_CHARS.search(segment):
        raise err.invalid_resource_name("Path segments may not contain '/', '\\', NUL or control characters.")
    if len(segment.encode("utf-8", "surrogateescape")) > 255:
        raise err.invalid_resource_name("A file or directory name is limited to 255 characters.")


def validate_new_name(segment: str) -> None:
    """The stricter rule for names the service creates."""
    validate_segment(segment)
    if _INVALID_NAME_CHARS.search(segment) or segment.endswith("."):
        raise err.invalid_resource_name('File and directory names may not contain " \\ / : | < > * ? or control '
                                        "characters, nor end with '.'.")


@dataclass
class Entry:
    """A file or directory as seen on disk (``os.stat``)."""

    name: str
    is_dir: bool
    size: int
    ino: int
    mtime_ns: int
    ctime_ns: int
    atime_ns: int

    @classmethod
    def from_stat(cls, name: str, st: os.stat_result) -> "Entry":
        is_dir = stat_module.S_ISDIR(st.st_mode)
        return cls(name, is_dir, 0 if is_dir else st.st_size, st.st_ino, st.st_mtime_ns, st.st_ctime_ns,
                   st.st_atime_ns)

    @property
    def etag(self) -> str:
        """Stable while the file is unchanged (same inode, size and modification time)."""
        digest = hashlib.blake2b("{}:{}:{}".format(self.ino, self.size, self.mtime_ns).encode(), digest_size=7)
        return '"0x8D{}"'.format(digest.hexdigest().upper())

    @property
    def last_modified(self) -> str:
        return http_date(self.mtime_ns / 1e9)

    @property
    def creation_time(self) -> str:
        return iso_time_ns(min(self.mtime_ns, self.ctime_ns))

    @property
    def last_write_time(self) -> str:
        return iso_time_ns(self.mtime_ns)

    @property
    def change_time(self) -> str:
        return iso_time_ns(self.ctime_ns)

    @property
    def last_access_time(self) -> str:
        return iso_time_ns(self.atime_ns)


@dataclass
class Share:
    name: str
    created: str
    etag: str
    last_modified: str
    quota: int
    metadata: dict


class _SharedExclusiveLock:
    """Many range writers at once (different offsets of one pre-sized file), or one
    create/resize/delete alone."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self.users = 0  # registry bookkeeping

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            while self._writer:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._readers:
                self._cond.wait()
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


class _BufferPool:
    """Reusable 4 MiB receive buffers (each connection gets a new server thread, so
    thread-local buffers would never be reused)."""

    def __init__(self, size: int, keep: int = 8) -> None:
        self.size, self.keep = size, keep
        self._free: list[bytearray] = []
        self._lock = threading.Lock()

    @contextmanager
    def buffer(self) -> Iterator[memoryview]:
        with self._lock:
            buf = self._free.pop() if self._free else None
        if buf is None:
            buf = bytearray(self.size)
        try:
            yield memoryview(buf)
        finally:
            with self._lock:
                if len(self._free) < self.keep:
                    self._free.append(buf)


_ZEROS = bytes(1024 * 1024)


class FilesBackend:
    """The File service of one storage account.

    Used by the HTTP handlers and by Batch AI (``share_path``, ``share_from_url``,
    ``check_account_key``, ``file_sas_url``).
    """

    def __init__(self, store, root: Path, account_name: str, account_key: str, files_url: str) -> None:
        self.store = store
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.account_name = account_name
        self.files_url = files_url.rstrip("/")
        self.auth = Authenticator(account_name, account_key)
        self._lock = threading.RLock()
        self._file_locks: dict[str, _SharedExclusiveLock] = {}
        self._buffers = _BufferPool(MAX_RANGE_SIZE)
        store.ensure_schema(_SCHEMA)
        self._shares: dict[str, Share] = {}
        self._real_roots: dict[str, str] = {}
        for row in store.query("SELECT * FROM file_shares"):
            self._shares[row["name"]] = Share(row["name"], row["created"], row["etag"], row["last_modified"],
                                              row["quota"], json.loads(row["metadata"]))

    def __repr__(self) -> str:
        return "FilesBackend(account_name={!r}, root={!r})".format(self.account_name, str(self.root))

    # ---------------------------------------------------------------- Batch AI API
    def share_path(self, share: str) -> Path:
        """The directory holding ``share``'s live contents; raises ShareNotFound."""
        with self._lock:
            if share not in self._shares:
                raise err.ShareNotFound(share)
        path = self.root / share
        if not path.is_dir():  # removed behind our back: an empty share is still a share
            path.mkdir(parents=True, exist_ok=True)
        return path

    def share_from_url(self, azure_file_url: str) -> str:
        """The share named by a mount's ``azureFileUrl``: ``http://127.0.0.1:PORT/<account>/<share>``
        (this emulator) or ``https://<account>.file.core.windows.net/<share>``."""
        try:
            parts = urlsplit((azure_file_url or "").strip())
            host = (parts.hostname or "").lower()
        except ValueError:
            raise ValueError("azureFileUrl {!r} is not a valid URL".format(azure_file_url)) from None
        segments = [unquote(s) for s in parts.path.split("/") if s]
        if parts.scheme not in ("http", "https") or not host:
            raise ValueError("azureFileUrl {!r} must be an http(s) URL such as {}/<share>".format(
                azure_file_url, self.files_url))
        if host in ("127.0.0.1", "localhost", "::1"):
            if not segments:
                raise ValueError("azureFileUrl {!r} names no account; expected {}/<share>".format(
                    azure_file_url, self.files_url))
            account, segments = segments[0], segments[1:]
        elif ".file." in host:
            account = host.split(".", 1)[0]
        else:
            raise ValueError("azureFileUrl {!r} is neither this emulator's ({}/<share>) nor an Azure Files URL "
                             "(https://<account>.file.core.windows.net/<share>)".format(azure_file_url, self.files_url))
        if account != self.account_name:
            raise ValueError("azureFileUrl {!r} names storage account {!r}, but this emulator serves {!r}".format(
                azure_file_url, account, self.account_name))
        if len(segments) != 1:
            raise ValueError("azureFileUrl {!r} must name exactly one share: .../{}/<share>".format(
                azure_file_url, self.account_name))
        try:
            validate_share_name(segments[0])
        except err.StorageError:
            raise ValueError("azureFileUrl {!r}: {!r} is not a valid share name".format(
                azure_file_url, segments[0])) from None
        return segments[0]

    def check_account_key(self, account_name: str, key: str) -> bool:
        """Whether ``account_name``/``key`` are this account's (constant-time)."""
        return self.auth.check_account_key(account_name or "", key or "")

    def file_sas_url(self, share: str, path: str, expiry_minutes: int, permission: str = "rl") -> str:
        """A service SAS URL for one file, signed as azure-storage-file-share's generate_file_sas."""
        segments = [s for s in path.replace("\\", "/").split("/") if s]
        for segment in segments:
            validate_segment(segment)
        if not segments:
            raise ValueError("file_sas_url needs a file path inside the share")
        expiry = utc_now().replace(microsecond=0) + datetime.timedelta(minutes=expiry_minutes)
        token = self.auth.generate_sas(share, "/".join(segments), permission, expiry)
        return "{}/{}/{}?{}".format(self.files_url, quote(share), "/".join(quote(s, safe="") for s in segments),
                                    token)

    # ---------------------------------------------------------------- shares
    def create_share(self, name: str, quota: Optional[int] = None, metadata: Optional[dict] = None) -> Share:
        validate_share_name(name)
        now = utc_now()
        share = Share(name, now.isoformat(), new_etag(), http_date(now.timestamp()), quota or DEFAULT_QUOTA_GIB,
                      dict(metadata or {}))
        with self._lock:
            if name in self._shares:
                raise err.share_already_exists()
            path = self.root / name
            if path.exists():  # leftovers of a share deleted while a file was busy
                shutil.rmtree(path, ignore_errors=True)
            path.mkdir(parents=True, exist_ok=True)
            self.store.execute("INSERT INTO file_shares (name, created, etag, last_modified, quota, metadata) "
                               "VALUES (?, ?, ?, ?, ?, ?)", (name, share.created, share.etag, share.last_modified,
                                                              share.quota, json.dumps(share.metadata)))
            self._shares[name] = share
        return share

    def get_share(self, name: str) -> Share:
        with self._lock:
            share = self._shares.get(name)
        if share is None:
            raise err.ShareNotFound(name)
        return share

    def update_share(self, name: str, quota: Optional[int] = None, metadata: Optional[dict] = None) -> Share:
        with self._lock:
            share = self.get_share(name)
            if quota is not None:
                share.quota = quota
            if metadata is not None:
                share.metadata = dict(metadata)
            share.etag, share.last_modified = new_etag(), http_date(time.time())
            self.store.execute("UPDATE file_shares SET etag = ?, last_modified = ?, quota = ?, metadata = ? "
                               "WHERE name = ?", (share.etag, share.last_modified, share.quota,
                                                  json.dumps(share.metadata), name))
        return share

    def delete_share(self, name: str) -> None:
        with self._lock:
            self.get_share(name)
            with self.store.transaction():
                self.store.execute("DELETE FROM file_shares WHERE name = ?", (name,))
                self.store.execute("DELETE FROM file_properties WHERE share = ?", (name,))
            del self._shares[name]
            self._real_roots.pop(name, None)
        shutil.rmtree(self.root / name, ignore_errors=True)

    def list_shares(self, prefix: str = "", marker: str = "", max_results: Optional[int] = None
                    ) -> tuple[list[Share], str]:
        """A page of shares in name order and the marker of the next page ('' when none)."""
        with self._lock:
            names = sorted(n for n in self._shares if n.startswith(prefix or "") and n >= (marker or ""))
            shares = [self._shares[n] for n in names]
        return _page(shares, max_results, lambda s: s.name)

    def share_usage_bytes(self, name: str) -> int:
        total = 0
        for dirpath, _, filenames in os.walk(self.share_path(name)):
            for filename in filenames:
                try:
                    total += os.lstat(os.path.join(dirpath, filename)).st_size
                except OSError:
                    pass
        return total

    # ---------------------------------------------------------------- paths
    def _locate(self, share: str, segments: list[str], parent: bool = False) -> tuple[str, str, str]:
        """(share's real root, the path as named, its real path), checked to be inside the share.

        ``parent`` also checks the real path of the parent directory: operations that act on
        the named entry itself (create, delete) need it; reads and writes of an existing file
        use the real path only.
        """
        root = self._real_root(share)
        if not segments:
            return root, root, root
        for segment in segments:
            validate_segment(segment)
        if parent and len(segments) > 1:
            parent_real = os.path.realpath(os.path.join(root, *segments[:-1]))
            _check_inside(root, parent_real)
            named = os.path.join(parent_real, segments[-1])
        else:
            named = os.path.join(root, *segments)
        real = os.path.realpath(named)
        _check_inside(root, real)
        return root, named, real

    def _real_root(self, share: str) -> str:
        path = self.share_path(share)
        real = self._real_roots.get(share)
        if real is None:
            real = self._real_roots[share] = os.path.realpath(path)
        return real

    def _rel(self, segments: list[str]) -> str:
        return "/".join(segments)

    @contextmanager
    def _file_lock(self, real: str, exclusive: bool) -> Iterator[None]:
        with self._lock:
            lock = self._file_locks.get(real)
            if lock is None:
                lock = self._file_locks[real] = _SharedExclusiveLock()
            lock.users += 1
        try:
            with (lock.exclusive() if exclusive else lock.shared()):
                yield
        finally:
            with self._lock:
                lock.users -= 1
                if not lock.users:
                    self._file_locks.pop(real, None)

    def stat(self, share: str, segments: list[str]) -> Entry:
        """The file or directory at ``segments`` (the share root for ``[]``)."""
        _, _, real = self._locate(share, segments)
        try:
            st = os.stat(real)
        except (FileNotFoundError, NotADirectoryError):
            raise err.resource_not_found() from None
        name = segments[-1] if segments else ""
        if not (stat_module.S_ISDIR(st.st_mode) or stat_module.S_ISREG(st.st_mode)):
            raise err.resource_not_found()
        return Entry.from_stat(name, st)

    def file_entry(self, share: str, segments: list[str]) -> Entry:
        entry = self.stat(share, segments)
        if entry.is_dir:
            raise err.resource_type_mismatch()
        return entry

    def directory_entry(self, share: str, segments: list[str]) -> Entry:
        entry = self.stat(share, segments)
        if not entry.is_dir:
            raise err.resource_not_found()
        return entry

    # ---------------------------------------------------------------- stored properties
    def properties(self, share: str, segments: list[str], entry: Entry) -> tuple[dict, dict]:
        """(content properties, metadata) stored for this file or directory; empty when the
        file was made outside the endpoint or replaced since (another inode)."""
        row = self.store.query_one("SELECT ino, properties, metadata FROM file_properties WHERE share = ? AND path = ?",
                                   (share, self._rel(segments)))
        if row is None or row["ino"] != entry.ino:
            return {}, {}
        return json.loads(row["properties"]), json.loads(row["metadata"])

    def _save_properties(self, share: str, segments: list[str], ino: int, properties: Optional[dict],
                         metadata: Optional[dict]) -> None:
        """Store properties and/or metadata (None keeps the stored value when the row is current)."""
        path = self._rel(segments)
        with self.store.transaction():
            row = self.store.query_one("SELECT ino, properties, metadata FROM file_properties WHERE share = ? AND "
                                       "path = ?", (share, path))
            current = row is not None and row["ino"] == ino
            if properties is None:
                properties = json.loads(row["properties"]) if current else {}
            if metadata is None:
                metadata = json.loads(row["metadata"]) if current else {}
            if not properties and not metadata:
                self.store.execute("DELETE FROM file_properties WHERE share = ? AND path = ?", (share, path))
            else:
                self.store.execute("INSERT OR REPLACE INTO file_properties (share, path, ino, properties, metadata) "
                                   "VALUES (?, ?, ?, ?, ?)", (share, path, ino, json.dumps(properties),
                                                              json.dumps(metadata)))

    def _forget_properties(self, share: str, segments: list[str]) -> None:
        self.store.execute("DELETE FROM file_properties WHERE share = ? AND path = ?", (share, self._rel(segments)))

    # ---------------------------------------------------------------- directories
    def create_directory(self, share: str, segments: list[str], metadata: Optional[dict] = None) -> Entry:
        validate_new_name(segments[-1])
        _, named, real = self._locate(share, segments, parent=True)
        try:
            os.mkdir(real if os.path.islink(named) else named)
        except FileExistsError:
            raise err.resource_already_exists() from None
        except (FileNotFoundError, NotADirectoryError):
            raise err.parent_not_found() from None
        entry = Entry.from_stat(segments[-1], os.stat(real))
        if metadata:
            self._save_properties(share, segments, entry.ino, {}, metadata)
        else:
            self._forget_properties(share, segments)
        return entry

    def delete_directory(self, share: str, segments: list[str]) -> None:
        _, named, real = self._locate(share, segments, parent=True)
        self.directory_entry(share, segments)
        try:
            if os.path.islink(named):
                if os.listdir(real):
                    raise err.directory_not_empty()
                os.unlink(named)
            else:
                os.rmdir(named)
        except FileNotFoundError:
            raise err.resource_not_found() from None
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                raise err.directory_not_empty() from None
            raise
        self._forget_properties(share, segments)

    def set_metadata(self, share: str, segments: list[str], metadata: dict, directory: bool) -> Entry:
        entry = self.directory_entry(share, segments) if directory else self.file_entry(share, segments)
        self._save_properties(share, segments, entry.ino, None, metadata)
        return entry

    def list_directory(self, share: str, segments: list[str], prefix: str = "", marker: str = "",
                       max_results: Optional[int] = None) -> tuple[list[Entry], str]:
        """A page of the directory's entries in name order and the next marker ('' when none).
        Entries that are neither files nor directories, or whose links leave the share, are left out."""
        root, _, real = self._locate(share, segments)
        self.directory_entry(share, segments)
        entries = []
        with os.scandir(real) as listing:
            for item in listing:
                name = item.name
                if prefix and not name.startswith(prefix):
                    continue
                if marker and name < marker:
                    continue
                try:
                    if item.is_symlink():
                        target = os.path.realpath(item.path)
                        if not _inside(root, target):
                            continue
                    st = item.stat()
                except OSError:
                    continue
                if stat_module.S_ISDIR(st.st_mode) or stat_module.S_ISREG(st.st_mode):
                    entries.append(Entry.from_stat(name, st))
        entries.sort(key=lambda e: e.name)
        return _page(entries, max_results, lambda e: e.name)

    # ---------------------------------------------------------------- files
    def create_file(self, share: str, segments: list[str], size: int, properties: Optional[dict] = None,
                    metadata: Optional[dict] = None) -> Entry:
        """Create or replace the file with ``size`` zero bytes (ranges then fill it)."""
        validate_new_name(segments[-1])
        if not 0 <= size <= MAX_FILE_SIZE:
            raise err.invalid_header_value("x-ms-content-length", str(size), "0 to 4 TiB")
        _, named, real = self._locate(share, segments, parent=True)
        with self._file_lock(real, exclusive=True):
            try:
                fd = os.open(real, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
            except (FileNotFoundError, NotADirectoryError):
                raise err.parent_not_found() from None
            except IsADirectoryError:
                raise err.resource_type_mismatch() from None
            except OSError as exc:
                raise _os_error(exc) from None
            try:
                if not stat_module.S_ISREG(os.fstat(fd).st_mode):
                    raise err.resource_type_mismatch()
                os.ftruncate(fd, 0)
                os.ftruncate(fd, size)
                entry = Entry.from_stat(segments[-1], os.fstat(fd))
            finally:
                os.close(fd)
            self._save_properties(share, segments, entry.ino, properties or {}, metadata or {})
        return entry

    def write_range(self, share: str, segments: list[str], offset: int, length: int, body=None,
                    content_md5: Optional[bytes] = None) -> Entry:
        """Write ``length`` bytes read from ``body.readinto`` at ``offset`` (``body`` None: clear the
        range to zeros). Many ranges of one file may be written at once, in any order."""
        _, _, real = self._locate(share, segments)
        with self._file_lock(real, exclusive=False):
            fd = _open_existing(real, os.O_WRONLY)
            try:
                st = os.fstat(fd)
                if not stat_module.S_ISREG(st.st_mode):
                    raise err.resource_type_mismatch()
                if offset + length > st.st_size:
                    raise err.invalid_range(st.st_size)
                if body is None:
                    _write_zeros(fd, offset, length)
                elif content_md5 is not None:  # check the whole range before writing any of it
                    with self._buffers.buffer() as buf:
                        view = buf[:length]
                        _read_exactly(body, view)
                        if hashlib.md5(view).digest() != content_md5:
                            raise err.md5_mismatch()
                        pwrite_all(fd, view, offset)
                        del view
                elif not (hasattr(body, "copy_to_file") and body.copy_to_file(fd, offset, length)):
                    # write each piece as it arrives, overlapping the network and the disk
                    with self._buffers.buffer() as buf:
                        done = 0
                        while done < length:
                            view = buf[:min(STREAM_CHUNK, length - done)]
                            _read_exactly(body, view)
                            pwrite_all(fd, view, offset + done)
                            done += len(view)
                        del view
                # A fine-grained modification time, so that every write changes the ETag.
                os.utime(fd, ns=(st.st_atime_ns, time.time_ns()))
                return Entry.from_stat(segments[-1], os.fstat(fd))
            finally:
                os.close(fd)

    def resize_file(self, share: str, segments: list[str], size: int) -> Entry:
        if not 0 <= size <= MAX_FILE_SIZE:
            raise err.invalid_header_value("x-ms-content-length", str(size), "0 to 4 TiB")
        _, _, real = self._locate(share, segments)
        with self._file_lock(real, exclusive=True):
            fd = _open_existing(real, os.O_WRONLY)
            try:
                os.ftruncate(fd, size)
                os.utime(fd, ns=(os.fstat(fd).st_atime_ns, time.time_ns()))
                return Entry.from_stat(segments[-1], os.fstat(fd))
            finally:
                os.close(fd)

    def set_file_properties(self, share: str, segments: list[str], properties: dict) -> Entry:
        entry = self.file_entry(share, segments)
        self._save_properties(share, segments, entry.ino, properties, None)
        return entry

    def open_file(self, share: str, segments: list[str]) -> tuple[int, Entry]:
        """An fd open for reading and the file's entry from that same fd; the caller closes it."""
        _, _, real = self._locate(share, segments)
        fd = _open_existing(real, os.O_RDONLY)
        try:
            st = os.fstat(fd)
            if not stat_module.S_ISREG(st.st_mode):
                raise err.resource_type_mismatch()
            return fd, Entry.from_stat(segments[-1], st)
        except BaseException:
            os.close(fd)
            raise

    def delete_file(self, share: str, segments: list[str]) -> None:
        _, named, real = self._locate(share, segments, parent=True)
        self.file_entry(share, segments)
        with self._file_lock(real, exclusive=True):
            try:
                os.unlink(named)
            except (FileNotFoundError, NotADirectoryError):
                raise err.resource_not_found() from None
            except IsADirectoryError:
                raise err.resource_type_mismatch() from None
        self._forget_properties(share, segments)


# ---------------------------------------------------------------- helpers

def _inside(root: str, real: str) -> bool:
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def _check_inside(root: str, real: str) -> None:
    if not _inside(root, real):
        raise err.invalid_uri("The path leaves the share (through '..' or a symbolic link).")


def _page(items: list, max_results: Optional[int], key) -> tuple[list, str]:
    if max_results is not None and len(items) > max_results:
        return items[:max_results], key(items[max_results])
    return items, ""


def _os_error(exc: OSError) -> err.StorageError:
    if exc.errno == errno.ELOOP:
        return err.invalid_uri("The path is a symbolic link that changed while it was used.")
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return err.resource_not_found()
    if exc.errno == errno.EISDIR:
        return err.resource_type_mismatch()
    raise exc


def _open_existing(real: str, flags: int) -> int:
    try:
        return os.open(real, flags | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise _os_error(exc) from None


def _read_exactly(body, view: memoryview) -> None:
    filled, total = 0, len(view)
    while filled < total:
        n = body.readinto(view[filled:])
        if not n:
            raise err.incomplete_body()
        filled += n


def pwrite_all(fd: int, data, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view, offset = view[n:], offset + n


def _write_zeros(fd: int, offset: int, length: int) -> None:
    while length > 0:
        n = os.pwrite(fd, _ZEROS[:min(length, len(_ZEROS))], offset)
        offset += n
        length -= n
