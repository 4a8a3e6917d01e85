"""The part of the Blob endpoint Azure ML uses: the workspace's containers, SAS for uploads, and the files a
job reads (its code and data) and writes (its logs and outputs). A narrow adapter over the Blob backend."""
from __future__ import annotations

import base64
import datetime
import hashlib
import os
import stat
from pathlib import Path
from typing import Iterator, Optional
from urllib.parse import urlsplit

from ..core.paths import PathOutsideRoot, inside
from ..core import public_urls

BLOB_SUFFIX_HOST = "core.localhost"  # blob hosts are <account>.blob.core.localhost (see batchai_quickstart)


class WorkspaceStorage:
    def __init__(self, blob_backend, account_name: str, account_key: str, blob_url: str) -> None:
        self._blob = blob_backend
        self.account_name = account_name
        self.account_key = account_key
        port = urlsplit(blob_url).port
        self.suffix = "{}:{}".format(BLOB_SUFFIX_HOST, port)  # what azure-ai-ml calls the storage endpoint
        self._local_account_url = "https://{}.blob.{}".format(account_name, self.suffix)

    @property
    def account_url(self) -> str:
        """Host-style, as azure-ai-ml builds it: on ``core.windows.net`` for requests through the proxy."""
        return public_urls.blob_account(self._local_account_url, self.account_name)

    # ---- containers ---------------------------------------------------------------------------

    def ensure_container(self, name: str) -> None:
        try:
            self._blob.get_container(name)
        except LookupError:  # ContainerNotFound
            self._blob.create_container(name, {}, None)

    def delete_container(self, name: str) -> None:
        try:
            self._blob.delete_container(name)
        except LookupError:  # already gone
            pass

    def container_url(self, container: str) -> str:
        return "{}/{}".format(self.account_url, container)

    def container_sas(self, container: str, permission: str = "racwdl", hours: int = 1) -> str:
        expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=hours)
        return self._blob.auth.generate_sas(container, None, permission, expiry)

    def parse_url(self, url: str) -> tuple:
        """(container, path) of a host-style blob URL of this account."""
        parts = urlsplit(url)
        container, _, path = parts.path.lstrip("/").partition("/")
        return container, path

    # ---- reading --------------------------------------------------------------------------------

    def names(self, container: str, prefix: str) -> Iterator[str]:
        marker = ""
        while True:
            items, marker = self._blob.list_blobs(container, prefix, "", marker, None)
            for item in items:
                yield item.name
            if not marker:
                return

    def download_prefix(self, container: str, prefix: str, destination: Path) -> int:
        """Copy every blob under ``prefix`` to ``destination`` (relative names kept); returns the count.
        Names that would leave ``destination`` are refused, as on a real node's mount."""
        count = 0
        for name in list(self.names(container, prefix)):
            try:
                target = inside(destination, name[len(prefix):].lstrip("/"))
            except PathOutsideRoot:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, _blob = self._blob.open_blob(container, name)
            with os.fdopen(fd, "rb") as source, open(target, "wb") as out:
                while True:
                    chunk = source.read(1 << 20)
                    if not chunk:
                        break
                    out.write(chunk)
            count += 1
        return count

    # ---- writing --------------------------------------------------------------------------------

    def upload_file(self, container: str, name: str, path: Path) -> None:
        """Upload one regular file; a link (which a job may have put in its place) is refused (OSError)."""
        fd = os.open(str(path), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as source:
            if not stat.S_ISREG(os.fstat(source.fileno()).st_mode):
                raise OSError("{} is not a regular file".format(path.name))
            self.write(container, name, source)

    def write_bytes(self, container: str, name: str, data: bytes) -> None:
        import io

        self.write(container, name, io.BytesIO(data))

    def write(self, container: str, name: str, source, metadata: Optional[dict] = None) -> None:
        from ..blob.models import Conditions

        def write(fd: int) -> tuple:
            digest, size = hashlib.md5(), 0
            while True:
                chunk = source.read(1 << 20)
                if not chunk:
                    break
                os.write(fd, chunk)
                digest.update(chunk)
                size += len(chunk)
            return size, base64.b64encode(digest.digest()).decode()

        self._blob.put_blob(container, name, write, {"x-ms-blob-content-type": "application/octet-stream"},
                            metadata or {}, Conditions())

    def upload_directory(self, directory: Path, container: str, prefix: str) -> int:
        """Upload the regular files under ``directory``; links are not followed (neither to files nor to
        directories), so a job cannot make the emulator upload what lies outside its own directories."""
        count = 0
        for top, dirs, files in os.walk(str(directory), followlinks=False):
            dirs.sort()
            for filename in sorted(files):
                path = Path(top, filename)
                if path.is_symlink() or not path.is_file():
                    continue
                try:
                    self.upload_file(container, prefix + path.relative_to(directory).as_posix(), path)
                except OSError:  # replaced by a link (or removed) since the walk saw it
                    continue
                count += 1
        return count
