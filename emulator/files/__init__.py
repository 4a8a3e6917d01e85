"""Azure Files: the File endpoint of the emulator's storage account (shares, directories,
files, SharedKey and service SAS), served over http at ``ctx.files_url``.

Layout as in moto: ``models`` (state, ``FilesBackend``), ``responses`` (the WSGI app and one
handler per operation), ``urls`` (routing rows), ``auth`` (SharedKey and SAS), ``xml`` (list
bodies), ``exceptions`` (every error).
"""
from __future__ import annotations

from ..core.context import Context, Service
from .exceptions import ShareNotFound, StorageError
from .models import FilesBackend
from .responses import FilesApplication, FilesResponses
from .urls import url_paths

__all__ = ["FilesBackend", "ShareNotFound", "StorageError", "create_app", "create_service"]


def create_service(ctx: Context) -> Service:
    backend = FilesBackend(ctx.store, ctx.data_dir / "files", ctx.identity.account_name, ctx.identity.account_key,
                           ctx.files_url)
    return Service(backend=backend, url_paths=url_paths, responses=FilesResponses(backend))


def create_app(service: Service) -> FilesApplication:
    """The WSGI callable serving the File endpoint."""
    return FilesApplication(service.backend, service.responses)
