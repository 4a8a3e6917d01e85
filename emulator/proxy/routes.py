"""Which CONNECT targets the proxy serves, and with what: a table from host (and port) to a WSGI application.

Azure's hostnames are served on port 443 only, with a leaf from the proxy's CA; the emulator's own loopback
endpoints (``127.0.0.1``/``localhost``/``*.localhost`` on the emulator's ports) with the loopback certificate,
or plain for the http Files port. Anything else has no route: the proxy refuses it.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Callable, Optional, Union

AZURE_PORT = 443


@dataclass(frozen=True)
class Route:
    app: Callable                                  # the WSGI application that serves loopback too
    certificate: Optional[Union[str, tuple]]       # a CA leaf name to mint, (cert, key) paths, or None: plain HTTP
    azure: bool                                    # the answers name Azure's hostnames (core.public_urls)


def _valid_pattern(pattern: str) -> str:
    labels = pattern.lower().split(".")
    if len(labels) < 3 or not all(labels) or "*" in "".join(labels[1:]) or (labels[0] != "*" and "*" in labels[0]):
        raise ValueError("a proxied host is a name like management.azure.com or *.file.core.windows.net, "
                         "not {!r}".format(pattern))
    return pattern.lower()


def _matches(pattern: str, host: str) -> bool:
    if pattern.startswith("*."):
        first, _, rest = host.partition(".")
        return bool(first) and rest == pattern[2:]  # one label, as a certificate's wildcard
    return host == pattern


def is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Routes:
    def __init__(self) -> None:
        self._azure: list = []      # (pattern, Route), first match wins
        self._loopback: dict = {}   # port -> Route

    def add_azure(self, pattern: str, app: Callable) -> None:
        """Serve ``pattern`` (``management.azure.com``, ``*.blob.core.windows.net``: one label) on port 443."""
        pattern = _valid_pattern(pattern)
        self._azure.append((pattern, Route(app, pattern, True)))

    def add_loopback(self, port: int, app: Callable, certificate: Optional[tuple]) -> None:
        """Serve the emulator's own endpoint on ``port`` (``certificate``: its (cert, key), None for http)."""
        self._loopback[int(port)] = Route(app, certificate, False)

    @property
    def azure_patterns(self) -> list:
        return [pattern for pattern, _ in self._azure]

    def match(self, host: str, port: int) -> Optional[Route]:
        host = host.lower().rstrip(".")
        if is_loopback(host):
            return self._loopback.get(port)
        if port != AZURE_PORT:
            return None
        for pattern, route in self._azure:
            if _matches(pattern, host):
                return route
        return None

