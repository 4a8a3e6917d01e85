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

from ..core.paths import PathOutsideRoot, inside
from ..core import public_urls
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
        path = inside(self.root, share)
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
        return "{}/{}/{}?{}".format(public_urls.files_account(self.files_url, self.account_name), quote(share), "/".join(quote(s, safe="") for s in segments),
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
            path = inside(self.root, name)
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
        shutil.rmtree(inside(self.root, name), ignore_errors=True)

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
    def _resolve(self, share: str, segments: list[str], follow_last: bool = True) -> "_Resolved":
        """Walk ``segments`` from the share's root one component at a time, never letting the kernel
        follow a link: each component is opened with O_NOFOLLOW relative to its parent's descriptor,
        and a symbolic link is read and its target walked the same way (from the root when absolute;
        refused when it leaves the share). So a link swapped in mid-request can never lead outside.

        Returns the parent directory's descriptor and the last name (not opened: the caller opens it
        with O_NOFOLLOW relative to the parent). Missing or non-directory intermediate components
        raise FileNotFoundError/NotADirectoryError; the caller closes the result.
        """
        for segment in segments:
            validate_segment(segment)
        root = self._real_root(share)
        stack = [os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)]
        names: list[str] = []
        pending = list(reversed(segments))  # a stack: the next component is last
        links = 0
        try:
            while pending:
                name = pending.pop()
                if name in ("", "."):
                    continue
                if name == "..":
                    if len(stack) == 1:
                        raise err.invalid_uri("The path leaves the share (through '..' or a symbolic link).")
                    os.close(stack.pop())
                    names.pop()
                    continue
                last = not pending
                if last and not follow_last:
                    return _Resolved(stack.pop(), name, names + [name])
                try:
                    st = os.stat(name, dir_fd=stack[-1], follow_symlinks=False)
                except FileNotFoundError:
                    if last:
                        return _Resolved(stack.pop(), name, names + [name])
                    raise
                if stat_module.S_ISLNK(st.st_mode):
                    links += 1
                    if links > _MAX_LINKS:
                        raise err.invalid_uri("Too many levels of symbolic links.")
                    target = os.readlink(name, dir_fd=stack[-1])
                    if target.startswith("/"):
                        parts = _components_inside(root, target)
                        if parts is None:
                            raise err.invalid_uri("The path leaves the share (through '..' or a symbolic link).")
                        while len(stack) > 1:
                            os.close(stack.pop())
                        names = []
                    else:
                        parts = target.split("/")
                    pending.extend(reversed(parts))
                    continue
                if last:
                    return _Resolved(stack.pop(), name, names + [name])
                if not stat_module.S_ISDIR(st.st_mode):
                    raise NotADirectoryError(name)
                stack.append(os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                                     dir_fd=stack[-1]))
                names.append(name)
            return _Resolved(stack.pop(), None, names)  # the share root, or a walk that ended in '..'
        finally:
            for fd in stack:
                os.close(fd)

    @contextmanager
    def _located(self, share: str, segments: list[str], follow_last: bool = True,
                 missing=err.resource_not_found) -> Iterator["_Resolved"]:
        """``_resolve`` as a context manager; a missing parent becomes ``missing()``."""
        try:
            resolved = self._resolve(share, segments, follow_last)
        except (FileNotFoundError, NotADirectoryError):
            raise missing() from None
        except OSError as exc:
            raise _os_error(exc) from None
        try:
            yield resolved
        finally:
            resolved.close()

    def _real_root(self, share: str) -> str:
        path = self.share_path(share)
        real = self._real_roots.get(share)
        if real is None:
            real = self._real_roots[share] = os.path.realpath(path)
        return real

    def _rel(self, segments: list[str]) -> str:
        return "/".join(segments)

    @contextmanager
    def _file_lock(self, key: str, exclusive: bool) -> Iterator[None]:
        with self._lock:
            lock = self._file_locks.get(key)
            if lock is None:
                lock = self._file_locks[key] = _SharedExclusiveLock()
            lock.users += 1
        try:
            with (lock.exclusive() if exclusive else lock.shared()):
                yield
        finally:
            with self._lock:
                lock.users -= 1
                if not lock.users:
                    self._file_locks.pop(key, None)

    def _open(self, share: str, segments: list[str], flags: int) -> tuple[int, os.stat_result, "_Resolved"]:
        """Open an existing regular file (never a FIFO, device or socket: those are refused without
        blocking, and a link swapped in after the walk fails with ELOOP)."""
        with self._located(share, segments) as where:
            fd = _open_at(where, flags)
        try:
            st = os.fstat(fd)
            if not stat_module.S_ISREG(st.st_mode):
                raise err.resource_type_mismatch() if stat_module.S_ISDIR(st.st_mode) else err.resource_not_found()
            os.set_blocking(fd, True)
            return fd, st, where
        except BaseException:
            os.close(fd)
            raise

    def stat(self, share: str, segments: list[str]) -> Entry:
        """The file or directory at ``segments`` (the share root for ``[]``)."""
        return Entry.from_stat(segments[-1] if segments else "", self._stat(share, segments))

    def _stat(self, share: str, segments: list[str]) -> os.stat_result:
        with self._located(share, segments) as where:
            try:
                st = where.stat()
            except (FileNotFoundError, NotADirectoryError):
                raise err.resource_not_found() from None
        if not (stat_module.S_ISDIR(st.st_mode) or stat_module.S_ISREG(st.st_mode)):
            raise err.resource_not_found()  # links swapped in, FIFOs, devices: nothing the service shows
        return st

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
        with self._located(share, segments, missing=err.parent_not_found) as where:
            if where.name is None:
                raise err.resource_already_exists()
            try:
                os.mkdir(where.name, dir_fd=where.parent_fd)
            except FileExistsError:
                raise err.resource_already_exists() from None
            except OSError as exc:
                raise _os_error(exc) from None
            entry = Entry.from_stat(segments[-1], where.stat())
        if metadata:
            self._save_properties(share, segments, entry.ino, {}, metadata)
        else:
            self._forget_properties(share, segments)
        return entry

    def delete_directory(self, share: str, segments: list[str]) -> None:
        self.directory_entry(share, segments)
        with self._located(share, segments, follow_last=False) as where:
            try:
                if stat_module.S_ISLNK(where.stat().st_mode):
                    if self.list_directory(share, segments)[0]:
                        raise err.directory_not_empty()
                    os.unlink(where.name, dir_fd=where.parent_fd)
                else:
                    os.rmdir(where.name, dir_fd=where.parent_fd)
            except FileNotFoundError:
                raise err.resource_not_found() from None
            except OSError as exc:
                if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                    raise err.directory_not_empty() from None
                raise _os_error(exc) from None
        self._forget_properties(share, segments)

    def set_metadata(self, share: str, segments: list[str], metadata: dict, directory: bool) -> Entry:
        entry = self.directory_entry(share, segments) if directory else self.file_entry(share, segments)
        self._save_properties(share, segments, entry.ino, None, metadata)
        return entry

    def list_directory(self, share: str, segments: list[str], prefix: str = "", marker: str = "",
                       max_results: Optional[int] = None) -> tuple[list[Entry], str]:
        """A page of the directory's entries in name order and the next marker ('' when none).

        Only files and directories are listed: FIFOs, sockets and devices are left out, and so are
        names that are not UTF-8 (no client could name them), dangling links and links that leave
        the share; a link inside the share is listed with its target's size and times.
        """
        with self._located(share, segments) as where:
            try:
                fd = _open_at(where, os.O_RDONLY | os.O_DIRECTORY)
            except err.StorageError:
                raise err.resource_not_found() from None
        entries = []
        with os.scandir(fd) as listing:  # closes fd
            for item in listing:
                name = item.name
                if (prefix and not name.startswith(prefix)) or (marker and name < marker) or not is_utf8(name):
                    continue
                try:
                    st = item.stat(follow_symlinks=False)
                    if stat_module.S_ISLNK(st.st_mode):
                        st = self._stat(share, segments + [name])
                except (OSError, err.StorageError):
                    continue
                if stat_module.S_ISDIR(st.st_mode) or stat_module.S_ISREG(st.st_mode):
                    entries.append(Entry.from_stat(name, st))
        entries.sort(key=lambda e: e.name)
        return _page(entries, max_results, lambda e: e.name)

    def unlisted_names(self, share: str, segments: list[str]) -> list[str]:
        """Names in the directory (and below) that are not UTF-8 and so are never listed or served,
        shown with their undecodable bytes as \\xNN, for a job's execution log."""
        found = []
        try:
            root = self._real_root(share)
        except LookupError:
            return found
        try:
            top = str(inside(root, *segments)) if segments else root
        except PathOutsideRoot:
            return found
        seen = 0
        for directory, dirnames, filenames in os.walk(top):
            for name in dirnames + filenames:
                if not is_utf8(name):
                    found.append(os.path.relpath(os.path.join(directory, name), top)
                                 .encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace"))
            dirnames[:] = [d for d in dirnames if is_utf8(d)]
            seen += len(dirnames) + len(filenames)
            if seen > _UNLISTED_SCAN_LIMIT or len(found) >= _UNLISTED_REPORT_LIMIT:
                break  # a note, not an inventory: the first ones are enough to say what happened
        return sorted(found)[:_UNLISTED_REPORT_LIMIT]

    # ---------------------------------------------------------------- files
    def create_file(self, share: str, segments: list[str], size: int, properties: Optional[dict] = None,
                    metadata: Optional[dict] = None) -> Entry:
        """Create or replace the file with ``size`` zero bytes (ranges then fill it)."""
        validate_new_name(segments[-1])
        if not 0 <= size <= MAX_FILE_SIZE:
            raise err.invalid_header_value("x-ms-content-length", str(size), "0 to 4 TiB")
        with self._located(share, segments, missing=err.parent_not_found) as where:
            if where.name is None:
                raise err.resource_type_mismatch()
            with self._file_lock(share + "/" + where.key, exclusive=True):
                try:
                    fd = _open_at(where, os.O_WRONLY | os.O_CREAT, missing=err.parent_not_found)
                except OSError as exc:
                    raise _os_error(exc) from None
                try:
                    if not stat_module.S_ISREG(os.fstat(fd).st_mode):
                        raise err.resource_type_mismatch()
                    os.set_blocking(fd, True)
                    os.ftruncate(fd, 0)
                    os.ftruncate(fd, size)
                    entry = Entry.from_stat(segments[-1], os.fstat(fd))
                except OSError as exc:
                    raise _write_error(exc) from None
                finally:
                    os.close(fd)
                self._save_properties(share, segments, entry.ino, properties or {}, metadata or {})
        return entry

    def write_range(self, share: str, segments: list[str], offset: int, length: int, body=None,
                    content_md5: Optional[bytes] = None) -> Entry:
        """Write ``length`` bytes read from ``body.readinto`` at ``offset`` (``body`` None: clear the
        range to zeros). Many ranges of one file may be written at once, in any order.

        All or nothing: the whole body is received (and its MD5 checked) before the file is touched,
        and the range's disk space is reserved before any byte is written, so a short body, a full
        disk or a quota leaves the file as it was, and the client gets its error at once.
        """
        fd, st, where = self._open(share, segments, os.O_WRONLY)
        try:
            with self._file_lock(share + "/" + where.key, exclusive=False):
                if offset + length > st.st_size:
                    raise err.invalid_range(st.st_size)
                if body is None:
                    _reserve(fd, offset, length)
                    _write_zeros(fd, offset, length)
                else:
                    with self._buffers.buffer() as buf:
                        view = buf[:length]
                        _read_exactly(body, view)
                        if content_md5 is not None and hashlib.md5(view).digest() != content_md5:
                            raise err.md5_mismatch()
                        _reserve(fd, offset, length)
                        try:
                            pwrite_all(fd, view, offset)
                        except OSError as exc:
                            raise _write_error(exc) from None
                        del view
                # A fine-grained modification time, so that every write changes the ETag.
                os.utime(fd, ns=(st.st_atime_ns, time.time_ns()))
                return Entry.from_stat(segments[-1], os.fstat(fd))
        finally:
            os.close(fd)

    def resize_file(self, share: str, segments: list[str], size: int) -> Entry:
        if not 0 <= size <= MAX_FILE_SIZE:
            raise err.invalid_header_value("x-ms-content-length", str(size), "0 to 4 TiB")
        fd, _, where = self._open(share, segments, os.O_WRONLY)
        try:
            with self._file_lock(share + "/" + where.key, exclusive=True):
                try:
                    os.ftruncate(fd, size)
                except OSError as exc:
                    raise _write_error(exc) from None
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
        fd, st, _ = self._open(share, segments, os.O_RDONLY)
        return fd, Entry.from_stat(segments[-1], st)

    def delete_file(self, share: str, segments: list[str]) -> None:
        self.file_entry(share, segments)
        with self._located(share, segments, follow_last=False) as where:
            with self._file_lock(share + "/" + where.key, exclusive=True):
                try:
                    if stat_module.S_ISDIR(where.stat().st_mode):
                        raise err.resource_type_mismatch()
                    os.unlink(where.name, dir_fd=where.parent_fd)
                except (FileNotFoundError, NotADirectoryError):
                    raise err.resource_not_found() from None
                except IsADirectoryError:
                    raise err.resource_type_mismatch() from None
        self._forget_properties(share, segments)


# ---------------------------------------------------------------- helpers

_MAX_LINKS = 40  # as the kernel's ELOOP limit
_UNLISTED_SCAN_LIMIT = 100_000
_UNLISTED_REPORT_LIMIT = 20


class _Resolved:
    """Where a walk ended: the parent directory (an O_PATH descriptor) and the last name (None: the
    directory itself, e.g. the share root); ``key`` names the resolved path for per-file locks."""

    def __init__(self, parent_fd: int, name: Optional[str], parts: list[str]) -> None:
        self.parent_fd, self.name, self.key = parent_fd, name, "/".join(parts)

    def stat(self) -> os.stat_result:
        if self.name is None:
            return os.fstat(self.parent_fd)
        return os.stat(self.name, dir_fd=self.parent_fd, follow_symlinks=False)

    def close(self) -> None:
        if self.parent_fd >= 0:
            os.close(self.parent_fd)
            self.parent_fd = -1


def _open_at(where: _Resolved, flags: int, missing=err.resource_not_found) -> int:
    """Open the last name of a walk without following a link there and without blocking (a FIFO)."""
    flags |= os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
    try:
        if where.name is None:
            return os.open(".", flags, dir_fd=where.parent_fd)
        return os.open(where.name, flags, 0o644, dir_fd=where.parent_fd)
    except FileNotFoundError:
        raise missing() from None
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # a FIFO without a reader, a socket
            raise err.resource_not_found() from None
        raise _os_error(exc) from None


def _components_inside(root: str, target: str) -> Optional[list[str]]:
    """An absolute link target as components below ``root``, or None when it points elsewhere. A target
    reached through other links (a node's mount of this share) counts by where it really leads; the
    components are then walked again, link by link."""
    for candidate in (os.path.normpath(target), os.path.realpath(target)):
        if _inside(root, candidate):
            return [part for part in candidate[len(root):].split("/") if part]
    return None


def is_utf8(name: str) -> bool:
    """False for a name read from disk with undecodable bytes (surrogate escapes)."""
    try:
        name.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def _inside(root: str, real: str) -> bool:
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def _page(items: list, max_results: Optional[int], key) -> tuple[list, str]:
    if max_results is not None and len(items) > max_results:
        return items[:max_results], key(items[max_results])
    return items, ""


def _os_error(exc: OSError) -> err.StorageError:
    if exc.errno == errno.ELOOP:
        return err.invalid_uri("The path is a symbolic link that changed while it was used.")
    if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ENXIO):
        return err.resource_not_found()
    if exc.errno == errno.EISDIR:
        return err.resource_type_mismatch()
    raise exc


def _write_error(exc: OSError) -> err.StorageError:
    """A failed write, answered at once: a full disk or quota as the service's full share."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return err.share_size_limit_reached()
    raise exc


def _reserve(fd: int, offset: int, length: int) -> None:
    """Allocate the range's blocks before writing, so that a full disk fails before any byte changes."""
    if not length:
        return
    try:
        os.posix_fallocate(fd, offset, length)
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            return  # the file system cannot reserve; the write still reports a full disk at once
        raise _write_error(exc) from None


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
