"""Batch AI (API 2018-05-01): workspaces, experiments, clusters of simulated nodes and jobs that
run on this machine, served to azure-mgmt-batchai 7.0.0.

Layout as in moto: ``models`` (state in SQLite, ``BatchAIBackend``), ``responses`` (handlers),
``urls`` (routes), ``validation`` (request bodies, names, the secret filter), ``exceptions``
(every error). Processes and threads are the runner's (``emulator.runner``).
"""
from __future__ import annotations

from ..core.context import Context, Service
from .autoscale import AutoScaler
from .models import BatchAIBackend
from .responses import BatchAIResponses
from .urls import url_paths

__all__ = ["BatchAIBackend", "create_service"]

# Deletes and terminations in flight wait at most this long for their jobs at shutdown.
CLOSE_WAIT_SECONDS = 15


def create_service(ctx: Context) -> Service:
    """The Batch AI service; its runner recovers stored state and starts scheduling at once."""
    from ..runner import JobRunner  # the runner imports this package's exceptions and validation

    backend = BatchAIBackend(ctx)
    runner = JobRunner(backend)
    backend.runner = runner
    runner.start()
    autoscaler = AutoScaler(ctx.store, runner.allocator.reconcile, backend.quotas.headroom)
    autoscaler.start()

    def close() -> None:
        autoscaler.close()
        runner.close()
        backend.work.close(CLOSE_WAIT_SECONDS)

    return Service(backend=backend, url_paths=url_paths, responses=BatchAIResponses(backend), close=close)
