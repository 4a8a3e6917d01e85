"""Batch AI (API 2018-05-01, and 2017-09-01-preview and 2018-03-01 as views of it, legacy.py): workspaces, experiments, clusters of simulated nodes and jobs that
run on this machine, served to azure-mgmt-batchai 7.0.0.

Layout as in moto: ``models`` (state in SQLite and its REST JSON, ``BatchAIBackend``), ``responses``
(handlers), ``urls`` (routes), ``validation`` (request bodies, names, the secret filter),
``exceptions`` (every error); ``autoscale`` and ``preemption`` (low-priority nodes) change clusters
in the background; for the runner: ``jobstore`` (the job and node records it reads and
writes) and ``launches`` (what a started job runs, per toolkit). Processes and threads are the
runner's (``emulator.runner``), which knows nothing of Batch AI.
"""
from __future__ import annotations

from ..core.context import Context, Service
from ..runner import JobRunner
from .autoscale import AutoScaler
from .legacy import VersionedResponses
from .models import BatchAIBackend
from .preemption import Preemptions
from .responses import BatchAIResponses
from .urls import url_paths

__all__ = ["BatchAIBackend", "create_service"]

# Deletes and terminations in flight wait at most this long for their jobs at shutdown.
CLOSE_WAIT_SECONDS = 15


def create_service(ctx: Context) -> Service:
    """The Batch AI service; its runner recovers stored state and starts scheduling at once."""
    backend = BatchAIBackend(ctx)
    runner = JobRunner(backend.records, _FilesShares(ctx), ctx.data_dir)
    backend.runner = runner
    runner.recover()
    backend.finish_interrupted_deletes()
    runner.start()
    autoscaler = AutoScaler(ctx.store, runner.allocator.reconcile, backend.quotas.headroom)
    autoscaler.start()
    backend.preemptions = Preemptions(ctx.store, backend.find_cluster, runner.preempt_node, ctx.preemption_rate, ctx.preemption_seed)
    backend.preemptions.start()

    def close() -> None:
        backend.preemptions.close()
        autoscaler.close()
        runner.close()
        backend.work.close(CLOSE_WAIT_SECONDS)

    return Service(backend=backend, url_paths=url_paths, responses=VersionedResponses(BatchAIResponses(backend)),
                   close=close)


class _FilesShares:
    """The Files backend's share paths, looked up when needed (Files may start after Batch AI)."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def share_from_url(self, url: str) -> str:
        return self._ctx.services["files"].backend.share_from_url(url)

    def check_account_key(self, account, key) -> bool:
        return self._ctx.services["files"].backend.check_account_key(account, key)

    def share_path(self, share: str):
        return self._ctx.services["files"].backend.share_path(share)
