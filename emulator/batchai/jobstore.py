"""The runner's records of Batch AI: the ``JobStore`` (emulator/runner/records.py) over the same
SQLite tables as models.py, which keeps the REST side (resources and their JSON).

Here: queued jobs and their claims, cluster and node records, outcomes, and the mapping of the
runner's ``Failure`` records to the service's errors. What a started job runs is launches.py's.
"""
from __future__ import annotations

import datetime
import ipaddress
import json
import shutil
import sqlite3
import uuid
from pathlib import Path
from typing import Callable, Optional

from ..core.arm import utc_now
from ..core.paths import inside
from ..runner import records
from ..runner.environment import expand, host_environment, secret_values, user_variables
from ..runner.mounts import share_mounts
from ..runner.processes import job_marker
from ..runner.records import ClusterRecord, Failure, NodeRecord, Outcome, QueuedJob, Task
from . import exceptions as errors
from .launches import REFUSED, build_launch
from .validation import target_node_count, vm_priority

FIRST_NODE_IP = ipaddress.IPv4Address("10.0.0.4")  # Azure keeps .0-.3 of a subnet for itself


def _json(text: Optional[str], default=None):
    return json.loads(text) if text else default


def node_ip(seq: int) -> str:
    """The private IP of a cluster's node: 10.0.0.4, 10.0.0.5, ... in the order the cluster got them."""
    return str(FIRST_NODE_IP + seq)


def output_segment(subscription_id: str, row: sqlite3.Row) -> str:
    """jobOutputDirectoryPathSegment: ``{sub}/{rg}/workspaces/{ws}/experiments/{exp}/jobs/{job}/{uuid}``."""
    return "{}/{}/workspaces/{}/experiments/{}/jobs/{}/{}".format(
        subscription_id, row["resource_group"], row["workspace"], row["experiment"], row["name"], row["uuid"])


def shrink_policy(scale_settings: dict) -> str:
    """What a shrink does to jobs on the nodes it takes: manual scale follows ``nodeDeallocationOption``
    (requeue by default, as the service's); auto-scale shrinks only idle nodes, so it never has to."""
    option = (scale_settings.get("manual") or {}).get("nodeDeallocationOption", "requeue")
    return {"requeue": "requeue", "terminate": "terminate"}.get(option, "wait") if "manual" in scale_settings \
        else "wait"


def service_error(failure: Failure) -> dict:
    """The BatchAIError the service reported for what the runner saw."""
    details = failure.details
    kind = failure.kind
    if kind == records.FAILED:
        return errors.job_failed()
    if kind == records.PREPARATION_FAILED:
        return errors.job_preparation_failed()
    if kind == records.LAUNCH_FAILED:
        return errors.job_launch_failed(details["what"], details["reason"])
    if kind == records.MOUNT_FAILED:
        return errors.azure_file_mount_error(details["url"], details["path"], details["reason"])
    if kind == records.DIRECTORY_MOUNT_FAILED:
        return errors.file_server_mount_error(details["name"], details["path"], details["reason"])
    if kind == records.SYNCED_MOUNT_FAILED:
        return errors.blob_mount_error(details["name"], details["path"], details["reason"])
    if kind == records.WALL_CLOCK:
        return errors.job_wall_clock_exceeded(details["limit"])
    if kind == records.INTERRUPTED:
        return errors.job_interrupted()
    if kind == records.CLUSTER_MISSING:
        return errors.job_cluster_missing(details["cluster"])
    if kind == records.STOPPED:
        return details["reason"]  # the error the service stopped the job with
    if kind == records.NODE_REMOVED:
        return errors.job_node_removed(details["node_id"])
    if kind == records.SETUP_LAUNCH_FAILED:
        return errors.setup_task_launch_failed(details["node_id"], details["reason"])
    if kind == REFUSED:
        return errors.toolkit_not_supported(details["reason"])
    return errors.batchai_error("InternalError", "The emulator failed to run the job; see the emulator's log.")


class BatchAIJobStore:
    """Job and node records of Batch AI as the runner reads and writes them."""

    def __init__(self, store, subscription_id: str, nodes_root: Path,
                 output_notes: Callable[[sqlite3.Row], list] = lambda row: [],
                 file_server_mount: Callable[[dict], records.DirectoryMount] = None,
                 blob_mount: Callable[[dict], records.SyncedMount] = None) -> None:
        self.store = store
        self._blob_mount = blob_mount  # a job's azureBlobFileSystems entry as a SyncedMount
        self._file_server_mount = file_server_mount  # a mountVolumes.fileServers entry as a DirectoryMount
        self.subscription_id = subscription_id
        self.nodes_root = nodes_root
        self._output_notes = output_notes  # execution.log lines about a finished job's outputs

    # ---- clusters and nodes ------------------------------------------------------------------

    def cluster_dir(self, cluster: sqlite3.Row) -> Path:
        return inside(self.nodes_root, cluster["resource_group"], cluster["workspace"], cluster["name"])

    def _cluster_row(self, cluster_id: int) -> Optional[sqlite3.Row]:
        return self.store.query_one("SELECT * FROM bai_clusters WHERE id = ?", (cluster_id,))

    def cluster(self, cluster_id: int) -> Optional[ClusterRecord]:
        row = self._cluster_row(cluster_id)
        if row is None:
            return None
        props = _json(row["properties"])
        volumes = (props.get("nodeSetup") or {}).get("mountVolumes") or {}
        return ClusterRecord(cluster_id=row["id"], name=row["name"],
                             accepts_jobs=row["provisioning_state"] == "succeeded",
                             target_nodes=target_node_count(props["scaleSettings"]), version=row["properties"],
                             mounts=share_mounts(volumes.get("azureFileShares")),
                             directory_mounts=tuple(self._file_server_mount(entry)
                                                    for entry in volumes.get("fileServers") or []
                                                    if self._file_server_mount),
                             synced_mounts=tuple(self._blob_mount(entry)
                                                 for entry in volumes.get("azureBlobFileSystems") or []
                                                 if self._blob_mount),
                             shrink_policy=shrink_policy(props["scaleSettings"]))

    def clusters_to_resume(self) -> list:
        return [row["id"] for row in self.store.query("SELECT id FROM bai_clusters WHERE provisioning_state = "
                                                      "'succeeded'")]

    def _node_record(self, cluster: sqlite3.Row, row: sqlite3.Row) -> NodeRecord:
        return NodeRecord(node_id=row["node_id"], seq=row["seq"], state=row["state"], ip=node_ip(row["seq"]),
                          directory=inside(self.cluster_dir(cluster), row["node_id"]))

    def nodes(self, cluster_id: int) -> list:
        cluster = self._cluster_row(cluster_id)
        if cluster is None:
            return []
        return [self._node_record(cluster, row) for row in
                self.store.query("SELECT * FROM bai_nodes WHERE cluster_id = ? ORDER BY seq", (cluster_id,))]

    def add_nodes(self, cluster_id: int, count: int) -> list:
        """New nodes in state preparing; returns their ids, shaped like the service's: ``tvm-<n>_<k>-<time>z``,
        with ``-p`` after it on low-priority nodes (the service's recorded node ids)."""
        cluster = self._cluster_row(cluster_id)
        low_priority = cluster is not None and vm_priority(_json(cluster["properties"])) == "lowpriority"
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dt%H%M%Sz") + ("-p" if low_priority else "")
        batch = uuid.uuid4().int % 10**10
        now = utc_now()
        with self.store.transaction():
            used = {row["seq"] for row in self.store.query("SELECT seq FROM bai_nodes WHERE cluster_id = ?",
                                                           (cluster_id,))}
            free = (seq for seq in range(len(used) + count + 1) if seq not in used)  # lowest free IPs first
            ids = []
            for seq in [next(free) for _ in range(count)]:
                node_id = "tvm-{:010d}_{}-{}".format(batch, seq + 1, stamp)
                self.store.execute("INSERT INTO bai_nodes (node_id, cluster_id, seq, state, state_time) "
                                   "VALUES (?, ?, ?, 'preparing', ?)", (node_id, cluster_id, seq, now))
                ids.append(node_id)
        return ids

    def setup_task(self, cluster_id: int, node: NodeRecord) -> Optional[Task]:
        """The node setup task in a bash subshell with its variables and secrets; its output goes where
        the service put it: ``stdout-<nodeId>.txt`` and ``stderr-<nodeId>.txt`` directly under
        ``{stdOutErrPathPrefix}/{stdOutErrPathSuffix}`` (the Azure SDK's recorded setup-task test)."""
        row = self._cluster_row(cluster_id)
        task = ((_json(row["properties"]) if row else {}).get("nodeSetup") or {}).get("setupTask")
        if not task:
            return None
        azure = {"AZ_BATCHAI_MOUNT_ROOT": str(node.directory / "mounts"), "AZ_BATCHAI_NUM_GPUS": "0"}
        variables = {**azure, **user_variables(task.get("environmentVariables"), azure)}
        env = {**host_environment(), **variables, **secret_values(task.get("secrets"))}
        log_dir = Path(expand(self._setup_log_dir(task), variables))
        shell = "/bin/bash" if Path("/bin/bash").exists() else "/bin/sh"
        return Task(name="setup task", argv=[shell, "-c", task["commandLine"]], env=env,
                    stdout=log_dir / "stdout-{}.txt".format(node.node_id),
                    stderr=log_dir / "stderr-{}.txt".format(node.node_id))

    @staticmethod
    def _setup_log_dir(task: dict) -> str:
        return "{}/{}".format(task["stdOutErrPathPrefix"], task["stdOutErrPathSuffix"])

    def set_node_state(self, node_id: str, state: str, only_from: Optional[str] = None) -> bool:
        sql = "UPDATE bai_nodes SET state = ?, state_time = ? WHERE node_id = ?"
        params: tuple = (state, utc_now(), node_id)
        if only_from:
            sql += " AND state = ?"
            params += (only_from,)
        return self.store.execute(sql, params) == 1

    def node_unusable(self, cluster_id: int, node_id: str, failure: Failure) -> None:
        """A node that failed to mount or set up: unusable, with the reason in the cluster's errors."""
        if failure.kind == records.SETUP_FAILED:
            row = self._cluster_row(cluster_id)
            task = ((_json(row["properties"]) if row else {}).get("nodeSetup") or {}).get("setupTask") or {}
            error = errors.setup_task_failed(node_id, failure.details["exit_code"], self._setup_log_dir(task))
        else:
            error = service_error(failure)
        with self.store.transaction():
            self.set_node_state(node_id, "unusable")
            row = self.store.query_one("SELECT errors FROM bai_clusters WHERE id = ?", (cluster_id,))
            if row is not None:
                known = _json(row["errors"], [])
                if error not in known:
                    self.store.execute("UPDATE bai_clusters SET errors = ? WHERE id = ?",
                                       (json.dumps(known + [error]), cluster_id))

    def remove_node(self, cluster_id: int, node_id: str) -> None:
        row = self._cluster_row(cluster_id)
        if row is not None:
            shutil.rmtree(self.cluster_dir(row) / node_id, ignore_errors=True)  # never follows the share symlinks
        self.store.execute("DELETE FROM bai_nodes WHERE node_id = ?", (node_id,))

    def set_allocation_state(self, cluster_id: int, state: str, version: str) -> bool:
        """Set allocationState unless the cluster's properties changed since ``version`` was read
        (a resize arrived meanwhile); the transition time moves only on a change."""
        return self.store.execute(
            "UPDATE bai_clusters SET allocation_state_time = CASE WHEN allocation_state = ? THEN "
            "allocation_state_time ELSE ? END, allocation_state = ? WHERE id = ? AND properties = ?",
            (state, utc_now(), state, cluster_id, version)) == 1

    def reset_nodes_after_restart(self) -> None:
        """Nodes survive a restart, their jobs do not: running nodes are idle again; half-made nodes
        (preparing, leaving) are dropped and the allocator makes up the count."""
        self.store.execute("UPDATE bai_nodes SET state = 'idle', job_id = NULL, state_time = ? WHERE state = 'running'",
                           (utc_now(),))
        for node in self.store.query("SELECT node_id, cluster_id FROM bai_nodes WHERE state IN ('preparing', "
                                     "'leaving')"):
            self.remove_node(node["cluster_id"], node["node_id"])

    # ---- jobs ----------------------------------------------------------------------------------

    def queued_jobs(self) -> list:
        """Jobs waiting for nodes, highest priority first, then oldest first."""
        rows = self.store.query(
            "SELECT j.id, j.name, j.uuid, j.cluster, j.properties, c.id AS cluster_id FROM bai_jobs j "
            "LEFT JOIN bai_clusters c "
            "ON c.resource_group = j.resource_group AND c.workspace = j.workspace AND c.name = j.cluster "
            "WHERE j.execution_state = 'queued' AND j.provisioning_state = 'succeeded' ORDER BY j.priority DESC, j.id")
        return [QueuedJob(job_id=row["id"], name=row["name"], cluster_id=row["cluster_id"], cluster_name=row["cluster"],
                          node_count=_json(row["properties"])["nodeCount"], marker=job_marker(row)) for row in rows]

    def claim_nodes(self, job_id: int, node_ids: list) -> bool:
        """Atomically move a queued job to running on idle nodes; False if either changed meanwhile."""
        now = utc_now()
        marks = ",".join("?" * len(node_ids))
        try:
            with self.store.transaction():
                if self.store.execute("UPDATE bai_jobs SET execution_state = 'running', execution_state_time = ?, "
                                      "start_time = ? WHERE id = ? AND execution_state = 'queued' AND "
                                      "provisioning_state = 'succeeded'", (now, now, job_id)) != 1:
                    raise _Changed
                if self.store.execute("UPDATE bai_nodes SET state = 'running', job_id = ?, state_time = ? WHERE "
                                      "node_id IN ({}) AND state = 'idle'".format(marks),
                                      (job_id, now, *node_ids)) != len(node_ids):
                    raise _Changed
        except _Changed:
            return False
        return True

    def fail_queued_job(self, job_id: int, failure) -> bool:
        """A queued job that will never run (terminated, cluster gone): failed, start = end, no exit code.
        ``failure``: a runner Failure or the service's own error."""
        error = service_error(failure) if isinstance(failure, Failure) else failure
        now = utc_now()
        return self.store.execute(
            "UPDATE bai_jobs SET execution_state = 'failed', execution_state_time = ?, start_time = ?, end_time = ?, "
            "errors = ? WHERE id = ? AND execution_state = 'queued'", (now, now, now, json.dumps([error]), job_id)) == 1

    def launch(self, job_id: int, nodes: list):
        """What the job runs on ``nodes`` (launches.py)."""
        row = self.store.query_one("SELECT * FROM bai_jobs WHERE id = ?", (job_id,))
        launch = build_launch(row, _json(row["properties"]), nodes, output_segment(self.subscription_id, row),
                              self._blob_mount)
        launch.final_notes = lambda: self._output_notes(row)
        node_row = self.store.query_one("SELECT cluster_id FROM bai_nodes WHERE node_id = ?", (nodes[0].node_id,))
        cluster = self.cluster(node_row["cluster_id"]) if node_row else None
        for node_launch in launch.nodes:  # the cluster's Blob containers go back after every job on the node
            node_launch.node_synced_mounts = cluster.synced_mounts if cluster else ()
            node_launch.node_mount_root = node_launch.node.directory / "mounts"
        return launch

    def job_process(self, job_id: int, pid: int, start_time: Optional[int]) -> None:
        self.store.execute("UPDATE bai_jobs SET pid = ?, pid_start_time = ? WHERE id = ?", (pid, start_time, job_id))

    def job_terminating(self, job_ids: list) -> None:
        if job_ids:
            self.store.execute("UPDATE bai_jobs SET execution_state = 'terminating', execution_state_time = ? WHERE "
                               "execution_state = 'running' AND id IN ({})".format(",".join("?" * len(job_ids))),
                               (utc_now(), *job_ids))

    def job_finished(self, job_id: int, outcome: Outcome) -> None:
        """Record how a started job ended and give its nodes back (idle)."""
        job_errors = [service_error(outcome.failure)] if outcome.failure else None
        now = utc_now()
        with self.store.transaction():
            self.store.execute("UPDATE bai_jobs SET execution_state = ?, execution_state_time = ?, end_time = ?, "
                               "exit_code = ?, errors = ?, pid = NULL, pid_start_time = NULL WHERE id = ?",
                               (outcome.state, now, now, outcome.exit_code,
                                json.dumps(job_errors) if job_errors else None, job_id))
            self._free_nodes(job_id, now)

    def job_requeued(self, job_id: int) -> None:
        """A job whose node was preempted is queued again, as the service did: executionInfo goes (it is
        shown only once the job runs; startTime is then its latest start) and its other nodes are idle."""
        now = utc_now()
        with self.store.transaction():
            self.store.execute("UPDATE bai_jobs SET execution_state = 'queued', execution_state_time = ?, "
                               "start_time = NULL, end_time = NULL, exit_code = NULL, errors = NULL, pid = NULL, "
                               "pid_start_time = NULL WHERE id = ?", (now, job_id))
            self._free_nodes(job_id, now)

    def _free_nodes(self, job_id: int, now: str) -> None:
        """The job's nodes take jobs again, but for one that is leaving (a preempted node)."""
        self.store.execute("UPDATE bai_nodes SET state = 'idle', job_id = NULL, state_time = ? WHERE job_id = ? "
                           "AND state = 'running'", (now, job_id))
        self.store.execute("UPDATE bai_nodes SET job_id = NULL WHERE job_id = ?", (job_id,))

    def interrupted_jobs(self) -> list:
        """Jobs recorded as started when the emulator (re)starts: their runner is gone."""
        return [(row["id"], row["name"], row["pid"], row["pid_start_time"], job_marker(row)) for row in self.store.query(
            "SELECT id, name, uuid, pid, pid_start_time FROM bai_jobs WHERE execution_state IN ('running', "
            "'terminating')")]


class _Changed(Exception):
    """Rolls back a claim whose job or nodes changed under it."""
