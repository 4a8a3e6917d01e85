"""Cluster nodes simulated on this machine.

A node is a directory ``<data_dir>/nodes/<rg>/<ws>/<cluster>/<nodeId>``. Allocation takes a node
through preparing (its Azure File shares are mounted as symlinks under ``<node>/mounts`` and the
setup task runs) to idle, or to unusable when that fails. While any node is missing or surplus
the cluster's allocationState is resizing; then steady. The delays below keep every state visible
to a client that polls, yet a one-node cluster is steady in about a fifth of a second.
"""
from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from pathlib import Path
from typing import Callable, Optional

from ..batchai import exceptions as errors
from ..batchai.validation import target_node_count
from .environment import expand, host_environment, secret_values, user_variables
from .processes import ExecutionLog, ProcessGroup

log = logging.getLogger("emulator.runner")

ALLOCATE_SECONDS = 0.1   # resizing, before the new nodes exist
PREPARE_SECONDS = 0.1    # the least time a node spends preparing
LEAVE_SECONDS = 0.05     # a removed node is 'leaving' this long
RECHECK_SECONDS = 0.1    # how often a shrink waiting for busy nodes looks again
SETUP_TASK_STOP_GRACE = 1.0


class NodeError(Exception):
    """Preparing a node (or a job's own mounts) failed; ``error`` is the BatchAIError to report."""

    def __init__(self, error: dict) -> None:
        super().__init__(error["message"])
        self.error = error


def mount_shares(files, shares: Optional[list], mount_root: Path) -> dict:
    """Mount each ``azureFileShares`` entry as a symlink ``mount_root/<relativeMountPath>`` to the share's
    directory, after checking the account name and key. Returns {relativeMountPath: share}."""
    table = {}
    for share in shares or []:
        relative = share["relativeMountPath"].strip("/")
        target = mount_root / relative
        url = share["azureFileUrl"]

        def failure(reason: str) -> NodeError:
            return NodeError(errors.azure_file_mount_error(url, str(target), reason))

        try:
            name = files.share_from_url(url)
        except ValueError as exc:
            raise failure(str(exc)) from None
        if not files.check_account_key(share.get("accountName"), (share.get("credentials") or {}).get("accountKey")):
            raise failure("mount error(13): Permission denied (wrong storage account name or key)")
        try:
            source = files.share_path(name)
        except LookupError:
            raise failure("mount error(2): No such file or directory (there is no share '{}')".format(name)) from None
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink():
            target.unlink()
        elif target.is_dir():
            try:
                target.rmdir()
            except OSError:
                raise failure("the mount point exists and is not empty") from None
        target.symlink_to(source, target_is_directory=True)
        table[relative] = name
    return table


class ClusterAllocator:
    """Brings each cluster's nodes to its target count, one background thread per resizing cluster."""

    def __init__(self, backend, on_change: Callable[[], None]) -> None:
        self.backend = backend
        self._on_change = on_change  # wakes the scheduler: nodes became idle
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
                                      name="batchai-allocate-{}".format(cluster_id))
            self._threads[cluster_id] = thread
        thread.start()

    def resume_all(self) -> None:
        """After a restart: finish every resize that was under way (and check every count)."""
        for row in self.backend.store.query("SELECT id FROM bai_clusters WHERE provisioning_state = 'succeeded'"):
            self.reconcile(row["id"])

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
                cluster = self.backend.cluster_by_id(cluster_id)
                if cluster is None or cluster["provisioning_state"] != "succeeded":
                    return
                target = target_node_count(json.loads(cluster["properties"])["scaleSettings"])
                nodes = self.backend.nodes(cluster_id)
                if len(nodes) < target:
                    self._grow(cluster, target - len(nodes))
                elif len(nodes) > target:
                    if not self._shrink(cluster, nodes, len(nodes) - target):
                        self._pause(RECHECK_SECONDS)  # the surplus nodes are busy: wait for their jobs
                elif self.backend.set_allocation_state(cluster_id, "steady", cluster["properties"]):
                    with self._lock:
                        if cluster_id not in self._dirty:
                            return
        except Exception:
            log.exception("allocation of cluster %s failed", cluster_id)
        finally:
            with self._lock:
                if self._threads.get(cluster_id) is threading.current_thread():
                    del self._threads[cluster_id]

    def _grow(self, cluster, count: int) -> None:
        self._pause(ALLOCATE_SECONDS)
        if self._stopped(cluster["id"]):
            return
        node_ids = self.backend.add_nodes(cluster["id"], count)
        log.info("cluster %s: preparing %d node(s)", cluster["name"], count)
        workers = [threading.Thread(target=self._prepare_node, args=(cluster, node_id), daemon=True,
                                    name="batchai-prepare-" + node_id) for node_id in node_ids]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

    def _shrink(self, cluster, nodes: list, surplus: int) -> bool:
        """Remove up to ``surplus`` nodes that run nothing (unusable first, then the newest); False if none could go."""
        candidates = sorted((n for n in nodes if n["state"] in ("idle", "unusable")),
                            key=lambda n: (n["state"] != "unusable", -n["seq"]))
        leaving = [n["node_id"] for n in candidates[:surplus]
                   if self.backend.set_node_state(n["node_id"], "leaving", only_from=n["state"])]
        if not leaving:
            return False
        self._pause(LEAVE_SECONDS)
        for node_id in leaving:
            self.backend.remove_node(cluster, node_id)
        log.info("cluster %s: removed %d node(s)", cluster["name"], len(leaving))
        return True

    # ---- one node ----------------------------------------------------------------------------

    def _prepare_node(self, cluster, node_id: str) -> None:
        started = time.monotonic()
        node_dir = self.backend.node_dir(cluster, node_id)
        shutil.rmtree(node_dir, ignore_errors=True)
        (node_dir / "mounts").mkdir(parents=True, exist_ok=True)
        node_setup = json.loads(cluster["properties"]).get("nodeSetup") or {}
        try:
            mount_shares(self.backend.files, (node_setup.get("mountVolumes") or {}).get("azureFileShares"),
                         node_dir / "mounts")
            if node_setup.get("setupTask"):
                self._run_setup_task(cluster, node_id, node_dir, node_setup["setupTask"])
        except NodeError as exc:
            log.warning("cluster %s: node %s is unusable: %s", cluster["name"], node_id, exc)
            self.backend.node_unusable(cluster["id"], node_id, exc.error)
            return
        self._pause(PREPARE_SECONDS - (time.monotonic() - started))
        if not self._stopped(cluster["id"]) and self.backend.set_node_state(node_id, "idle", only_from="preparing"):
            self._on_change()

    def _run_setup_task(self, cluster, node_id: str, node_dir: Path, task: dict) -> None:
        """Run the setup task in a bash subshell with its variables and secrets; logs go to
        ``{stdOutErrPathPrefix}/{stdOutErrPathSuffix}/{nodeId}/``."""
        azure = {"AZ_BATCHAI_MOUNT_ROOT": str(node_dir / "mounts"), "AZ_BATCHAI_NUM_GPUS": "0"}
        variables = {**azure, **user_variables(task.get("environmentVariables"), azure)}
        env = {**host_environment(), **variables, **secret_values(task.get("secrets"))}
        literal_dir = "{}/{}/{}".format(task["stdOutErrPathPrefix"], task["stdOutErrPathSuffix"], node_id)
        log_dir = Path(expand(literal_dir, variables))
        shell = "/bin/bash" if Path("/bin/bash").exists() else "/bin/sh"
        try:
            log_dir.mkdir(parents=True, exist_ok=True)
            with ExecutionLog(log_dir / "execution.log") as execution_log, \
                    open(log_dir / "stdout.txt", "wb") as out, open(log_dir / "stderr.txt", "wb") as err:
                execution_log.write("setup task on node {}: {} -c <commandLine>".format(node_id, shell))
                task_process = ProcessGroup([shell, "-c", task["commandLine"]], env, node_dir, out, err)
                code = self._wait_setup_task(cluster["id"], task_process)
                execution_log.write("setup task exited with code {}".format(code))
        except OSError as exc:
            raise NodeError(errors.setup_task_launch_failed(node_id, str(exc))) from None
        if code != 0:
            raise NodeError(errors.setup_task_failed(node_id, code, literal_dir))

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
