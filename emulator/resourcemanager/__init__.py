"""Resource Manager: resource groups (create, get, check, list, update, delete with everything in them)."""
from __future__ import annotations

from ..core.context import Context, Service
from .models import ResourceManagerBackend
from .responses import ResourceManagerResponses
from .urls import url_paths

__all__ = ["ResourceManagerBackend", "create_service"]

CLOSE_WAIT_SECONDS = 15  # group deletes in flight wait this long for their jobs at shutdown


def create_service(ctx: Context) -> Service:
    backend = ResourceManagerBackend(ctx)
    backend.resume_deletes()
    return Service(backend=backend, url_paths=url_paths, responses=ResourceManagerResponses(backend),
                   close=lambda: backend.close(CLOSE_WAIT_SECONDS))
