"""An HTTPS proxy for Azure's own hostnames: unmodified clients reach the emulator after two ``export`` lines.

``HTTPS_PROXY=http://127.0.0.1:PORT`` sends every https request of a process here as ``CONNECT host:443``. For
the hostnames the emulator serves (a table built by ``emulator.start``: ``management.azure.com``,
``<account>.file.core.windows.net``, ...), the proxy terminates TLS with a leaf from the data directory's
name-constrained CA (``core.proxy_ca``) and hands the requests to the same WSGI applications that serve
loopback. CONNECTs to the emulator's own loopback endpoints are served the same way with their own
certificate; every other CONNECT is refused (403). It never opens a connection anywhere.
See docs/any-azure-client.md.
"""
from __future__ import annotations

from typing import Callable

from .routes import Routes
from .server import ProxyServer

__all__ = ["ProxyServer", "Routes", "mounted_at"]


def mounted_at(app: Callable, prefix: str) -> Callable:
    """``app`` seeing every path under ``prefix`` (the Azure ML data plane, served at the root of
    ``<region>.api.azureml.ms``, sits under ``/azureml-api`` on loopback)."""
    def call(environ, start_response):
        environ["PATH_INFO"] = prefix + environ.get("PATH_INFO", "")
        for key in ("REQUEST_URI", "RAW_URI"):
            if environ.get(key, "").startswith("/"):
                environ[key] = prefix + environ[key]
        return app(environ, start_response)
    return call
