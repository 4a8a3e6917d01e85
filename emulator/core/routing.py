"""Routing as data, the way moto's ``urls.py`` files do it.

Each service's ``urls.py`` lists ``(METHOD, regex, handler_name)`` rows; the regexes are matched
case-insensitively against the decoded path, because Azure clients vary the case of fixed
segments (``/resourcegroups/`` from azure-mgmt-resource, ``/resourceGroups/`` from batchai).
"""
from __future__ import annotations

import re
from typing import Any, Callable, Iterable, Optional


class Router:
    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern, Callable]] = []

    def add_service(self, url_paths: Iterable[tuple[str, str, str]], responses: Any) -> None:
        """Register every ``(method, pattern, name)`` row, bound to ``getattr(responses, name)``."""
        for method, pattern, name in url_paths:
            self._routes.append((method.upper(), re.compile(pattern + r"\Z", re.IGNORECASE), getattr(responses, name)))

    def match(self, method: str, path: str) -> tuple[Optional[Callable], dict, bool]:
        """Return (handler, path parameters, path_known). path_known tells 405 from 404."""
        path_known = False
        for route_method, regex, handler in self._routes:
            m = regex.match(path)
            if m:
                path_known = True
                if route_method == method.upper():
                    return handler, m.groupdict(), True
        return None, {}, path_known
