"""Everything about mounting shares: a share mounted on a node is a symlink
``<mount root>/<relativeMountPath>`` to the share's directory; the same table maps a path written
against a mount root back to (share, path in the share), for listing a job's outputs.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, Optional

from ..core.paths import inside
from .records import (DIRECTORY_MOUNT_FAILED, MOUNT_FAILED, SYNCED_MOUNT_FAILED, DirectoryMount, Failure, SharePaths,
                      ShareMount, SyncedMount)


class MountError(Exception):
    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.details["reason"])
        self.failure = failure


def share_mounts(entries: Optional[Iterable[dict]]) -> tuple:
    """``azureFileShares`` entries (REST shape) as ShareMounts."""
    return tuple(ShareMount(url=entry["azureFileUrl"], account_name=entry.get("accountName"),
                            account_key=(entry.get("credentials") or {}).get("accountKey"),
                            relative_path=entry["relativeMountPath"].strip("/"))
                 for entry in entries or [])


def mount_table(shares: SharePaths, mounts: Iterable[ShareMount]) -> dict:
    """{relative mount path: share name} of the mounts that name a share of this emulator."""
    table = {}
    for mount in mounts:
        try:
            table[mount.relative_path] = shares.share_from_url(mount.url)
        except ValueError:
            pass  # mounting fails later, with a clear error on the node or the job
    return table


def mount_shares(shares: SharePaths, mounts: Iterable[ShareMount], mount_root: Path) -> dict:
    """Mount each share under ``mount_root`` after checking its account name and key; returns the table."""
    table = {}
    for mount in mounts:
        target = mount.relative_path  # shown in a refusal until it is checked

        def failure(reason: str) -> MountError:
            return MountError(Failure(MOUNT_FAILED, {"url": mount.url, "path": str(target), "reason": reason}))

        try:
            target = _mount_point(mount_root, mount.relative_path)
        except ValueError as exc:
            raise failure(str(exc)) from None

        try:
            name = shares.share_from_url(mount.url)
        except ValueError as exc:
            raise failure(str(exc)) from None
        if not shares.check_account_key(mount.account_name, mount.account_key):
            raise failure("mount error(13): Permission denied (wrong storage account name or key)")
        try:
            source = shares.share_path(name)
        except LookupError:
            raise failure("mount error(2): No such file or directory (there is no share '{}')".format(name)) from None
        _link(target, source, failure)
        table[mount.relative_path] = name
    return table


def mount_directories(mounts: Iterable[DirectoryMount], mount_root: Path) -> None:
    """Mount each directory (a file server's export, shared by every node that mounts it) under ``mount_root``."""
    for mount in mounts:
        target = mount.relative_path  # shown in a refusal until it is checked

        def failure(reason: str) -> MountError:
            return MountError(Failure(DIRECTORY_MOUNT_FAILED, {"name": mount.name, "path": str(target),
                                                               "reason": reason}))

        try:
            target = _mount_point(mount_root, mount.relative_path)
        except ValueError as exc:
            raise failure(str(exc)) from None

        if mount.source is None:
            raise failure(mount.missing or "nothing to mount")
        if not mount.source.is_dir():
            raise failure("mount.nfs: access denied by server while mounting (no such directory on the server)")
        _link(target, mount.source, failure)


def fill_synced(mounts: Iterable[SyncedMount], mount_root: Path) -> None:
    """Create each synced mount's directory under ``mount_root`` and fill it (e.g. a Blob container's blobs)."""
    for mount in mounts:
        try:
            target = _mount_point(mount_root, mount.relative_path)
            if target.is_symlink() or (target.exists() and any(target.iterdir())):
                raise ValueError("the mount point exists and is not empty")
            target.mkdir(parents=True, exist_ok=True)
            mount.sync_in(target)
        except (ValueError, LookupError, OSError) as exc:
            raise MountError(Failure(SYNCED_MOUNT_FAILED, {"name": mount.name, "path": str(target),
                                                           "reason": str(exc)})) from None


def drain_synced(mounts: Iterable[SyncedMount], mount_root: Path) -> list:
    """Hand each synced mount's directory back (e.g. upload what changed); execution.log lines."""
    notes = []
    for mount in mounts:
        try:
            target = _mount_point(mount_root, mount.relative_path)
            if mount_root.is_symlink() or target.is_symlink():  # the job replaced it: never followed
                raise ValueError("the mount directory was replaced by a link")
            notes.extend(mount.sync_out(target))
        except (ValueError, LookupError, OSError) as exc:
            notes.append("could not write back {}: {}".format(mount.name, exc))
    return notes


def _mount_point(mount_root: Path, relative_path: str) -> Path:
    """``<mount root>/<relativeMountPath>``, refused (ValueError) unless inside the mount root; the mount
    point itself may be a link (an earlier mount)."""
    return inside(mount_root, relative_path, follow_last=False)


def _link(target: Path, source: Path, failure: Callable[[str], MountError]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_symlink():
        target.unlink()
    elif target.is_dir():
        try:
            target.rmdir()
        except OSError:
            raise failure("the mount point exists and is not empty") from None
    target.symlink_to(source, target_is_directory=True)


def path_parts(path: str) -> list:
    return [part for part in path.split("/") if part and part != "."]


def locate_on_share(path: str, roots: dict) -> Optional[tuple]:
    """Map ``$ROOT/<relative mount path>/rest`` to (share, rest parts). ``roots`` is
    {root variable name: mount table}; both ``$ROOT`` and ``${ROOT}`` are understood."""
    for variable, table in roots.items():
        for form in ("$" + variable, "${" + variable + "}"):
            if path != form and not path.startswith(form + "/"):
                continue
            parts = path_parts(path[len(form):])
            for relative, share in sorted(table.items(), key=lambda item: -len(item[0])):
                mount_parts = path_parts(relative)
                if parts[:len(mount_parts)] == mount_parts:
                    return share, parts[len(mount_parts):]
    return None
