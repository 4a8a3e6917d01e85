"""The job runner: schedules queued jobs onto idle simulated nodes and runs them on this machine.

It serves any service through a narrow interface (records.py):
- ``JobStore``, which the service implements over its own state: queued jobs and cluster/node
  records to read, claims and outcomes to write, and ``launch(job_id, nodes)`` that describes a
  started job as a ``JobLaunch`` — per node its directory, environment, mounts and files, then the
  tasks (argv, environment, stdout/stderr paths, node) or the MPI ranks to run;
- ``SharePaths`` (the Files backend's share paths and key check) for mounting shares;
- the data directory (``private_root``): every job and setup task runs in a sandbox (sandbox.py)
  that lets it use only its own nodes, job directory and mounts of it;
- ``notify()``, the callback the service calls when work is queued; ``stop_jobs``, ``reconcile``
  and ``release`` for terminations and cluster changes. State changes come back through the
  store's ``job_process``/``job_terminating``/``job_finished``/``set_node_state``/... callbacks,
  failures as ``Failure`` records that the service maps to its own errors.

Threads:
- the scheduler (``runner-scheduler``): woken by ``notify()`` and every TICK_SECONDS as a safety
  net; places queued jobs, in the store's order, on their cluster's idle nodes (one job per node;
  a job of nodeCount k takes k nodes; a job that does not fit blocks the ones behind it);
- one thread per running job (``JobExecution``) that waits on its process tree;
- one allocation thread per resizing cluster (``ClusterAllocator``).
``preempt_node`` takes a node away as the service took low-priority VMs: its job is requeued and
the cluster gets a replacement node.
State lives only in the service's store and on disk, so start-up recovers: jobs that were running
are reported failed (``INTERRUPTED``) and their leftover processes killed, node states are reset.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Optional

from .execution import JobExecution, stop_failure
from .nodes import ClusterAllocator
from .processes import GRACE_SECONDS, kill_leftovers
from .sandbox import Sandbox
from .records import (CLUSTER_MISSING, INTERRUPTED, NODE_REMOVED, PREEMPTED, Failure, JobStore, Outcome, SharePaths,
                      requeues)

__all__ = ["GRACE_SECONDS", "JobRunner"]
log = logging.getLogger("emulator.runner")

TICK_SECONDS = 0.1
STOP_WAIT_SECONDS = GRACE_SECONDS + 5  # how long a stop waits for a job's processes to be gone


class JobRunner:
    def __init__(self, store: JobStore, shares: SharePaths, private_root: Optional[Path] = None) -> None:
        """``private_root``: the emulator's data directory, of which jobs may use only their own parts."""
        self.store = store
        self.shares = shares
        self.sandbox = Sandbox(private_root)
        self.allocator = ClusterAllocator(store, shares, on_change=self.notify, stop_node_jobs=self._stop_node_jobs,
                                          sandbox=self.sandbox)
        self._lock = threading.RLock()          # claims and the registry of running jobs
        self._executions: dict = {}
        self._wakeup = threading.Condition()
        self._pending = False
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="runner-scheduler", daemon=True)

    def recover(self) -> None:
        """Make the stored state true again after a stop or a crash (call before ``start``)."""
        for job_id, name, pid, start_time, *marker in self.store.interrupted_jobs():
            kill_leftovers(marker[0] if marker else None, pid, start_time)  # and all that carry the job's marker
            self.store.job_finished(job_id, Outcome("failed", None, Failure(INTERRUPTED)))
            log.warning("job %s was running when the emulator stopped: reported failed", name)
        self.store.reset_nodes_after_restart()

    def start(self) -> None:
        """Resume resizes under way and start scheduling."""
        self.allocator.resume_all()
        self._thread.start()

    def notify(self) -> None:
        """Something changed (a job was queued, a node became idle): schedule now."""
        with self._wakeup:
            self._pending = True
            self._wakeup.notify()

    def reconcile(self, cluster_id: int) -> None:
        """The cluster's target may have changed: resize it in the background."""
        self.allocator.reconcile(cluster_id)

    def release(self, cluster_id: int) -> None:
        """The cluster is going away: stop its allocation and setup tasks (blocks briefly)."""
        self.allocator.release(cluster_id)

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
            for job in self.store.queued_jobs():
                if self._closing.is_set():
                    return
                if job.cluster_id in waiting_clusters:
                    continue
                if job.cluster_id is None:
                    self.store.fail_queued_job(job.job_id, Failure(CLUSTER_MISSING, {"cluster": job.cluster_name}))
                    continue
                if job.cluster_id not in idle_nodes:
                    idle_nodes[job.cluster_id] = self._idle_nodes(job.cluster_id)
                idle = idle_nodes[job.cluster_id]
                if len(idle) < job.node_count:
                    waiting_clusters.add(job.cluster_id)
                    continue
                chosen, idle[:] = idle[:job.node_count], idle[job.node_count:]
                if self.store.claim_nodes(job.job_id, [node.node_id for node in chosen]):
                    self._start(job, chosen)

    def _idle_nodes(self, cluster_id: int) -> list:
        """Idle nodes of a cluster that takes jobs (not being deleted, not shrinking), in order."""
        cluster = self.store.cluster(cluster_id)
        if cluster is None or not cluster.accepts_jobs:
            return []
        nodes = self.store.nodes(cluster_id)
        if len(nodes) > cluster.target_nodes:
            return []  # a shrinking cluster lets its surplus nodes go before they take new jobs
        return [node for node in nodes if node.state == "idle"]

    def _start(self, job, nodes: list) -> None:
        execution = JobExecution(self, job, nodes)
        self._executions[job.job_id] = execution
        log.info("job %s running on %s", job.name, ", ".join(node.node_id for node in nodes))
        execution.start()

    def job_finished(self, execution: JobExecution, outcome: Outcome) -> None:
        """Called by a job's thread at its end: record the outcome (a preempted job goes back to the
        queue), free the nodes, schedule again."""
        try:
            if requeues(outcome.failure):
                self.store.job_requeued(execution.job_id)
                log.info("job %s requeued: node %s %s", execution.name, outcome.failure.details["node_id"],
                         "was preempted" if outcome.failure.kind == PREEMPTED else "was removed by a resize")
            else:
                self.store.job_finished(execution.job_id, outcome)
                log.info("job %s %s (exit code %s)", execution.name, outcome.state, outcome.exit_code)
        finally:
            with self._lock:
                self._executions.pop(execution.job_id, None)
            execution.done.set()
            self.notify()

    # ---- preemption --------------------------------------------------------------------------

    def preempt_node(self, cluster_id: int, node_id: str) -> bool:
        """A node is taken away, as a low-priority VM is: the job on it stops at once on all its nodes
        and goes back to the queue (what it wrote to shares stays), the node leaves, and the cluster
        resizes to get a replacement. Blocks until the job has stopped. False if the cluster has no such
        node, or it is neither running nor idle (being prepared, or already leaving)."""
        with self._lock:  # no claim in between: the scheduler claims only idle nodes, under this lock
            if not any(node.node_id == node_id for node in self.store.nodes(cluster_id)) or not (
                    self.store.set_node_state(node_id, "leaving", only_from="running") or
                    self.store.set_node_state(node_id, "leaving", only_from="idle")):
                return False
            stops = [(execution, Failure(PREEMPTED, {"node_id": node})) for execution, node in
                     self._executions_on([node_id]).items()]
        log.info("node %s preempted%s", node_id, "".join(" while running job " + e.name for e, _ in stops))
        self._stop_and_wait(stops, at_once=True)
        self.allocator.replace_node(cluster_id, node_id)
        return True

    def _stop_node_jobs(self, node_ids: list, requeue: bool) -> None:
        """A shrink takes these nodes (already 'leaving'): stop the jobs on them, which go back to the queue
        (``requeue``) or fail. Blocks until they have stopped."""
        with self._lock:
            stops = [(execution, Failure(NODE_REMOVED, {"node_id": node, "requeue": requeue})) for execution, node in
                     self._executions_on(node_ids).items()]
        self._stop_and_wait(stops)

    def _executions_on(self, node_ids: list) -> dict:
        """{running job: the first of ``node_ids`` it runs on}; call with ``self._lock`` held."""
        found: dict = {}
        for node_id in node_ids:
            for execution in self._executions.values():
                if node_id in execution.node_ids:
                    found.setdefault(execution, node_id)
        return found

    # ---- stopping ----------------------------------------------------------------------------

    def stop_jobs(self, job_ids: list, reason) -> None:
        """Stop those of ``job_ids`` that run; they fail with ``reason`` (a Failure, or anything the
        service wants back as ``Failure(STOPPED, {"reason": reason})``). Blocks until their processes
        are gone. Queued ones are the service's business."""
        with self._lock:
            executions = [self._executions[job_id] for job_id in job_ids if job_id in self._executions]
        if not executions:
            return
        self.store.job_terminating([execution.job_id for execution in executions])
        self._stop_and_wait([(execution, stop_failure(reason)) for execution in executions])

    def _stop_and_wait(self, stops: list, at_once: bool = False) -> None:
        """Ask each (execution, failure) of ``stops`` to stop, then wait until each has."""
        for execution, failure in stops:
            execution.request_stop(failure, at_once)
        for execution, _ in stops:
            if not execution.done.wait(STOP_WAIT_SECONDS):
                log.error("job %s did not stop within %s s", execution.name, STOP_WAIT_SECONDS)

    def close(self) -> None:
        """Clean stop: no more scheduling; running jobs are stopped and reported failed (interrupted)."""
        self._closing.set()
        self.notify()
        if self._thread.is_alive():
            self._thread.join(5)
        self.allocator.close()
        with self._lock:
            running = list(self._executions)
        self.stop_jobs(running, Failure(INTERRUPTED))
        self.sandbox.close()
