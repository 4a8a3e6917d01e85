"""Azure Blob storage: the Blob endpoint of the emulator's storage account (containers, block
blobs, SharedKey and service SAS), served over https at ``ctx.blob_url`` because azure-ai-ml
builds https blob URLs.

Layout as in moto: ``models`` (state, ``BlobBackend``), ``responses`` (one handler per
operation, the addressing), ``urls`` (routing rows), ``xml`` (bodies), ``exceptions`` (errors).
Parsing, SharedKey/SAS and error rendering are ``core.storage_http`` / ``core.storage_auth``.
"""
from __future__ import annotations

from ..core.context import Context, Service
from ..core.storage_http import StorageApplication, StorageRouter
from .exceptions import BlobNotFound, ContainerNotFound
from .models import BlobBackend
from .responses import BlobAddressing, BlobResponses
from .urls import hints, url_paths

__all__ = ["BlobBackend", "BlobNotFound", "ContainerNotFound", "create_app", "create_service"]


def create_service(ctx: Context) -> Service:
    backend = BlobBackend(ctx.store, ctx.data_dir / "blob", ctx.identity.account_name, ctx.identity.account_key,
                          ctx.blob_url)
    return Service(backend=backend, url_paths=url_paths, responses=BlobResponses(backend))


def create_app(service: Service) -> StorageApplication:
    """The WSGI callable serving the Blob endpoint."""
    backend = service.backend
    return StorageApplication(StorageRouter(url_paths, hints), backend.auth, service.responses,
                              BlobAddressing(backend.account_name))
