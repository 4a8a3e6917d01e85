"""Azure Machine Learning (the v2 API azure-ai-ml 1.35.2 calls): workspaces made by Resource Manager
deployments, datastores over the emulator's Blob endpoint, code/data/environment versions, AmlCompute
clusters and command jobs that run on this machine, and the workspace data plane (discovery, RunHistory,
dataset resolution) that ``jobs.stream`` and ``jobs.download`` use.

Layout as in moto: ``models`` (state in SQLite, ``AzureMLBackend``), ``responses`` (handlers), ``urls``
(routes), ``exceptions`` (errors); ``storage`` is the part of the Blob backend it uses, ``jobstore`` what
the shared job runner (emulator.runner) sees of Azure ML, ``dataplane`` serves the data plane beside the
Resource Manager endpoint. Beyond the quickstart's path: ``assets`` (containers, version lists, labels,
archiving; handlers in ``asset_responses``), ``curated`` (the curated environment catalogue),
``environments`` (environments that install), ``workspaces`` (workspace PATCH), ``scaledown`` (idle
scale-down) and ``coverage`` (the generated coverage table).
"""
from __future__ import annotations

from ..core.context import Context, Service
from ..runner import JobRunner
from .dataplane import DataPlaneApplication
from .jobstore import AzureMLJobStore
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
    (ctx.data_dir / "azureml").mkdir(mode=0o700, exist_ok=True)  # job and node directories: private
    backend.records = AzureMLJobStore(backend, ctx.data_dir / "azureml")
    runner = JobRunner(backend.records, _NoShares(), ctx.data_dir)
    backend.records.on_capacity_change = runner.reconcile
    backend.runner = runner
    runner.recover()
    backend.records.queued_to_fail_after_restart()
    runner.start()
    backend.records.scale_down.start()

    def close() -> None:
        backend.records.scale_down.close()
        runner.close()
        backend.work.close(CLOSE_WAIT_SECONDS)

    return Service(backend=backend, url_paths=url_paths, responses=AzureMLResponses(backend), close=close)


class _NoShares:
    """AmlCompute nodes mount no Azure File shares (jobs bring their data as inputs)."""

    def share_from_url(self, url: str) -> str:
        raise ValueError("Azure ML computes mount no file shares")

    def check_account_key(self, account, key) -> bool:
        return False

    def share_path(self, share: str):
        raise LookupError(share)
