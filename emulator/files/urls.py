"""Routing as data for the File service.

Azure Files tells operations apart by the URL's depth (account, share, or a path inside the
share), the ``restype`` and ``comp`` query parameters and the HTTP method, so a row is
``(method, level, restype, comp, handler name, SAS permissions)``. The SAS permission column
lists the letters any one of which a service SAS needs (None: SharedKey only).
"""
from __future__ import annotations

from typing import Optional

from ..core.storage_http import StorageRouter

# level "account": /<account>/            level "share": /<account>/<share>
# level "path":    /<account>/<share>/<dir or file path>
url_paths = [
    # account
    ("GET", "account", None, "list", "list_shares", None),
    ("GET", "account", "service", "properties", "get_service_properties", None),
    ("PUT", "account", "service", "properties", "set_service_properties", None),
    # share
    ("PUT", "share", "share", None, "create_share", None),
    ("GET", "share", "share", None, "get_share_properties", "r"),
    ("HEAD", "share", "share", None, "get_share_properties", "r"),
    ("GET", "share", "share", "metadata", "get_share_properties", "r"),
    ("HEAD", "share", "share", "metadata", "get_share_properties", "r"),
    ("DELETE", "share", "share", None, "delete_share", None),
    ("PUT", "share", "share", "metadata", "set_share_metadata", None),
    ("PUT", "share", "share", "properties", "set_share_properties", None),
    ("GET", "share", "share", "stats", "get_share_stats", None),
    # the share's root directory
    ("GET", "share", "directory", "list", "list_directory", "l"),
    ("GET", "share", "directory", None, "get_directory_properties", "r"),
    ("HEAD", "share", "directory", None, "get_directory_properties", "r"),
    # directories
    ("PUT", "path", "directory", None, "create_directory", "cw"),
    ("GET", "path", "directory", None, "get_directory_properties", "r"),
    ("HEAD", "path", "directory", None, "get_directory_properties", "r"),
    ("GET", "path", "directory", "metadata", "get_directory_properties", "r"),
    ("HEAD", "path", "directory", "metadata", "get_directory_properties", "r"),
    ("DELETE", "path", "directory", None, "delete_directory", "d"),
    ("PUT", "path", "directory", "metadata", "set_directory_metadata", "w"),
    ("GET", "path", "directory", "list", "list_directory", "l"),
    # files
    ("PUT", "path", None, None, "create_file", "cw"),
    ("PUT", "path", None, "range", "put_range", "w"),
    ("PUT", "path", None, "properties", "set_file_properties", "w"),
    ("PUT", "path", None, "metadata", "set_file_metadata", "w"),
    ("GET", "path", None, None, "get_file", "r"),
    ("HEAD", "path", None, None, "get_file_properties", "r"),
    ("GET", "path", None, "metadata", "get_file_properties", "r"),
    ("HEAD", "path", None, "metadata", "get_file_properties", "r"),
    ("GET", "path", None, "rangelist", "list_ranges", "r"),
    ("DELETE", "path", None, None, "delete_file", "d"),
]

#: What the SAS check calls each level (a share-level "directory" row is the root directory).
_RESOURCE_LEVEL = {("account", None): "account", ("share", "share"): "share", ("share", "directory"): "directory",
                   ("path", "directory"): "directory", ("path", None): "file"}


def _resource_of(level: str, restype: Optional[str]) -> str:
    return _RESOURCE_LEVEL.get((level, restype), "account")


class FilesRouter(StorageRouter):
    """The File service's rows on the storage router; its errors name a level "a share" etc."""

    def __init__(self, rows=url_paths) -> None:
        super().__init__(rows, _HINTS, _resource_of)

    def _where(self, level: str) -> str:
        return _describe(level)

    def _at(self, level: str) -> str:
        return "on " + _describe(level)


_HINTS = {"account": "list shares with GET ?comp=list",
          "share": "share operations take restype=share, the root directory restype=directory",
          "path": "directory operations take restype=directory, file operations no restype"}


def _describe(level: str) -> str:
    return {"account": "the account", "share": "a share", "path": "a file or directory"}[level]
