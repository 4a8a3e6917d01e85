"""The one way a path is built from a request value: ``inside(root, *parts)``.

Names are checked against each service's naming rule at its API (batchai/validation.py,
azureml/names.py); this is the second line behind those checks. It resolves the joined path (links
and ``..`` included) and refuses it unless it lies strictly below ``root``, so that no request value
can make the emulator write, read or delete outside the directory meant for it.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Union

PathLike = Union[str, os.PathLike]


class PathOutsideRoot(ValueError):
    """A path built from request values would leave its root (or be the root itself)."""


def inside(root: PathLike, *parts: str, follow_last: bool = True) -> Path:
    """``root/part/...``; raises PathOutsideRoot unless, resolved, it stays strictly below ``root``.

    Every part is one or more names joined by ``/``: an absolute part, an empty name, ``.``, ``..``, NUL,
    or a link that points out of ``root`` are refused. ``follow_last=False`` resolves all but the last
    component, for a path that is itself a link the caller replaces (a mount point). The result is
    ``root`` joined with ``parts`` (not resolved, so that it reads like the paths built beside it).
    """
    base = Path(root).resolve()
    if not parts:
        raise PathOutsideRoot("no path below {}".format(base))
    for part in parts:
        # "." and ".." are refused even where they would stay below the root: a job named "." would
        # otherwise name the directory of every job of its workspace.
        if not isinstance(part, str) or "\0" in part or any(
                segment in ("", ".", "..") for segment in part.split("/")):
            raise PathOutsideRoot("{!r} is not a relative path of named entries".format(part))
    joined = base.joinpath(*parts)
    resolved = joined.resolve() if follow_last else joined.parent.resolve() / joined.name
    if base not in resolved.parents:
        raise PathOutsideRoot("{} is not inside {}".format("/".join(parts), base))
    return Path(root).joinpath(*parts)


def is_link_free(root: PathLike, path: PathLike) -> bool:
    """True when ``path`` is below ``root`` and no component from ``root`` down to ``path`` itself is a link
    (what an upload checks before it reads a directory a job could have replaced)."""
    base, current = Path(root), Path(path)
    try:
        relative = current.relative_to(base)
    except ValueError:
        return False
    walked = base
    for part in relative.parts:
        walked = walked / part
        if walked.is_symlink():
            return False
    return True
