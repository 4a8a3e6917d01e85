"""The Batch AI job runner: schedules queued jobs onto idle simulated nodes and runs them here.

Threads:
- the scheduler (``batchai-scheduler``): woken through a Condition whenever jobs or nodes change,
  and every TICK_SECONDS as a safety net; places queued jobs in order of schedulingPriority then
  creation on their cluster's idle nodes (one job per node, a job of nodeCount k takes k nodes;
  a job that does not fit blocks the ones behind it on that cluster);
- one thread per running job (``JobExecution``) that waits on its process group;
- one allocation thread per resizing cluster (``ClusterAllocator``).
State lives only in SQLite (through the Batch AI backend) and on disk, so start-up recovers:
jobs that were running are reported failed (JobInterrupted) and their leftover processes killed,
queued jobs stay queued, interrupted deletes are completed and node counts are reconciled.
"""
from __future__ import annotations

import json
import logging
import threading

from ..batchai import exceptions as errors
from ..batchai.validation import target_node_count
from .execution import JobExecution, Outcome
from .nodes import ClusterAllocator
from .processes import GRACE_SECONDS, job_marker, kill_leftovers

__all__ = ["GRACE_SECONDS", "JobRunner"]
log = logging.getLogger("emulator.runner")

TICK_SECONDS = 0.1
STOP_WAIT_SECONDS = GRACE_SECONDS + 5  # how long a stop waits for a job's process to be gone


class JobRunner:
    def __init__(self, backend) -> None:
        self.backend = backend
        self.allocator = ClusterAllocator(backend, on_change=self.notify)
        self._lock = threading.RLock()          # claims and the registry of running jobs
        self._executions: dict[int, JobExecution] = {}
        self._wakeup = threading.Condition()
        self._pending = False
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="batchai-scheduler", daemon=True)

    def start(self) -> None:
        self.recover()
        self._thread.start()

    def notify(self) -> None:
        """Something changed (a job was queued, a node became idle): schedule now."""
        with self._wakeup:
            self._pending = True
            self._wakeup.notify()

    # ---- start-up ----------------------------------------------------------------------------

    def recover(self) -> None:
        """Make the stored state true again after a stop or a crash (nothing runs yet)."""
        for job in self.backend.interrupted_jobs():
            kill_leftovers(job_marker(job), job["pid"], job["pid_start_time"])
            self.backend.finish_job(job["id"], "failed", None, [errors.job_interrupted()])
            log.warning("job %s was running when the emulator stopped: reported failed", job["name"])
        self.backend.reset_nodes_after_restart()
        self.backend.finish_interrupted_deletes()
        self.allocator.resume_all()

    # ---- scheduling --------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._closing.is_set():
            with self._wakeup:
                if not self._pending:
                    self._wakeup.wait(TICK_SECONDS)
                self._pending = False
            try:
                self.schedule()
            except Exception:
                log.exception("scheduling failed")

    def schedule(self) -> None:
        """One pass over the queue."""
        with self._lock:
            waiting_clusters: set = set()  # their first queued job waits for nodes; the rest wait behind it
            idle_nodes: dict = {}
            for job in self.backend.queued_jobs():
                if self._closing.is_set():
                    return
                key = (job["resource_group"].lower(), job["workspace"].lower(), job["cluster"].lower())
                if key in waiting_clusters:
                    continue
                cluster = self.backend.find_cluster(job["resource_group"], job["workspace"], job["cluster"])
                if cluster is None:
                    self.backend.fail_queued_job(job["id"], errors.job_cluster_missing(job["cluster"]))
                    continue
                if key not in idle_nodes:
                    idle_nodes[key] = self._idle_nodes(cluster)
                idle, needed = idle_nodes[key], json.loads(job["properties"])["nodeCount"]
                if len(idle) < needed:
                    waiting_clusters.add(key)
                    continue
                chosen, idle[:] = idle[:needed], idle[needed:]
                if self.backend.claim_nodes(job["id"], chosen):
                    self._start(job, cluster, chosen)

    def _idle_nodes(self, cluster) -> list:
        """Idle node ids of a cluster that takes jobs (not being deleted, not shrinking)."""
        nodes = self.backend.nodes(cluster["id"])
        target = target_node_count(json.loads(cluster["properties"])["scaleSettings"])
        if cluster["provisioning_state"] != "succeeded" or len(nodes) > target:
            return []  # a shrinking cluster lets its surplus nodes go before they take new jobs
        return [node["node_id"] for node in nodes if node["state"] == "idle"]

    def _start(self, job, cluster, node_ids: list) -> None:
        execution = JobExecution(self, job, cluster, node_ids)
        self._executions[job["id"]] = execution
        log.info("job %s running on %s", job["name"], ", ".join(node_ids))
        execution.start()

    def job_finished(self, execution: JobExecution, outcome: Outcome) -> None:
        """Called by a job's thread at its end: record the outcome, free the nodes, schedule again."""
        try:
            self.backend.finish_job(execution.job_id, outcome.state, outcome.exit_code, outcome.errors)
            log.info("job %s %s (exit code %s)", execution.name, outcome.state, outcome.exit_code)
        finally:
            with self._lock:
                self._executions.pop(execution.job_id, None)
            execution.done.set()
            self.notify()

    # ---- stopping ----------------------------------------------------------------------------

    def stop_jobs(self, job_ids: list, error: dict) -> None:
        """Stop those of ``job_ids`` that run (terminating -> failed with ``error``); blocks until their
        processes are gone. Queued ones are the caller's business."""
        with self._lock:
            executions = [self._executions[job_id] for job_id in job_ids if job_id in self._executions]
        if not executions:
            return
        self.backend.mark_terminating([execution.job_id for execution in executions])
        for execution in executions:
            execution.request_stop(error)
        for execution in executions:
            if not execution.done.wait(STOP_WAIT_SECONDS):
                log.error("job %s did not stop within %s s", execution.name, STOP_WAIT_SECONDS)

    def close(self) -> None:
        """Clean stop: no more scheduling; running jobs are stopped and reported failed (JobInterrupted)."""
        self._closing.set()
        self.notify()
        if self._thread.is_alive():
            self._thread.join(5)
        self.allocator.close()
        with self._lock:
            running = list(self._executions)
        self.stop_jobs(running, errors.job_interrupted())
