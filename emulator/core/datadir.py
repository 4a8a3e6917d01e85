"""The data directory: private to its owner, and used by one emulator at a time.

It holds the account key, the bearer token, job and setup-task secrets (in ``emulator.db``) and
the TLS key, so it is 0700 and the files the emulator keeps at its top level are 0600; an
existing directory from an older emulator is put right on start. A second emulator on the same
directory would run start-up recovery and kill the first one's jobs, so each takes an exclusive
``flock`` on ``emulator.lock`` (released by the kernel when the holder exits, even by kill -9).
"""
from __future__ import annotations

import errno
import fcntl
import os
import stat
from pathlib import Path

LOCK_NAME = "emulator.lock"


class DataDirInUse(OSError):
    """Another emulator holds the data directory."""


class DataDirLock:
    """The open, locked ``emulator.lock``; ``release()`` (or process exit) frees the directory."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # closing the only descriptor drops the flock
            self._fd = -1


def make_private(root: Path) -> None:
    """Create ``root`` 0700 (parents as needed) and make what the emulator keeps in it owner-only."""
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(root, 0o700)
    with os.scandir(root) as entries:
        for entry in entries:
            try:
                mode = entry.stat(follow_symlinks=False).st_mode
            except OSError:
                continue
            if stat.S_ISDIR(mode):
                os.chmod(entry.path, 0o700)
            elif stat.S_ISREG(mode):
                os.chmod(entry.path, 0o600)


def create_private_file(path: Path) -> None:
    """Make sure ``path`` exists as an owner-only file (before SQLite opens it, so that it and its
    ``-wal``/``-shm`` files, which SQLite creates with the database's mode, are 0600)."""
    fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    os.fchmod(fd, 0o600)
    os.close(fd)


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path``, owner-only, replacing it atomically (keys and certificates)."""
    temporary = path.with_name(path.name + ".new")
    fd = os.open(str(temporary), os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(temporary, path)


def lock(root: Path) -> DataDirLock:
    """Take the data directory or raise DataDirInUse naming the holder's pid."""
    path = root / LOCK_NAME
    fd = os.open(str(path), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise DataDirInUse("the data directory {} is in use by another emulator (pid {}); stop it or use "
                               "another --data-dir".format(root, holder)) from None
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, "{}\n".format(os.getpid()).encode(), 0)
    return DataDirLock(fd)
