"""Cluster nodes simulated on this machine.

A node is a directory of its own (the service's records say where). Allocation takes a node
through preparing (its shares are mounted as symlinks under ``<node>/mounts`` and the setup task
the service describes runs) to idle, or to unusable when that fails. While any node is missing or
surplus the cluster's allocationState is resizing; then steady. The delays below keep every state visible
to a client that polls, yet a one-node cluster is steady in about a fifth of a second.
"""
from __future__ import annotations

import logging
import shutil
import threading
import time
from typing import Callable, Optional

from .mounts import MountError, fill_synced, mount_directories, mount_shares
from .processes import ExecutionLog, ProcessGroup
from .sandbox import Sandbox, mounted_sources
from .records import SETUP_FAILED, SETUP_LAUNCH_FAILED, ClusterRecord, Failure, JobStore, NodeRecord, SharePaths, Task

log = logging.getLogger("emulator.runner")

ALLOCATE_SECONDS = 0.1   # resizing, before the new nodes exist
PREPARE_SECONDS = 0.1    # the least time a node spends preparing
LEAVE_SECONDS = 0.05     # a removed node is 'leaving' this long
RECHECK_SECONDS = 0.1    # how often a shrink waiting for busy nodes looks again
SETUP_TASK_STOP_GRACE = 1.0
# A preempted node's replacement is sought after this long: the service took minutes to find a VM; here
# it is long enough for a client polling every half second to see the job back in the queue.
REPLACEMENT_SECONDS = 1.0


class ClusterAllocator:
    """Brings each cluster's nodes to its target count, one background thread per resizing cluster."""

    def __init__(self, store: JobStore, shares: SharePaths, on_change: Callable[[], None],
                 stop_node_jobs: Callable[[list, bool], None] = lambda node_ids, requeue: None,
                 sandbox: Optional[Sandbox] = None) -> None:
        self.store = store
        self.shares = shares
        self.sandbox = sandbox or Sandbox()
        self._on_change = on_change  # wakes the scheduler: nodes became idle
        self._stop_node_jobs = stop_node_jobs  # (node ids, requeue): stop the jobs on nodes a shrink takes
        self._lock = threading.Lock()
        self._threads: dict[int, threading.Thread] = {}
        self._dirty: set[int] = set()      # changed while its thread runs: look again before finishing
        self._released: set[int] = set()   # being deleted: stop working on it
        self._setup_tasks: dict[int, set] = {}
        self._closing = threading.Event()

    def reconcile(self, cluster_id: int) -> None:
        """The target of ``cluster_id`` may have changed: resize it in the background."""
        with self._lock:
            if self._closing.is_set():
                return
            self._released.discard(cluster_id)
            thread = self._threads.get(cluster_id)
            if thread is not None and thread.is_alive():
                self._dirty.add(cluster_id)
                return
            thread = threading.Thread(target=self._allocate, args=(cluster_id,), daemon=True,
                                      name="runner-allocate-{}".format(cluster_id))
            self._threads[cluster_id] = thread
        thread.start()

    def replace_node(self, cluster_id: int, node_id: str) -> None:
        """A node left on its own (preempted, already 'leaving' and running nothing): remove it after the
        leaving pause; the cluster is resizing and gets a new node after REPLACEMENT_SECONDS."""
        self._pause(LEAVE_SECONDS)
        self.store.remove_node(cluster_id, node_id)
        cluster = self.store.cluster(cluster_id)
        if cluster is not None and cluster.accepts_jobs:
            self.store.set_allocation_state(cluster_id, "resizing", cluster.version)
            timer = threading.Timer(REPLACEMENT_SECONDS, self.reconcile, args=(cluster_id,))
            timer.daemon = True
            timer.start()

    def resume_all(self) -> None:
        """After a restart: finish every resize that was under way (and check every count)."""
        for cluster_id in self.store.clusters_to_resume():
            self.reconcile(cluster_id)

    def release(self, cluster_id: int) -> None:
        """The cluster is being deleted: stop its setup tasks and its allocation thread (blocks briefly)."""
        with self._lock:
            self._released.add(cluster_id)
            thread = self._threads.get(cluster_id)
            tasks = list(self._setup_tasks.get(cluster_id, ()))
        for task in tasks:
            task.stop(SETUP_TASK_STOP_GRACE)
        if thread is not None and thread is not threading.current_thread():
            thread.join(SETUP_TASK_STOP_GRACE + 5)

    def close(self) -> None:
        self._closing.set()
        with self._lock:
            threads = list(self._threads.values())
            tasks = [task for group in self._setup_tasks.values() for task in group]
        for task in tasks:
            task.stop(SETUP_TASK_STOP_GRACE)
        for thread in threads:
            thread.join(SETUP_TASK_STOP_GRACE + 5)

    def _stopped(self, cluster_id: int) -> bool:
        return self._closing.is_set() or cluster_id in self._released

    def _pause(self, seconds: float) -> None:
        if seconds > 0:
            self._closing.wait(seconds)

    # ---- the allocation loop -----------------------------------------------------------------

    def _allocate(self, cluster_id: int) -> None:
        try:
            while not self._stopped(cluster_id):
                with self._lock:
                    self._dirty.discard(cluster_id)
                cluster = self.store.cluster(cluster_id)
                if cluster is None or not cluster.accepts_jobs:
                    return
                target = cluster.target_nodes
                nodes = self.store.nodes(cluster_id)
                if len(nodes) < target:
                    self._grow(cluster, target - len(nodes))
                elif len(nodes) > target:
                    if not self._shrink(cluster, nodes, len(nodes) - target):
                        self._pause(RECHECK_SECONDS)  # the surplus nodes are busy: wait for their jobs
                elif self.store.set_allocation_state(cluster_id, "steady", cluster.version):
                    with self._lock:
                        if cluster_id not in self._dirty:
                            return
        except Exception:
            log.exception("allocation of cluster %s failed", cluster_id)
        finally:
            with self._lock:
                if self._threads.get(cluster_id) is threading.current_thread():
                    del self._threads[cluster_id]

    def _grow(self, cluster: ClusterRecord, count: int) -> None:
        self._pause(ALLOCATE_SECONDS)
        if self._stopped(cluster.cluster_id):
            return
        added = set(self.store.add_nodes(cluster.cluster_id, count))
        log.info("cluster %s: preparing %d node(s)", cluster.name, count)
        workers = [threading.Thread(target=self._prepare_node, args=(cluster, node), daemon=True,
                                    name="runner-prepare-" + node.node_id)
                   for node in self.store.nodes(cluster.cluster_id) if node.node_id in added]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

    def _shrink(self, cluster: ClusterRecord, nodes: list, surplus: int) -> bool:
        """Remove up to ``surplus`` nodes: those that run nothing first (unusable, then the newest); then, unless
        the cluster's policy is to wait for them, busy ones (the newest), whose jobs are requeued or terminated.
        False if none could go."""
        candidates = sorted((n for n in nodes if n.state in ("idle", "unusable")),
                            key=lambda n: (n.state != "unusable", -n.seq))
        leaving = [n.node_id for n in candidates[:surplus]
                   if self.store.set_node_state(n.node_id, "leaving", only_from=n.state)]
        if len(leaving) < surplus and cluster.shrink_policy in ("requeue", "terminate"):
            busy = sorted((n for n in nodes if n.state == "running"), key=lambda n: -n.seq)[:surplus - len(leaving)]
            taken = [n.node_id for n in busy if self.store.set_node_state(n.node_id, "leaving", only_from="running")]
            if taken:
                log.info("cluster %s: %s the jobs on %d node(s) it removes", cluster.name,
                         "requeues" if cluster.shrink_policy == "requeue" else "terminates", len(taken))
                self._stop_node_jobs(taken, cluster.shrink_policy == "requeue")
                leaving += taken
        if not leaving:
            return False
        self._pause(LEAVE_SECONDS)
        for node_id in leaving:
            self.store.remove_node(cluster.cluster_id, node_id)
        log.info("cluster %s: removed %d node(s)", cluster.name, len(leaving))
        return True

    # ---- one node ----------------------------------------------------------------------------

    def _prepare_node(self, cluster: ClusterRecord, node: NodeRecord) -> None:
        started = time.monotonic()
        shutil.rmtree(node.directory, ignore_errors=True)
        (node.directory / "mounts").mkdir(parents=True, exist_ok=True)
        try:
            mount_shares(self.shares, cluster.mounts, node.directory / "mounts")
            mount_directories(cluster.directory_mounts, node.directory / "mounts")
            fill_synced(cluster.synced_mounts, node.directory / "mounts")
            task = self.store.setup_task(cluster.cluster_id, node)
            if task is not None:
                self._run_setup_task(cluster, node, task)
        except (MountError, _SetupFailed) as exc:
            log.warning("cluster %s: node %s is unusable: %s", cluster.name, node.node_id, exc)
            self.store.node_unusable(cluster.cluster_id, node.node_id, exc.failure)
            return
        self._pause(PREPARE_SECONDS - (time.monotonic() - started))
        if not self._stopped(cluster.cluster_id) and self.store.set_node_state(node.node_id, "idle",
                                                                               only_from="preparing"):
            self._on_change()

    def _run_setup_task(self, cluster: ClusterRecord, node: NodeRecord, task: Task) -> None:
        """Run the node's setup task in the sandbox (it may use the node's directory and mounts); its
        execution-<nodeId>.log goes next to its stdout (every node of the cluster writes into the same directory)."""
        cluster_id = cluster.cluster_id
        temp = self.sandbox.temp_dir()
        allowed = [node.directory, temp] + mounted_sources(self.shares, cluster.mounts, cluster.directory_mounts)
        env = task.env if temp is None else {**task.env, "TMPDIR": str(temp)}
        try:
            task.stdout.parent.mkdir(parents=True, exist_ok=True)
            log_path = task.stdout.parent / "execution-{}.log".format(node.node_id)
            with ExecutionLog(log_path) as execution_log, \
                    open(task.stdout, "wb") as out, open(task.stderr, "wb") as err:
                execution_log.write("setup task on node {}: {} -c <commandLine>".format(node.node_id, task.argv[0]))
                task_process = ProcessGroup(self.sandbox.command(task.argv, allowed, env, node.directory), env,
                                            node.directory, out, err)
                code = self._wait_setup_task(cluster_id, task_process)
                execution_log.write("setup task exited with code {}".format(code))
        except OSError as exc:
            raise _SetupFailed(Failure(SETUP_LAUNCH_FAILED, {"node_id": node.node_id, "reason": str(exc)})) from None
        finally:
            if temp is not None:
                shutil.rmtree(temp, ignore_errors=True)
        if code != 0:
            raise _SetupFailed(Failure(SETUP_FAILED, {"node_id": node.node_id, "exit_code": code}))

    def _wait_setup_task(self, cluster_id: int, task_process: ProcessGroup) -> int:
        with self._lock:
            self._setup_tasks.setdefault(cluster_id, set()).add(task_process)
        if self._stopped(cluster_id):
            task_process.stop(SETUP_TASK_STOP_GRACE)
        try:
            return task_process.wait()
        finally:
            with self._lock:
                self._setup_tasks.get(cluster_id, set()).discard(task_process)


class _SetupFailed(Exception):
    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.kind)
        self.failure = failure
