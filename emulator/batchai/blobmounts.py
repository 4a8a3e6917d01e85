"""``mountVolumes.azureBlobFileSystems`` of jobs and clusters, with blobfuse's semantics as a copy:
the container's blobs appear as files under ``<mount root>/<relativeMountPath>`` when the job starts
(job level) or the node is prepared (cluster level), ``a/b.txt`` as ``a/b.txt``; after each job what
was created or changed there is uploaded as block blobs and what was deleted is deleted. It is not
live: others see the writes only once the job has ended, and blobs written meanwhile are not seen.
What was last synced is remembered per mount directory, in memory.

Output directories on such a mount are listed from the container (``listOutputFiles``), with read-only
blob SAS download URLs, as the service listed them. Because the mount is a copy, a running job's own
writes are listed once the job has ended and its files have been uploaded.
"""
from __future__ import annotations

import base64
import datetime
import email.utils
import hashlib
import os
import shutil
from pathlib import Path
from typing import Callable, NamedTuple

from ..blob.models import Conditions
from ..core.paths import PathOutsideRoot, inside
from ..runner.records import SyncedMount

COPY_CHUNK = 1 << 20


class BlobEntry(NamedTuple):
    """One entry of a directory on a blob mount: a blob, or a virtual directory (a name prefix)."""
    name: str                   # the last segment
    blob_name: str              # the whole blob name (directories: the prefix, without its '/')
    is_dir: bool
    size: int = 0
    last_modified: str = ""     # ISO 8601, UTC


class BlobfuseMounts:
    """Turns ``azureBlobFileSystems`` entries into the runner's SyncedMounts over the Blob backend."""

    def __init__(self, blob_backend: Callable[[], object], check_account_key: Callable[[str, str], bool]) -> None:
        self._backend = blob_backend          # looked up when needed (Blob may start after Batch AI)
        self._check_account_key = check_account_key
        self._seen: dict = {}  # {mount directory: {relative name: (size, mtime_ns)} as last synced}

    def mount(self, entry: dict) -> SyncedMount:
        account = entry.get("accountName") or ""
        key = (entry.get("credentials") or {}).get("accountKey") or ""
        container = entry["containerName"]
        name = "blob container {}/{}".format(account, container)
        def sync_in(directory: Path) -> None:
            seen = self._seen.setdefault(str(directory), {})
            seen.clear()
            if not self._check_account_key(account, key):
                raise ValueError("blobfuse: permission denied (wrong storage account name or key)")
            backend = self._backend()
            marker = ""
            while True:
                try:
                    blobs, marker = backend.list_blobs(container, "", "", marker, None)
                except LookupError:  # the Blob backend's ContainerNotFound
                    raise LookupError("blobfuse: there is no container '{}'".format(container)) from None
                for blob in blobs:
                    target = _inside(directory, blob.name)
                    if target is None:
                        continue  # a name no file system can hold (.. or empty segments)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    fd, _ = backend.open_blob(container, blob.name)
                    with os.fdopen(fd, "rb") as source, open(target, "wb") as out:
                        shutil.copyfileobj(source, out, COPY_CHUNK)
                    stat = target.stat()
                    seen[blob.name] = (stat.st_size, stat.st_mtime_ns)
                if not marker:
                    return

        def sync_out(directory: Path) -> list:
            backend = self._backend()
            seen = self._seen.setdefault(str(directory), {})
            present, uploaded = set(), 0
            for path in sorted(p for p in directory.rglob("*") if p.is_file() and not p.is_symlink()):
                relative = path.relative_to(directory).as_posix()
                present.add(relative)
                stat = path.stat()
                if seen.get(relative) == (stat.st_size, stat.st_mtime_ns):
                    continue
                backend.put_blob(container, relative, _file_writer(path), {}, {}, Conditions())
                seen[relative] = (stat.st_size, stat.st_mtime_ns)
                uploaded += 1
            deleted = [relative for relative in seen if relative not in present]
            for relative in deleted:
                try:
                    backend.delete_blob(container, relative, Conditions())
                except LookupError:
                    pass  # already gone
                del seen[relative]
            return ["{}: {} file(s) uploaded, {} deleted after the job (blobfuse emulated as a copy)".format(
                name, uploaded, len(deleted))]

        return SyncedMount(name=name, relative_path=entry["relativeMountPath"].strip("/"), sync_in=sync_in,
                           sync_out=sync_out)

    def list_directory(self, container: str, parts: list) -> list:
        """The BlobEntries of the virtual directory ``parts`` of a container, in name order, as blobfuse
        shows them: ``a/b.txt`` is file ``b.txt`` of directory ``a``. LookupError when the container is gone."""
        prefix = "".join(part + "/" for part in parts)
        backend, entries, marker = self._backend(), [], ""
        while True:
            items, marker = backend.list_blobs(container, prefix, "/", marker, None)
            for item in items:
                if isinstance(item, str):  # a BlobPrefix: "<prefix><name>/"
                    name = item[len(prefix):].rstrip("/")
                    if _inside(Path("."), name) is not None:
                        entries.append(BlobEntry(name, item.rstrip("/"), True))
                    continue
                name = item.name[len(prefix):]
                if _inside(Path("."), name) is not None:  # names no file system can hold are not on the mount
                    entries.append(BlobEntry(name, item.name, False, item.size, _iso(item.last_modified)))
            if not marker:
                return sorted(entries, key=lambda entry: entry.name)

    def download_url(self, container: str, blob_name: str, expiry_minutes: int) -> str:
        """A read-only SAS URL of one blob on the Blob endpoint, valid for ``expiry_minutes``."""
        expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=expiry_minutes)
        return self._backend().blob_sas_url(container, blob_name, "r", expiry)


def _iso(http_date: str) -> str:
    """The Blob service's RFC 1123 Last-Modified as listOutputFiles' ISO 8601 (to the second)."""
    moment = email.utils.parsedate_to_datetime(http_date).astimezone(datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _inside(directory: Path, blob_name: str):
    parts = blob_name.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return None
    try:
        return inside(directory, *parts)
    except PathOutsideRoot:  # a link the job left in the mount directory
        return None


def _file_writer(path: Path) -> Callable[[int], tuple]:
    """A ``write(fd)`` for put_blob that copies ``path``: (size, MD5 base64)."""
    def write(fd: int) -> tuple:
        digest, size = hashlib.md5(), 0
        with open(path, "rb") as source:
            for chunk in iter(lambda: source.read(COPY_CHUNK), b""):
                digest.update(chunk)
                view = memoryview(chunk)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                size += len(chunk)
        return size, base64.b64encode(digest.digest()).decode()
    return write
