"""Names under ``.localhost`` resolve to 127.0.0.1, in this process, as RFC 6761 section 6.3 says they should.

azure-ai-ml builds blob URLs as ``https://<account>.blob.<storage suffix>``, so on the local target
the emulator's Blob endpoint is ``<account>.blob.core.localhost``. glibc resolves ``localhost`` but
not names under it (systemd-resolved and browsers do), so the local target's client setup installs
this mapping; every other name goes to the system resolver unchanged, and nothing is written to
/etc/hosts.
"""
from __future__ import annotations

import socket

_original_getaddrinfo = socket.getaddrinfo


def _is_localhost_name(host) -> bool:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    return isinstance(host, str) and host.lower().rstrip(".").endswith(".localhost")


def _getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):  # noqa: A002 (socket's names)
    if _is_localhost_name(host):
        host = "127.0.0.1"
    return _original_getaddrinfo(host, port, family, type, proto, flags)


def resolve_localhost_names() -> None:
    """Install the mapping (idempotent)."""
    socket.getaddrinfo = _getaddrinfo
