"""Routing as data for the File service.

Azure Files tells operations apart by the URL's depth (account, share, or a path inside the
share), the ``restype`` and ``comp`` query parameters and the HTTP method, so a row is
``(method, level, restype, comp, handler name, SAS permissions)``. The SAS permission column
lists the letters any one of which a service SAS needs (None: SharedKey only).
"""
from __future__ import annotations

from typing import Optional

from . import exceptions as err

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


class Route:
    __slots__ = ("handler", "permissions", "resource")

    def __init__(self, handler: str, permissions: Optional[str], resource: str) -> None:
        self.handler, self.permissions, self.resource = handler, permissions, resource


class FilesRouter:
    def __init__(self, rows=url_paths) -> None:
        self._rows = {}
        self._methods: dict[tuple, set] = {}
        for method, level, restype, comp, handler, permissions in rows:
            key = (level, restype, comp)
            resource = _RESOURCE_LEVEL.get((level, restype), "account")
            self._rows[(method,) + key] = Route(handler, permissions, resource)
            self._methods.setdefault(key, set()).add(method)

    def match(self, method: str, level: str, restype: Optional[str], comp: Optional[str]) -> Route:
        key = (level, restype or None, comp or None)
        route = self._rows.get((method,) + key)
        if route is not None:
            return route
        if key in self._methods:
            raise err.unsupported_http_verb(method)
        if restype and restype not in ("share", "directory", "service"):
            raise err.invalid_query_parameter_value("restype", restype)
        if comp:
            raise err.not_implemented("comp={} on {} (restype={})".format(comp, _describe(level), restype or ""))
        raise err.invalid_query_parameter_value(
            "restype", restype or "", "No {} operation on {} has restype={!r} and no comp; {}.".format(
                method, _describe(level), restype or "", _HINTS[level]))


_HINTS = {"account": "list shares with GET ?comp=list",
          "share": "share operations take restype=share, the root directory restype=directory",
          "path": "directory operations take restype=directory, file operations no restype"}


def _describe(level: str) -> str:
    return {"account": "the account", "share": "a share", "path": "a file or directory"}[level]
