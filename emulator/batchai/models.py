"""Batch AI state in SQLite and the operations on it.

Tables (names never change, so each row carries its parents' names instead of joins):
  bai_workspaces  (resource_group, name)                       location, tags
  bai_experiments (resource_group, workspace, name)
  bai_clusters    (resource_group, workspace, name)            properties JSON as submitted, allocation state, errors
  bai_nodes       node_id -> cluster_id, seq, state, job_id   simulated VMs: preparing/idle/running/unusable/leaving
  bai_jobs        (resource_group, workspace, experiment, name) properties JSON as submitted, execution state and info,
                                                              pid + process start time of the running process
Secrets are stored (a queued job needs them after a restart) but never leave through ``*_json``.

This module is the REST side (resources, their JSON, listOutputFiles); the records the runner
reads and writes (queued jobs, nodes, outcomes) are jobstore.py's, over the same tables, and what
a started job runs is launches.py's. Processes and threads are the runner's (emulator/runner).
"""
from __future__ import annotations

import datetime
import json
import logging
import posixpath
import shutil
import sqlite3
import uuid
from pathlib import Path
from typing import Any, Callable, NamedTuple, Optional

from ..core.arm import ArmError, BackgroundWork, utc_now
from ..core.context import Context
from ..files.exceptions import StorageError
from ..runner.environment import expand
from ..runner.mounts import locate_on_share, mount_table, path_parts, share_mounts
from . import exceptions as errors
from .blobmounts import BlobfuseMounts
from .fileservers import FileServers
from .jobstore import BatchAIJobStore, output_segment
from .quotas import ClusterDemand, Quotas
from .validation import (AUTOSCALE_TARGET, PRIORITIES, TOOLKITS, check_cluster, check_job, check_scale_settings, check_tags,
                         max_node_count, normalize_location, strip_secrets, target_node_count, toolkit_of, vm_priority)

log = logging.getLogger("emulator.batchai")

PROVIDER = "Microsoft.BatchAI"
STDOUTERR = "stdouterr"
REMOTE_LOGIN_BASE_PORT = 50000

SCHEMA = """
CREATE TABLE IF NOT EXISTS bai_workspaces (
    id INTEGER PRIMARY KEY,
    resource_group TEXT NOT NULL COLLATE NOCASE, name TEXT NOT NULL COLLATE NOCASE,
    location TEXT NOT NULL, tags TEXT NOT NULL, creation_time TEXT NOT NULL,
    provisioning_state TEXT NOT NULL, provisioning_state_time TEXT NOT NULL,
    UNIQUE (resource_group, name));
CREATE TABLE IF NOT EXISTS bai_experiments (
    id INTEGER PRIMARY KEY,
    resource_group TEXT NOT NULL COLLATE NOCASE, workspace TEXT NOT NULL COLLATE NOCASE,
    name TEXT NOT NULL COLLATE NOCASE, creation_time TEXT NOT NULL,
    provisioning_state TEXT NOT NULL, provisioning_state_time TEXT NOT NULL,
    UNIQUE (resource_group, workspace, name));
CREATE TABLE IF NOT EXISTS bai_clusters (
    id INTEGER PRIMARY KEY,
    resource_group TEXT NOT NULL COLLATE NOCASE, workspace TEXT NOT NULL COLLATE NOCASE,
    name TEXT NOT NULL COLLATE NOCASE, location TEXT NOT NULL, properties TEXT NOT NULL,
    creation_time TEXT NOT NULL, provisioning_state TEXT NOT NULL, provisioning_state_time TEXT NOT NULL,
    allocation_state TEXT NOT NULL, allocation_state_time TEXT NOT NULL, errors TEXT NOT NULL DEFAULT '[]',
    UNIQUE (resource_group, workspace, name));
CREATE TABLE IF NOT EXISTS bai_nodes (
    node_id TEXT PRIMARY KEY, cluster_id INTEGER NOT NULL, seq INTEGER NOT NULL,
    state TEXT NOT NULL, job_id INTEGER, state_time TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS bai_nodes_cluster ON bai_nodes (cluster_id, state);
CREATE TABLE IF NOT EXISTS bai_jobs (
    id INTEGER PRIMARY KEY,
    resource_group TEXT NOT NULL COLLATE NOCASE, workspace TEXT NOT NULL COLLATE NOCASE,
    experiment TEXT NOT NULL COLLATE NOCASE, name TEXT NOT NULL COLLATE NOCASE,
    uuid TEXT NOT NULL, location TEXT NOT NULL, properties TEXT NOT NULL, mounts TEXT NOT NULL,
    cluster TEXT NOT NULL COLLATE NOCASE, priority INTEGER NOT NULL, creation_time TEXT NOT NULL,
    provisioning_state TEXT NOT NULL, provisioning_state_time TEXT NOT NULL,
    execution_state TEXT NOT NULL, execution_state_time TEXT NOT NULL,
    start_time TEXT, end_time TEXT, exit_code INTEGER, errors TEXT,
    pid INTEGER, pid_start_time INTEGER,
    UNIQUE (resource_group, workspace, experiment, name));
CREATE INDEX IF NOT EXISTS bai_jobs_queue ON bai_jobs (execution_state, priority DESC, id);
"""


class Lro(NamedTuple):
    """A 202 to send: the operation to poll and the location its URLs name."""
    op_id: str
    location: str


def _json(text: Optional[str], default: Any = None) -> Any:
    return json.loads(text) if text else default


def _iso_mtime(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).isoformat(
        timespec="milliseconds").replace("+00:00", "Z")


class BatchAIBackend:
    """Workspaces, experiments, clusters, nodes and jobs of one emulator."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.store = ctx.store
        self.subscription_id = ctx.identity.subscription_id
        self.nodes_root = ctx.data_dir / "nodes"
        self.store.ensure_schema(SCHEMA)
        self.work = BackgroundWork(ctx.operations)
        # what the runner sees
        self.file_servers = FileServers(self.store, ctx.data_dir / "fileservers", self.subscription_id)
        self.blob_mounts = BlobfuseMounts(lambda: ctx.services["blob"].backend,
                                          lambda account, key: self.files.check_account_key(account, key))
        self.records = BatchAIJobStore(self.store, self.subscription_id, self.nodes_root, self.unlisted_output_notes,
                                       self.file_servers.mount, self.blob_mounts.mount)
        self.runner = None  # the JobRunner, attached by create_service
        self.preemptions = None  # low-priority nodes taken away (preemption.py), attached by create_service
        self.quotas = Quotas(self.store, self.cluster_demands)

    # ---- neighbours --------------------------------------------------------------------------

    @property
    def files(self):
        """The Azure Files backend: share paths, account keys, SAS URLs."""
        return self.ctx.services["files"].backend

    def resource_group(self, name: str, for_update: bool = False) -> str:
        """The group's name as created; 404 when missing, 409 when it is being deleted and we write."""
        group = self.ctx.services["resourcemanager"].backend.find_group(name)
        if group is None:
            raise errors.resource_group_not_found(name)
        if for_update and group["provisioning_state"] == "Deleting":
            raise errors.resource_group_being_deleted(group["name"])
        return group["name"]

    def resource_id(self, rg: str, *path: str) -> str:
        """``/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.BatchAI/{path...}``."""
        return "/subscriptions/{}/resourceGroups/{}/providers/{}/{}".format(
            self.subscription_id, rg, PROVIDER, "/".join(path))

    def _lro(self, resource_id: str, location: str, name: str, work: Optional[Callable[[], None]] = None) -> Lro:
        """Begin an operation; finish it now, or when ``work`` has run in the background."""
        op_id = self.ctx.operations.begin(resource_id)
        if work is None:
            self.ctx.operations.finish(op_id)
        else:
            self.work.run(op_id, name, work)
        return Lro(op_id, location)

    def _find(self, table: str, **key: str) -> Optional[sqlite3.Row]:
        """The row of ``table`` with these column values (names compare case-insensitively), or None."""
        where = " AND ".join("{} = ?".format(column) for column in key)
        return self.store.query_one("SELECT * FROM {} WHERE {}".format(table, where), tuple(key.values()))

    # ---- workspaces --------------------------------------------------------------------------

    def _workspace_row(self, rg: str, name: str) -> sqlite3.Row:
        row = self._find("bai_workspaces", resource_group=rg, name=name)
        if row is None:
            raise errors.workspace_not_found(name)
        return row

    def _writable_workspace(self, rg: str, name: str) -> sqlite3.Row:
        row = self._workspace_row(self.resource_group(rg, for_update=True), name)
        if row["provisioning_state"] == "deleting":
            raise errors.being_deleted("workspace", row["name"])
        return row

    def workspace_json(self, row: sqlite3.Row) -> dict:
        return {
            "id": self.resource_id(row["resource_group"], "workspaces", row["name"]),
            "name": row["name"], "type": PROVIDER + "/workspaces", "location": row["location"],
            "tags": _json(row["tags"], {}),
            "properties": {"provisioningState": row["provisioning_state"],
                           "provisioningStateTransitionTime": row["provisioning_state_time"],
                           "creationTime": row["creation_time"]},
        }

    def create_workspace(self, rg: str, name: str, body: dict) -> dict:
        """PUT: create, or update the tags of an existing workspace (ARM PUTs are idempotent)."""
        rg = self.resource_group(rg, for_update=True)
        location = normalize_location(body.get("location"))
        tags = json.dumps(check_tags(body.get("tags")))
        existing = self._find("bai_workspaces", resource_group=rg, name=name)
        if existing is not None:
            if existing["provisioning_state"] == "deleting":
                raise errors.being_deleted("workspace", existing["name"])
            if existing["location"] != location:
                raise errors.invalid_parameter("The workspace {} is in location '{}'; it cannot move to '{}'.".format(
                    existing["name"], existing["location"], location))
            self.store.execute("UPDATE bai_workspaces SET tags = ? WHERE id = ?", (tags, existing["id"]))
        else:
            now = utc_now()
            self.store.execute(
                "INSERT INTO bai_workspaces (resource_group, name, location, tags, creation_time, provisioning_state, "
                "provisioning_state_time) VALUES (?, ?, ?, ?, ?, 'succeeded', ?)", (rg, name, location, tags, now, now))
            log.info("workspace %s/%s created", rg, name)
        return self.get_workspace(rg, name)

    def get_workspace(self, rg: str, name: str) -> dict:
        return self.workspace_json(self._workspace_row(self.resource_group(rg), name))

    def list_workspaces(self, rg: Optional[str] = None) -> list:
        if rg is None:
            rows = self.store.query("SELECT * FROM bai_workspaces ORDER BY resource_group, name")
        else:
            rows = self.store.query("SELECT * FROM bai_workspaces WHERE resource_group = ? ORDER BY name",
                                    (self.resource_group(rg),))
        return [self.workspace_json(row) for row in rows]

    def update_workspace(self, rg: str, name: str, body: dict) -> dict:
        row = self._writable_workspace(rg, name)
        if "tags" in body:
            self.store.execute("UPDATE bai_workspaces SET tags = ? WHERE id = ?",
                               (json.dumps(check_tags(body["tags"])), row["id"]))
        return self.get_workspace(rg, name)

    def delete_workspace(self, rg: str, name: str) -> Optional[Lro]:
        """None when there is nothing to delete (ARM deletes are idempotent: 204)."""
        row = self._find("bai_workspaces", resource_group=self.resource_group(rg), name=name)
        if row is None:
            return None
        self._set_deleting("bai_workspaces", row["id"])
        return self._lro(self.resource_id(row["resource_group"], "workspaces", row["name"]), row["location"],
                         "delete-workspace", lambda: self._delete_workspace_now(row))

    def _set_deleting(self, table: str, row_id: int) -> None:
        self.store.execute("UPDATE {} SET provisioning_state = 'deleting', provisioning_state_time = ? "
                           "WHERE id = ?".format(table), (utc_now(), row_id))

    def _delete_workspace_now(self, row: sqlite3.Row) -> None:
        """Stop and remove everything in the workspace, then the workspace (blocks while jobs stop)."""
        rg, ws = row["resource_group"], row["name"]
        self._set_deleting("bai_workspaces", row["id"])
        self._delete_jobs_now("resource_group = ? AND workspace = ?", (rg, ws))
        for cluster in self.store.query("SELECT * FROM bai_clusters WHERE resource_group = ? AND workspace = ?",
                                        (rg, ws)):
            self._delete_cluster_now(cluster)
        self.file_servers.delete_in_workspace(rg, ws)
        self.store.execute("DELETE FROM bai_experiments WHERE resource_group = ? AND workspace = ?", (rg, ws))
        self.store.execute("DELETE FROM bai_workspaces WHERE id = ?", (row["id"],))
        shutil.rmtree(self.nodes_root / rg / ws, ignore_errors=True)  # empty by now
        log.info("workspace %s/%s deleted", rg, ws)

    def delete_resource_group(self, rg: str) -> None:
        """Called by Resource Manager while it deletes a group: remove all its Batch AI resources (blocks)."""
        for row in self.store.query("SELECT * FROM bai_workspaces WHERE resource_group = ?", (rg,)):
            self._delete_workspace_now(row)

    # ---- experiments -------------------------------------------------------------------------

    def _experiment_row(self, rg: str, ws: str, name: str) -> sqlite3.Row:
        row = self._find("bai_experiments", resource_group=rg, workspace=ws, name=name)
        if row is None:
            raise errors.experiment_not_found(name)
        return row

    def experiment_json(self, row: sqlite3.Row) -> dict:
        return {
            "id": self.resource_id(row["resource_group"], "workspaces", row["workspace"], "experiments", row["name"]),
            "name": row["name"], "type": PROVIDER + "/workspaces/experiments",
            "properties": {"provisioningState": row["provisioning_state"],
                           "provisioningStateTransitionTime": row["provisioning_state_time"],
                           "creationTime": row["creation_time"]},
        }

    def create_experiment(self, rg: str, ws: str, name: str) -> dict:
        workspace = self._writable_workspace(rg, ws)
        rg, ws = workspace["resource_group"], workspace["name"]
        now = utc_now()
        self.store.execute(
            "INSERT OR IGNORE INTO bai_experiments (resource_group, workspace, name, creation_time, "
            "provisioning_state, provisioning_state_time) VALUES (?, ?, ?, ?, 'succeeded', ?)",
            (rg, ws, name, now, now))
        row = self._experiment_row(rg, ws, name)
        if row["provisioning_state"] == "deleting":
            raise errors.being_deleted("experiment", row["name"])
        return self.experiment_json(row)

    def get_experiment(self, rg: str, ws: str, name: str) -> dict:
        workspace = self._workspace_row(self.resource_group(rg), ws)
        return self.experiment_json(self._experiment_row(workspace["resource_group"], workspace["name"], name))

    def list_experiments(self, rg: str, ws: str) -> list:
        workspace = self._workspace_row(self.resource_group(rg), ws)
        rows = self.store.query("SELECT * FROM bai_experiments WHERE resource_group = ? AND workspace = ? "
                                "ORDER BY name", (workspace["resource_group"], workspace["name"]))
        return [self.experiment_json(row) for row in rows]

    def delete_experiment(self, rg: str, ws: str, name: str) -> Optional[Lro]:
        workspace = self._workspace_row(self.resource_group(rg), ws)
        row = self._find("bai_experiments", resource_group=workspace["resource_group"], workspace=workspace["name"],
                         name=name)
        if row is None:
            return None
        self._set_deleting("bai_experiments", row["id"])

        def delete() -> None:
            self._delete_jobs_now("resource_group = ? AND workspace = ? AND experiment = ?",
                                  (row["resource_group"], row["workspace"], row["name"]))
            self.store.execute("DELETE FROM bai_experiments WHERE id = ?", (row["id"],))

        return self._lro(self.experiment_json(row)["id"], workspace["location"], "delete-experiment", delete)

    # ---- clusters ----------------------------------------------------------------------------

    def _cluster_row(self, rg: str, ws: str, name: str) -> sqlite3.Row:
        row = self.find_cluster(rg, ws, name)
        if row is None:
            raise errors.cluster_not_found(name)
        return row

    def find_cluster(self, rg: str, ws: str, name: str) -> Optional[sqlite3.Row]:
        return self._find("bai_clusters", resource_group=rg, workspace=ws, name=name)

    def cluster_by_id(self, cluster_id: int) -> Optional[sqlite3.Row]:
        return self._find("bai_clusters", id=cluster_id)

    def cluster_json(self, row: sqlite3.Row) -> dict:
        props = strip_secrets(_json(row["properties"]))
        counts = dict.fromkeys(("idle", "running", "preparing", "unusable", "leaving"), 0)
        for state_row in self.store.query("SELECT state, COUNT(*) AS n FROM bai_nodes WHERE cluster_id = ? "
                                          "GROUP BY state", (row["id"],)):
            counts[state_row["state"]] = state_row["n"]
        props.update({
            "creationTime": row["creation_time"],
            "provisioningState": row["provisioning_state"],
            "provisioningStateTransitionTime": row["provisioning_state_time"],
            "allocationState": row["allocation_state"],
            "allocationStateTransitionTime": row["allocation_state_time"],
            "errors": _json(row["errors"], []) or None,
            "currentNodeCount": sum(counts.values()),
            "nodeStateCounts": {state + "NodeCount": count for state, count in counts.items()},
        })
        return {"id": self.resource_id(row["resource_group"], "workspaces", row["workspace"], "clusters", row["name"]),
                "name": row["name"], "type": PROVIDER + "/workspaces/clusters", "location": row["location"],
                "properties": props}

    def create_cluster(self, rg: str, ws: str, name: str, body: dict) -> Lro:
        workspace = self._writable_workspace(rg, ws)
        rg, ws = workspace["resource_group"], workspace["name"]
        props = check_cluster(body)
        existing = self.find_cluster(rg, ws, name)
        if existing is not None:
            return self._repeat_put("cluster", existing, props, workspace["location"])
        self.quotas.check(workspace["location"], props["vmSize"], props["vmPriority"],
                          target_node_count(props["scaleSettings"]))
        setup_task = props.get("nodeSetup", {}).get("setupTask")
        if setup_task:  # where the setup task's logs go, unique per cluster (reference 2.2)
            setup_task["stdOutErrPathSuffix"] = "{}/{}/workspaces/{}/clusters/{}/{}".format(
                self.subscription_id, rg, ws, name, uuid.uuid4())
        now = utc_now()
        self.store.execute(
            "INSERT INTO bai_clusters (resource_group, workspace, name, location, properties, creation_time, "
            "provisioning_state, provisioning_state_time, allocation_state, allocation_state_time) "
            "VALUES (?, ?, ?, ?, ?, ?, 'succeeded', ?, 'resizing', ?)",
            (rg, ws, name, workspace["location"], json.dumps(props), now, now, now))
        row = self._cluster_row(rg, ws, name)
        log.info("cluster %s/%s/%s created with %d node(s)", rg, ws, name, target_node_count(props["scaleSettings"]))
        self.runner.reconcile(row["id"])
        return self._lro(self.cluster_json(row)["id"], workspace["location"], "create-cluster")

    def _repeat_put(self, kind: str, row: sqlite3.Row, props: dict, location: str) -> Lro:
        """A PUT on an existing cluster or job: fine when nothing changes (retries), else 409."""
        stored = _json(row["properties"])
        stored.get("nodeSetup", {}).get("setupTask", {}).pop("stdOutErrPathSuffix", None)
        stored.get("scaleSettings", {}).get("autoScale", {}).pop(AUTOSCALE_TARGET, None)
        if row["provisioning_state"] == "deleting":
            raise errors.being_deleted(kind, row["name"])
        if stored != props:
            raise errors.already_exists(kind, row["name"])
        return self._lro(self.cluster_json(row)["id"] if kind == "cluster" else self.job_json(row)["id"],
                         location, "repeat-" + kind)

    def get_cluster(self, rg: str, ws: str, name: str) -> dict:
        workspace = self._workspace_row(self.resource_group(rg), ws)
        return self.cluster_json(self._cluster_row(workspace["resource_group"], workspace["name"], name))

    def list_clusters(self, rg: str, ws: str) -> list:
        workspace = self._workspace_row(self.resource_group(rg), ws)
        rows = self.store.query("SELECT * FROM bai_clusters WHERE resource_group = ? AND workspace = ? ORDER BY name",
                                (workspace["resource_group"], workspace["name"]))
        return [self.cluster_json(row) for row in rows]

    def update_cluster(self, rg: str, ws: str, name: str, body: dict) -> dict:
        """PATCH scaleSettings: record the new target; the allocator resizes towards it."""
        workspace = self._writable_workspace(rg, ws)
        row = self._cluster_row(workspace["resource_group"], workspace["name"], name)
        if row["provisioning_state"] == "deleting":
            raise errors.being_deleted("cluster", row["name"])
        scale = (body.get("properties") or {}).get("scaleSettings")
        if scale is None:
            raise errors.missing_property("properties.scaleSettings", "the new scale settings")
        props = _json(row["properties"])
        props["scaleSettings"] = check_scale_settings(scale)
        self.quotas.check(row["location"], props["vmSize"], vm_priority(props),
                          target_node_count(props["scaleSettings"]), cluster_id=row["id"])
        now = utc_now()
        self.store.execute("UPDATE bai_clusters SET properties = ?, allocation_state = 'resizing', "
                           "allocation_state_time = ?, errors = '[]' WHERE id = ?", (json.dumps(props), now, row["id"]))
        self.runner.reconcile(row["id"])
        return self.cluster_json(self._cluster_row(row["resource_group"], row["workspace"], row["name"]))

    def delete_cluster(self, rg: str, ws: str, name: str) -> Optional[Lro]:
        workspace = self._workspace_row(self.resource_group(rg), ws)
        row = self.find_cluster(workspace["resource_group"], workspace["name"], name)
        if row is None:
            return None
        self._set_deleting("bai_clusters", row["id"])
        return self._lro(self.cluster_json(row)["id"], workspace["location"], "delete-cluster",
                         lambda: self._delete_cluster_now(row))

    def _delete_cluster_now(self, row: sqlite3.Row) -> None:
        """Stop the cluster's allocation and its running jobs, remove its nodes, then the cluster."""
        self._set_deleting("bai_clusters", row["id"])
        self.runner.release(row["id"])
        running = [r["job_id"] for r in self.store.query(
            "SELECT DISTINCT job_id FROM bai_nodes WHERE cluster_id = ? AND job_id IS NOT NULL", (row["id"],))]
        self.runner.stop_jobs(running, errors.job_cluster_deleted(row["name"]))
        for node in self.store.query("SELECT node_id FROM bai_nodes WHERE cluster_id = ?", (row["id"],)):
            self.records.remove_node(row["id"], node["node_id"])
        shutil.rmtree(self.records.cluster_dir(row), ignore_errors=True)  # never follows the share symlinks
        self.store.execute("DELETE FROM bai_clusters WHERE id = ?", (row["id"],))
        log.info("cluster %s/%s/%s deleted", row["resource_group"], row["workspace"], row["name"])
        self.runner.notify()  # queued jobs of this cluster now fail

    def cluster_remote_logins(self, rg: str, ws: str, name: str) -> list:
        workspace = self._workspace_row(self.resource_group(rg), ws)
        row = self._cluster_row(workspace["resource_group"], workspace["name"], name)
        return self._remote_logins("cluster_id = ?", (row["id"],))

    def cluster_demands(self) -> list:
        """What every cluster holds (allocated nodes) and asks for (target nodes), for the quotas."""
        allocated = {row["cluster_id"]: row["n"] for row in self.store.query(
            "SELECT cluster_id, COUNT(*) AS n FROM bai_nodes GROUP BY cluster_id")}
        demands = []
        for row in self.store.query("SELECT id, location, properties FROM bai_clusters"):
            props = _json(row["properties"])
            demands.append(ClusterDemand(row["id"], row["location"], props["vmSize"],
                                         vm_priority(props), allocated.get(row["id"], 0),
                                         target_node_count(props["scaleSettings"])))
        return demands

    def _remote_logins(self, where: str, params: tuple) -> list:
        rows = self.store.query("SELECT node_id, seq FROM bai_nodes WHERE {} ORDER BY seq".format(where), params)
        return [{"nodeId": r["node_id"], "ipAddress": "127.0.0.1", "port": REMOTE_LOGIN_BASE_PORT + r["seq"]}
                for r in rows]

    # ---- jobs --------------------------------------------------------------------------------

    def _job_row(self, rg: str, ws: str, exp: str, name: str) -> sqlite3.Row:
        row = self._find("bai_jobs", resource_group=rg, workspace=ws, experiment=exp, name=name)
        if row is None:
            raise errors.job_not_found(name)
        return row

    def _experiment_of(self, rg: str, ws: str, exp: str, for_update: bool = False) -> tuple:
        """(workspace row, experiment row) with 404s for each missing level."""
        workspace = (self._writable_workspace(rg, ws) if for_update
                     else self._workspace_row(self.resource_group(rg), ws))
        experiment = self._experiment_row(workspace["resource_group"], workspace["name"], exp)
        if for_update and experiment["provisioning_state"] == "deleting":
            raise errors.being_deleted("experiment", experiment["name"])
        return workspace, experiment

    def job_json(self, row: sqlite3.Row) -> dict:
        props = strip_secrets(_json(row["properties"]))
        toolkit = toolkit_of(props)
        props.update({
            "experimentName": row["experiment"],
            "toolType": TOOLKITS[toolkit],
            "jobOutputDirectoryPathSegment": self.output_segment(row),
            "creationTime": row["creation_time"],
            "provisioningState": row["provisioning_state"],
            "provisioningStateTransitionTime": row["provisioning_state_time"],
            "executionState": row["execution_state"],
            "executionStateTransitionTime": row["execution_state_time"],
        })
        if row["start_time"]:  # absent while queued (reference 2.4)
            info: dict = {"startTime": row["start_time"]}
            if row["end_time"]:
                info["endTime"] = row["end_time"]
            if row["exit_code"] is not None:
                info["exitCode"] = row["exit_code"]
            info["errors"] = _json(row["errors"], []) or None
            props["executionInfo"] = info
        return {"id": self.resource_id(row["resource_group"], "workspaces", row["workspace"], "experiments",
                                       row["experiment"], "jobs", row["name"]),
                "name": row["name"], "type": PROVIDER + "/workspaces/experiments/jobs", "properties": props}

    def output_segment(self, row: sqlite3.Row) -> str:
        """jobOutputDirectoryPathSegment: ``{sub}/{rg}/workspaces/{ws}/experiments/{exp}/jobs/{job}/{uuid}``."""
        return output_segment(self.subscription_id, row)

    def create_job(self, rg: str, ws: str, exp: str, name: str, body: dict) -> Lro:
        """PUT: record the job as queued (the operation is done then); the scheduler picks it up."""
        workspace, experiment = self._experiment_of(rg, ws, exp, for_update=True)
        rg, ws, exp = workspace["resource_group"], workspace["name"], experiment["name"]
        props = check_job(body)
        cluster = self._job_cluster(workspace, props)
        existing = self._find("bai_jobs", resource_group=rg, workspace=ws, experiment=exp, name=name)
        if existing is not None:
            return self._repeat_put("job", existing, props, workspace["location"])
        now = utc_now()
        self.store.execute(
            "INSERT INTO bai_jobs (resource_group, workspace, experiment, name, uuid, location, properties, mounts, "
            "cluster, priority, creation_time, provisioning_state, provisioning_state_time, execution_state, "
            "execution_state_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'succeeded', ?, 'queued', ?)",
            (rg, ws, exp, name, str(uuid.uuid4()), workspace["location"], json.dumps(props),
             json.dumps(self._mount_table(cluster, props)), cluster["name"], PRIORITIES[props["schedulingPriority"]],
             now, now, now))
        log.info("job %s/%s/%s/%s queued on cluster %s", rg, ws, exp, name, cluster["name"])
        lro = self._lro(self.job_json(self._job_row(rg, ws, exp, name))["id"], workspace["location"], "create-job")
        self.runner.notify()
        return lro

    def _job_cluster(self, workspace: sqlite3.Row, props: dict) -> sqlite3.Row:
        """The cluster a job names: it must exist, be in the job's workspace and be big enough."""
        cluster_id = props["cluster"]["id"]
        expected = self.resource_id(workspace["resource_group"], "workspaces", workspace["name"], "clusters", "")
        if not cluster_id.lower().startswith(expected.lower()) or "/" in cluster_id[len(expected):].strip("/"):
            raise errors.job_cluster_invalid(
                "properties.cluster.id '{}' is not a cluster of workspace {}: a job runs on a cluster of its own "
                "workspace ({}<cluster name>).".format(cluster_id, workspace["name"], expected))
        name = cluster_id[len(expected):].strip("/")
        cluster = self.find_cluster(workspace["resource_group"], workspace["name"], name)
        if cluster is None or cluster["provisioning_state"] == "deleting":
            raise errors.job_cluster_invalid("The cluster '{}' named by properties.cluster.id does not exist in "
                                             "workspace {}.".format(name, workspace["name"]))
        most = max_node_count(_json(cluster["properties"])["scaleSettings"])
        # A cluster scaled to zero takes jobs: they wait until it is scaled up, as on the service.
        if 0 < most < props["nodeCount"]:
            raise errors.invalid_parameter("The job asks for {} node(s) (properties.nodeCount) but cluster {} has at "
                                           "most {}.".format(props["nodeCount"], cluster["name"], most))
        return cluster

    def _mount_table(self, cluster: sqlite3.Row, props: dict) -> dict:
        """Which share or blob container is mounted where, kept with the job so that its outputs stay
        listable after the cluster is gone: ``{"cluster": {relativeMountPath: share}, "job": {...},
        "cluster_blobs": {relativeMountPath: container}, "job_blobs": {...}}``."""
        cluster_volumes = _json(cluster["properties"]).get("nodeSetup", {}).get("mountVolumes") or {}
        job_volumes = props.get("mountVolumes") or {}
        return {"cluster": mount_table(self.files, share_mounts(cluster_volumes.get("azureFileShares"))),
                "job": mount_table(self.files, share_mounts(job_volumes.get("azureFileShares"))),
                "cluster_blobs": self._blob_mount_table(cluster_volumes.get("azureBlobFileSystems")),
                "job_blobs": self._blob_mount_table(job_volumes.get("azureBlobFileSystems"))}

    def _blob_mount_table(self, entries) -> dict:
        """{relative mount path: container} of the blobfuse mounts of this emulator's storage account."""
        return {entry["relativeMountPath"].strip("/"): entry["containerName"] for entry in entries or []
                if entry.get("accountName") == self.files.account_name}

    def get_job(self, rg: str, ws: str, exp: str, name: str) -> dict:
        _, experiment = self._experiment_of(rg, ws, exp)
        return self.job_json(self._job_row(experiment["resource_group"], experiment["workspace"], experiment["name"],
                                           name))

    def list_jobs(self, rg: str, ws: str, exp: str) -> list:
        _, experiment = self._experiment_of(rg, ws, exp)
        rows = self.store.query(
            "SELECT * FROM bai_jobs WHERE resource_group = ? AND workspace = ? AND experiment = ? ORDER BY id",
            (experiment["resource_group"], experiment["workspace"], experiment["name"]))
        return [self.job_json(row) for row in rows]

    def terminate_job(self, rg: str, ws: str, exp: str, name: str) -> Lro:
        """POST terminate: a queued job fails at once; a running one is stopped (the operation ends when its
        process has exited); a finished one is left alone."""
        workspace, experiment = self._experiment_of(rg, ws, exp)
        row = self._job_row(experiment["resource_group"], experiment["workspace"], experiment["name"], name)
        resource_id = self.job_json(row)["id"]
        if self.records.fail_queued_job(row["id"], errors.job_terminated()):
            return self._lro(resource_id, workspace["location"], "terminate-job")
        return self._lro(resource_id, workspace["location"], "terminate-job",
                         lambda: self.runner.stop_jobs([row["id"]], errors.job_terminated()))

    def delete_job(self, rg: str, ws: str, exp: str, name: str) -> Optional[Lro]:
        workspace, experiment = self._experiment_of(rg, ws, exp)
        row = self._find("bai_jobs", resource_group=experiment["resource_group"], workspace=experiment["workspace"],
                         experiment=experiment["name"], name=name)
        if row is None:
            return None
        self._set_deleting("bai_jobs", row["id"])
        return self._lro(self.job_json(row)["id"], workspace["location"], "delete-job",
                         lambda: self._delete_jobs_now("id = ?", (row["id"],)))

    def _delete_jobs_now(self, where: str, params: tuple) -> None:
        """Stop the matching jobs that run, then remove them all. Their outputs on shares stay."""
        ids = [row["id"] for row in self.store.query("SELECT id FROM bai_jobs WHERE " + where, params)]
        if not ids:
            return
        marks = ",".join("?" * len(ids))
        # 'deleting' first, so the scheduler starts none of them meanwhile.
        self.store.execute("UPDATE bai_jobs SET provisioning_state = 'deleting', provisioning_state_time = ? "
                           "WHERE id IN ({})".format(marks), (utc_now(), *ids))
        self.runner.stop_jobs(ids, errors.job_terminated())
        self.store.execute("DELETE FROM bai_jobs WHERE id IN ({})".format(marks), ids)

    def job_remote_logins(self, rg: str, ws: str, exp: str, name: str) -> list:
        _, experiment = self._experiment_of(rg, ws, exp)
        row = self._job_row(experiment["resource_group"], experiment["workspace"], experiment["name"], name)
        return self._remote_logins("job_id = ?", (row["id"],))

    # ---- start-up ----------------------------------------------------------------------------

    def finish_interrupted_deletes(self) -> None:
        """Deletes that a stop or crash cut short are completed (nothing runs yet at start-up)."""
        self._delete_jobs_now("provisioning_state = 'deleting'", ())
        for row in self.store.query("SELECT * FROM bai_clusters WHERE provisioning_state = 'deleting'"):
            self._delete_cluster_now(row)
        for row in self.store.query("SELECT * FROM bai_experiments WHERE provisioning_state = 'deleting'"):
            self._delete_jobs_now("resource_group = ? AND workspace = ? AND experiment = ?",
                                  (row["resource_group"], row["workspace"], row["name"]))
            self.store.execute("DELETE FROM bai_experiments WHERE id = ?", (row["id"],))
        for row in self.store.query("SELECT * FROM bai_workspaces WHERE provisioning_state = 'deleting'"):
            self._delete_workspace_now(row)
        prefix = "/subscriptions/{}/resourceGroups/".format(self.subscription_id).lower()
        for op_id in self.ctx.operations.unfinished():
            op = self.ctx.operations.get(op_id)
            if op and op["resource_id"].lower().startswith(prefix) and "/providers/microsoft.batchai/" in \
                    op["resource_id"].lower():
                self.ctx.operations.finish(op_id)

    # ---- listOutputFiles ---------------------------------------------------------------------

    def list_output_files(self, rg: str, ws: str, exp: str, name: str, directory_id: str, directory: str,
                          expiry_minutes: int, max_results: int, marker: Optional[str]) -> tuple:
        """One page of the entries of a job's output directory: (entries, marker of the next page or None)."""
        _, experiment = self._experiment_of(rg, ws, exp)
        row = self._job_row(experiment["resource_group"], experiment["workspace"], experiment["name"], name)
        on_blob = self._output_blob_location(row, directory_id)
        if on_blob is not None:
            return self._list_blob_outputs(*on_blob, _relative_directory(directory), expiry_minutes, max_results,
                                           marker)
        share, base = self._output_location(row, directory_id)
        self._share_root(share)
        inner = _relative_directory(directory)
        path_in_share = "/".join(base + inner)
        try:  # the File service's listing: links are followed only inside the share, odd names left out
            entries = self.files.list_directory(share, base + inner)[0]
        except StorageError as exc:
            if exc.status != 404:
                raise errors.invalid_parameter("The directory '{}' cannot be listed: {}".format(
                    directory, exc.details.get("Reason", exc.message))) from None
            entries = []
        page, next_marker = _output_page(entries, marker, max_results)
        return [self._file_entry(share, path_in_share, entry, expiry_minutes) for entry in page], next_marker

    def unlisted_output_notes(self, row: sqlite3.Row) -> list:
        """Names a job wrote that are not UTF-8 cannot be listed or downloaded: lines for its execution log."""
        notes = []
        for directory in _json(row["properties"]).get("outputDirectories") or []:
            located = self.output_share_location(row, directory["id"])
            names = self.files.unlisted_names(*located) if located else []
            if names:
                notes.append("output directory {}: {} name(s) are not UTF-8, so listOutputFiles and the File service "
                             "leave them out: {}".format(directory["id"], len(names), ", ".join(names)))
        return notes

    def output_share_location(self, row: sqlite3.Row, directory_id: str) -> Optional[tuple]:
        """(share, path parts in the share) of a job's output directory, or None when it is on no share."""
        try:
            return self._output_location(row, directory_id)
        except ArmError:
            return None

    def _share_root(self, share: str) -> Path:
        try:
            return Path(self.files.share_path(share))
        except LookupError:
            raise errors.share_gone(share) from None

    def _file_entry(self, share: str, directory_in_share: str, entry, expiry_minutes: int) -> dict:
        if entry.is_dir:
            return {"name": entry.name, "fileType": "directory"}
        path = posixpath.join(directory_in_share, entry.name)
        return {"name": entry.name, "fileType": "file",
                "downloadUrl": self.files.file_sas_url(share, path, expiry_minutes, "rl"),
                "properties": {"lastModified": _iso_mtime(entry.mtime_ns / 1e9), "contentLength": entry.size}}

    def _list_blob_outputs(self, container: str, base: list, inner: list, expiry_minutes: int, max_results: int,
                           marker: Optional[str]) -> tuple:
        """listOutputFiles of an output directory on a blobfuse mount: the container's virtual directory."""
        try:
            entries = self.blob_mounts.list_directory(container, base + inner)
        except LookupError:
            raise errors.invalid_parameter("The blob container '{}' holding this output directory no longer "
                                           "exists.".format(container)) from None
        page, next_marker = _output_page(entries, marker, max_results)
        return [{"name": e.name, "fileType": "directory"} if e.is_dir else
                {"name": e.name, "fileType": "file",
                 "downloadUrl": self.blob_mounts.download_url(container, e.blob_name, expiry_minutes),
                 "properties": {"lastModified": e.last_modified, "contentLength": e.size}} for e in page], next_marker

    def _output_blob_location(self, row: sqlite3.Row, directory_id: str) -> Optional[tuple]:
        """(container, path parts in it) of an output directory on a blobfuse mount, or None."""
        mounts = _json(row["mounts"], {})
        if not (mounts.get("cluster_blobs") or mounts.get("job_blobs")) or directory_id.lower() == STDOUTERR:
            return None
        prefix, tail, props = self._output_path(row, directory_id)
        located = locate_on_share(_expand_user_variables(prefix, props), {
            "AZ_BATCHAI_MOUNT_ROOT": mounts.get("cluster_blobs", {}),
            "AZ_BATCHAI_JOB_MOUNT_ROOT": mounts.get("job_blobs", {})})
        if located is None:
            return None
        container, parts = located
        return container, parts + tail

    def _output_path(self, row: sqlite3.Row, directory_id: str) -> tuple:
        """(path prefix as given, path parts under it, the job's properties) of stdouterr or an output directory."""
        props = _json(row["properties"])
        segment = self.output_segment(row).split("/")
        if directory_id.lower() == STDOUTERR:
            prefix, tail = props["stdOutErrPathPrefix"], segment + [STDOUTERR]
        else:
            outputs = props.get("outputDirectories") or []
            match = (next((o for o in outputs if o["id"] == directory_id), None)
                     or next((o for o in outputs if o["id"].lower() == directory_id.lower()), None))
            if match is None:
                raise errors.output_directory_not_found(row["name"], directory_id,
                                                        [o["id"] for o in outputs] + [STDOUTERR])
            prefix, tail = match["pathPrefix"], segment + ["outputs"]
            if match.get("pathSuffix"):
                tail += path_parts(_expand_user_variables(match["pathSuffix"], props))
        return prefix, tail, props

    def _output_location(self, row: sqlite3.Row, directory_id: str) -> tuple:
        """(share, path parts in the share) of the stdouterr folder or of an output directory."""
        prefix, tail, props = self._output_path(row, directory_id)
        mounts = _json(row["mounts"], {})
        located = locate_on_share(_expand_user_variables(prefix, props), {
            "AZ_BATCHAI_MOUNT_ROOT": mounts.get("cluster", {}), "AZ_BATCHAI_JOB_MOUNT_ROOT": mounts.get("job", {})})
        if located is None:
            raise errors.not_on_mount_root(directory_id)
        share, parts = located
        return share, parts + tail


def _output_page(entries: list, marker: Optional[str], max_results: int) -> tuple:
    """One page of a listing in name order after ``marker``: (entries, marker of the next page or None)."""
    if marker:
        entries = [e for e in entries if e.name > marker]
    page = entries[:max_results]
    return page, (page[-1].name if len(entries) > max_results else None)


def _relative_directory(directory: str) -> list:
    """The ``directory`` query parameter as path parts; no way out of the output directory."""
    normalized = posixpath.normpath(directory or ".")
    if normalized.startswith("/") or normalized == ".." or normalized.startswith("../"):
        raise errors.invalid_parameter("The directory '{}' must be a relative path inside the output directory."
                                       .format(directory))
    return path_parts(normalized)


def _expand_user_variables(path: str, props: dict) -> str:
    """Expand the job's own (non-secret) environment variables in a path; AZ_BATCHAI_* stay."""
    variables = {v["name"]: v["value"] for v in props.get("environmentVariables") or []}
    return expand(path, variables)
