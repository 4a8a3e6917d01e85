"""Azure Machine Learning (the v2 API azure-ai-ml 1.35.2 calls): workspaces made by Resource Manager
deployments, datastores over the emulator's Blob endpoint, code/data/environment versions, AmlCompute
clusters and command jobs that run on this machine, and the workspace data plane (discovery, RunHistory,
dataset resolution) that ``jobs.stream`` and ``jobs.download`` use.

Layout as in moto: ``models`` (state in SQLite, ``AzureMLBackend``), ``responses`` (handlers), ``urls``
(routes), ``exceptions`` (errors); ``storage`` is the part of the Blob backend it uses, ``execution`` runs
the jobs, ``dataplane`` serves the data plane beside the Resource Manager endpoint.
"""
from __future__ import annotations

from ..core.context import Context, Service
from .dataplane import DataPlaneApplication
from .execution import AzureMLRunner
from .models import AzureMLBackend
from .responses import AzureMLResponses
from .storage import WorkspaceStorage
from .urls import url_paths

__all__ = ["AzureMLBackend", "DataPlaneApplication", "create_service"]

CLOSE_WAIT_SECONDS = 15


def create_service(ctx: Context, blob_backend) -> Service:
    """The Azure ML service over the emulator's Blob backend (``blob_backend``)."""
    storage = WorkspaceStorage(blob_backend, ctx.identity.account_name, ctx.identity.account_key, ctx.blob_url)
    backend = AzureMLBackend(ctx, storage)
    runner = AzureMLRunner(backend, ctx.data_dir / "azureml" / "jobs")
    runner.recover()
    backend.runner = runner

    def close() -> None:
        runner.close()
        backend.work.close(CLOSE_WAIT_SECONDS)

    return Service(backend=backend, url_paths=url_paths, responses=AzureMLResponses(backend), close=close)
