"""The base URLs an answer hands out, for the way its request came in.

Direct requests get the loopback URLs of today (``arm_url``, ``files_url``, ``blob_url``). Requests that came
through the HTTPS proxy (``emulator.proxy``) get Azure's own hostnames, so that a client that only knows those
names (it follows polling URLs, nextLinks, download SAS URLs and the workspace's discovery endpoint) comes back
through the proxy. The proxy marks the thread serving a tunnel with ``proxied(host)``; nothing else sets it,
so background work (the job runner) and direct requests always see the loopback URLs.
"""
from __future__ import annotations

import contextlib
from contextvars import ContextVar
from typing import Iterator, Optional

#: The environ key the proxy sets too: the host name the client sent its CONNECT for.
ENVIRON_KEY = "emulator.proxied_host"
ARM_ORIGIN = "https://management.azure.com"
STORAGE_SUFFIX = "core.windows.net"
AZUREML_API_SUFFIX = ".api.azureml.ms"

_proxied_host: ContextVar[Optional[str]] = ContextVar("emulator_proxied_host", default=None)


@contextlib.contextmanager
def proxied(host: str) -> Iterator[None]:
    """While this runs, answers built in this thread name Azure's hostnames (``host`` was CONNECTed to)."""
    token = _proxied_host.set(host.lower())
    try:
        yield
    finally:
        _proxied_host.reset(token)


def proxied_host() -> Optional[str]:
    """The Azure host name the request being served was sent to through the proxy; None when direct."""
    return _proxied_host.get()


def arm(loopback_url: str) -> str:
    """Resource Manager's origin: ``https://management.azure.com`` through the proxy, else ``loopback_url``."""
    return ARM_ORIGIN if proxied_host() else loopback_url


def files_account(loopback_url: str, account: str) -> str:
    """The File endpoint of ``account`` (no trailing slash): ``https://<account>.file.core.windows.net``
    through the proxy, else the path-style loopback ``loopback_url`` (``http://127.0.0.1:PORT/<account>``)."""
    return "https://{}.file.{}".format(account, STORAGE_SUFFIX) if proxied_host() else loopback_url


def blob_account(loopback_url: str, account: str) -> str:
    """The Blob endpoint of ``account``, as ``files_account``."""
    return "https://{}.blob.{}".format(account, STORAGE_SUFFIX) if proxied_host() else loopback_url


def storage_suffix(loopback_suffix: str) -> str:
    """What azure-ai-ml puts after ``<account>.blob.``: ``core.windows.net`` through the proxy."""
    return STORAGE_SUFFIX if proxied_host() else loopback_suffix


def azureml_api(loopback_url: str, location: str) -> str:
    """The workspace data plane's origin: the ``<region>.api.azureml.ms`` host the client is talking to, else
    the workspace's region's, through the proxy; ``loopback_url`` when direct."""
    host = proxied_host()
    if not host:
        return loopback_url
    if host.endswith(AZUREML_API_SUFFIX):
        return "https://" + host
    return "https://{}{}".format((location or "eastus").replace(" ", "").lower(), AZUREML_API_SUFFIX)
