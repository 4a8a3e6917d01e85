"""The runner's records of Azure ML: the ``JobStore`` (emulator/runner/records.py) over models.py's tables.

The shared job runner (emulator.runner) schedules Azure ML command jobs onto an AmlCompute cluster's
nodes and runs them; this module is what it sees of Azure ML:
- clusters autoscale: a compute's target is the nodes its unfinished jobs ask for, between its
  ``minNodeCount`` and ``maxNodeCount``; idle nodes leave after ``nodeIdleTimeBeforeScaleDown``
  (scaledown.py);
- ``launch`` prepares a started job (its code snapshot and inputs copied from blob storage, as a
  node's mounts and downloads would), then describes one process per rank with the variables Azure
  ML sets (PyTorch's MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK, LOCAL_RANK, NODE_RANK included);
  ``python`` is the emulator's own interpreter: the environment's image is recorded, not pulled;
- while a job runs its logs are copied to the artifact store every LOG_COPY_SECONDS as
  ``user_logs/std_log.txt`` (``std_log_process_<rank>.txt`` with several processes), where
  ``jobs.stream`` reads them; ``job_finished`` uploads ``outputs/`` and the named outputs and maps
  the runner's outcome to the job's status and RunHistory error.
"""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
import socket
import sys
import threading
import uuid
from pathlib import Path
from typing import Callable, Optional

from ..core.paths import PathOutsideRoot, inside, is_link_free
from ..runner import records
from ..runner.environment import host_environment
from ..runner.records import ClusterRecord, Failure, JobLaunch, LaunchRefused, NodeLaunch, NodeRecord, Outcome, \
    QueuedJob, Task
from . import exceptions as errors
from .assets import asset_name
from .environments import BUILD_LOG, BuildFailed, EnvironmentBuilds
from .scaledown import IdleScaleDown, idle_seconds
from .models import ARTIFACT_CONTAINER, BLOB_STORE, CANCELLED

log = logging.getLogger("emulator.azureml")

LOG_COPY_SECONDS = 0.5
SETUP = "azureml_setup"       # a Failure kind of this service: the job's code or inputs could not be prepared
DEMANDING = ("NotStarted", "Queued", "Preparing", "Running", "CancelRequested")  # jobs that hold or want nodes
_PLACEHOLDER = re.compile(r"\$\{\{\s*(inputs|outputs)\.([A-Za-z0-9_]+)\s*\}\}")
_DATASTORE_PATH = re.compile(r"^azureml://datastores/(?P<datastore>[^/]+)/paths/(?P<path>.*)$")
_ASSET_ID = re.compile(r"/(?P<kind>codes|data)/(?P<name>[^/]+)/versions/(?P<version>[^/]+)$", re.IGNORECASE)
_SHORT_ASSET = re.compile(r"^azureml:(?P<name>[^:@/]+):(?P<version>[^:@/]+)$")


class AzureMLJobStore:
    """Job and node records of Azure ML as the runner reads and writes them."""

    def __init__(self, backend, root: Path) -> None:
        self.backend = backend
        self.store = backend.store
        self.storage = backend.storage
        self.root = root
        self.on_capacity_change: Callable[[int], None] = lambda cluster_id: None  # the runner's reconcile
        self._copiers: dict = {}
        self.scale_down = IdleScaleDown(lambda cluster_id: self.on_capacity_change(cluster_id))
        # Environments built from conda files, shared by every job; root is <data dir>/azureml.
        self.environments = EnvironmentBuilds(backend, root / "envs", root.parent)
        self._lock = threading.Lock()

    # ---- clusters and nodes ------------------------------------------------------------------

    def _compute(self, cluster_id: int):
        return self.store.query_one("SELECT rowid AS id, * FROM aml_computes WHERE rowid = ?", (cluster_id,))

    def target_nodes(self, row) -> int:
        scale = json.loads(row["properties"])["properties"]["scaleSettings"]
        low, high = int(scale.get("minNodeCount", 0)), int(scale["maxNodeCount"])
        wanted = self.store.query_one(
            "SELECT COALESCE(SUM(nodes), 0) AS n FROM aml_jobs WHERE compute_id = ? AND status IN ({})".format(
                ",".join("?" * len(DEMANDING))), (row["id"], *DEMANDING))["n"]
        current = self.store.query_one("SELECT COUNT(*) AS n FROM aml_nodes WHERE compute_id = ? AND "
                                       "state != 'leaving'", (row["id"],))["n"]
        # Nodes no job wants stay for the compute's idle time (scaledown.py).
        return self.scale_down.target(row["id"], max(low, min(high, wanted)), min(current, high),
                                      idle_seconds(scale))

    def _version(self, row) -> str:
        return "{}|{}".format(row["properties"], self.target_nodes(row))

    def cluster(self, cluster_id: int) -> Optional[ClusterRecord]:
        row = self._compute(cluster_id)
        if row is None:
            return None
        return ClusterRecord(cluster_id=row["id"], name=row["name"], accepts_jobs=row["state"] == "Succeeded",
                             target_nodes=self.target_nodes(row), version=self._version(row))

    def clusters_to_resume(self) -> list:
        return [row["id"] for row in self.store.query("SELECT rowid AS id FROM aml_computes WHERE state = 'Succeeded'")]

    def _node_dir(self, row, node_id: str) -> Path:
        return inside(self.root / "nodes", row["resource_group"], row["workspace"], row["name"], node_id)

    def nodes(self, cluster_id: int) -> list:
        row = self._compute(cluster_id)
        if row is None:
            return []
        return [NodeRecord(node_id=node["node_id"], seq=node["seq"], state=node["state"],
                           ip="10.0.0.{}".format(4 + node["seq"]), directory=self._node_dir(row, node["node_id"]))
                for node in self.store.query("SELECT * FROM aml_nodes WHERE compute_id = ? ORDER BY seq",
                                             (cluster_id,))]

    def add_nodes(self, cluster_id: int, count: int) -> list:
        """New nodes, preparing; ids shaped like AmlCompute's (``tvmps_<hex>_d``)."""
        ids = []
        with self.store.transaction():
            used = {row["seq"] for row in self.store.query("SELECT seq FROM aml_nodes WHERE compute_id = ?",
                                                           (cluster_id,))}
            free = (seq for seq in range(len(used) + count + 1) if seq not in used)
            for seq in [next(free) for _ in range(count)]:
                node_id = "tvmps_{}_d".format(uuid.uuid4().hex[:40])
                self.store.execute("INSERT INTO aml_nodes (node_id, compute_id, seq, state) VALUES (?, ?, ?, "
                                   "'preparing')", (node_id, cluster_id, seq))
                ids.append(node_id)
        return ids

    def setup_task(self, cluster_id: int, node: NodeRecord) -> Optional[Task]:
        return None  # AmlCompute nodes have no setup task

    def set_node_state(self, node_id: str, state: str, only_from: Optional[str] = None) -> bool:
        if only_from is None:
            return self.store.execute("UPDATE aml_nodes SET state = ? WHERE node_id = ?", (state, node_id)) == 1
        return self.store.execute("UPDATE aml_nodes SET state = ? WHERE node_id = ? AND state = ?",
                                  (state, node_id, only_from)) == 1

    def node_unusable(self, cluster_id: int, node_id: str, failure: Failure) -> None:
        self.set_node_state(node_id, "unusable")

    def remove_node(self, cluster_id: int, node_id: str) -> None:
        row = self._compute(cluster_id)
        try:
            if row is not None:
                shutil.rmtree(self._node_dir(row, node_id), ignore_errors=True)
        except PathOutsideRoot:  # a compute named before names were checked: its directory is left alone
            pass
        self.store.execute("DELETE FROM aml_nodes WHERE node_id = ?", (node_id,))

    def set_allocation_state(self, cluster_id: int, state: str, version: str) -> bool:
        row = self._compute(cluster_id)
        if row is None or self._version(row) != version:
            return False
        self.store.execute("UPDATE aml_computes SET allocation_state = ? WHERE rowid = ?", (state, cluster_id))
        return True

    def reset_nodes_after_restart(self) -> None:
        """Jobs do not survive a restart, so neither do their nodes: clusters scale from zero again."""
        for node in self.store.query("SELECT node_id, compute_id FROM aml_nodes"):
            self.remove_node(node["compute_id"], node["node_id"])

    def node_counts(self, cluster_id: int) -> dict:
        counts: dict = {}
        for row in self.store.query("SELECT state, COUNT(*) AS n FROM aml_nodes WHERE compute_id = ? GROUP BY state",
                                    (cluster_id,)):
            counts[row["state"]] = row["n"]
        return counts

    # ---- jobs --------------------------------------------------------------------------------

    def _job(self, job_id: int):
        return self.store.query_one("SELECT rowid AS id, * FROM aml_jobs WHERE rowid = ?", (job_id,))

    def queued_jobs(self) -> list:
        """Jobs waiting for nodes, oldest first (a submitted job is Queued from here on)."""
        rows = self.store.query("SELECT j.rowid AS id, j.name, j.nodes, j.compute_id, j.status, c.name AS compute "
                                "FROM aml_jobs j LEFT JOIN aml_computes c ON c.rowid = j.compute_id "
                                "WHERE j.status IN ('NotStarted', 'Queued') ORDER BY j.created, j.rowid")
        if any(row["status"] == "NotStarted" for row in rows):  # called every scheduler tick: write only when needed
            self.store.execute("UPDATE aml_jobs SET status = 'Queued' WHERE status = 'NotStarted'")
        return [QueuedJob(job_id=row["id"], name=row["name"], cluster_id=row["compute_id"] if row["compute"] else None,
                          cluster_name=row["compute"] or "", node_count=row["nodes"]) for row in rows]

    def claim_nodes(self, job_id: int, node_ids: list) -> bool:
        marks = ",".join("?" * len(node_ids))
        try:
            with self.store.transaction():
                if self.store.execute("UPDATE aml_jobs SET status = 'Preparing' WHERE rowid = ? AND status IN "
                                      "('NotStarted', 'Queued')", (job_id,)) != 1:
                    raise _Changed
                if self.store.execute("UPDATE aml_nodes SET state = 'running', job_id = ? WHERE node_id IN ({}) AND "
                                      "state = 'idle'".format(marks), (job_id, *node_ids)) != len(node_ids):
                    raise _Changed
        except _Changed:
            return False
        return True

    def fail_queued_job(self, job_id: int, failure: Failure) -> bool:
        row = self._job(job_id)
        if row is None or row["status"] not in ("NotStarted", "Queued"):
            return False
        self.backend.set_job_status(row["resource_group"], row["workspace"], row["name"], "Failed",
                                    self.service_error(failure, row))
        return True

    def job_process(self, job_id: int, pid: int, start_time: Optional[int]) -> None:
        self.store.execute("UPDATE aml_jobs SET pid = ?, pid_start_time = ? WHERE rowid = ?", (pid, start_time, job_id))

    def job_terminating(self, job_ids: list) -> None:
        for job_id in job_ids:
            row = self._job(job_id)
            if row is not None:
                self.backend.set_job_status(row["resource_group"], row["workspace"], row["name"], "CancelRequested")

    def interrupted_jobs(self) -> list:
        return [(row["id"], row["name"], row["pid"], row["pid_start_time"]) for row in self.store.query(
            "SELECT rowid AS id, name, pid, pid_start_time FROM aml_jobs WHERE status IN "
            "('Preparing', 'Running', 'Finalizing', 'CancelRequested')")]

    def queued_to_fail_after_restart(self) -> None:
        """Jobs still waiting when the emulator stopped are failed too: their submitter is gone."""
        for row in self.store.query("SELECT resource_group, workspace, name FROM aml_jobs WHERE status IN "
                                    "('NotStarted', 'Queued')"):
            self.backend.set_job_status(row["resource_group"], row["workspace"], row["name"], "Failed",
                                        errors.job_interrupted())

    # ---- a started job -------------------------------------------------------------------------

    def job_dir(self, row) -> Path:
        return inside(self.root / "jobs", row["resource_group"], row["workspace"], row["name"])

    def launch(self, job_id: int, nodes: list) -> JobLaunch:
        row = self._job(job_id)
        props = json.loads(row["properties"])
        try:
            directory = self.job_dir(row)
            paths = self._prepare(row, props, directory)
            venv = self._environment_build(row, props, directory)
        except PathOutsideRoot as exc:  # names are checked at the API: this is the second line
            raise LaunchRefused(Failure(SETUP, {"reason": str(exc), "error": _SetupFailed(str(exc)).error})) from None
        except (_SetupFailed, BuildFailed) as exc:
            raise LaunchRefused(Failure(SETUP, {"reason": str(exc), "error": exc.error})) from None
        per_node = int((props.get("distribution") or {}).get("processCountPerInstance") or 1)
        count = len(nodes) * per_node
        names = ["std_log.txt"] if count == 1 else ["std_log_process_{}.txt".format(rank) for rank in range(count)]
        command = self._command(props["command"], paths)
        port = _free_port()
        tasks = []
        for rank, name in enumerate(names):
            node, local = divmod(rank, per_node)
            env = self._environment(row, props, len(nodes), per_node, node, local, port)
            if venv is not None:  # the environment's build (environments.py) comes first on PATH
                env.update(PATH=str(venv / "bin") + os.pathsep + env["PATH"], VIRTUAL_ENV=str(venv))
            tasks.append(Task(name="rank {}".format(rank), argv=["/bin/sh", "-c", command], env=env,
                              stdout=paths["logs"] / name, stderr=paths["logs"] / name, node=node))
        launches = [NodeLaunch(node=node, temp_dir=node.directory / "tmp", work_dir=paths["code"],
                               mount_root=node.directory / "tmp" / "mounts",
                               directories=(str(paths["logs"]),), env=tasks[0].env,
                               execution_log=directory / "system_logs" / "execution_{}.log".format(index))
                    for index, node in enumerate(nodes)]
        (directory / "system_logs").mkdir(parents=True, exist_ok=True)
        copier = _LogCopier(self.storage, paths["logs"], self.backend.artifact_prefix(row["name"]) + "user_logs/")
        with self._lock:
            self._copiers[job_id] = (copier, paths)
        copier.start()
        self.backend.set_job_status(row["resource_group"], row["workspace"], row["name"], "Running")
        image = props.get("environmentId", "")
        return JobLaunch(nodes=launches, working_dir=paths["code"], tasks=tasks, bin_dir=directory / "bin",
                         job_dirs=(directory,), shared_dirs=(venv,) if venv else (),
                         notes=["environment {} recorded; the job runs with {}".format(
                             image, "its build in {}".format(venv) if venv else "the emulator's Python")])

    def job_finished(self, job_id: int, outcome: Outcome) -> None:
        """Free the nodes, upload what the job wrote, and record how it ended."""
        row = self._job(job_id)
        self.store.execute("UPDATE aml_nodes SET state = 'idle', job_id = NULL WHERE job_id = ?", (job_id,))
        with self._lock:
            copier, paths = self._copiers.pop(job_id, (None, None))
        if row is None:
            return
        rg, ws, name = row["resource_group"], row["workspace"], row["name"]
        try:
            if copier is not None:
                copier.stop()
                self.backend.set_job_status(rg, ws, name, "Finalizing")
                self._finalize(row, paths)
        except Exception:
            log.exception("job %s: could not upload its outputs", name)
        finally:
            if outcome.state == "succeeded":
                self.backend.set_job_status(rg, ws, name, "Completed")
            elif outcome.failure is not None and outcome.failure.kind == records.STOPPED and \
                    outcome.failure.details.get("reason") == CANCELLED:
                self.backend.set_job_status(rg, ws, name, "Canceled", errors.job_cancelled())
            else:
                self.backend.set_job_status(rg, ws, name, "Failed", self.service_error(outcome.failure, row, outcome))
            self.store.execute("UPDATE aml_jobs SET pid = NULL, pid_start_time = NULL WHERE rowid = ?", (job_id,))
            if row["compute_id"] is not None:
                self.on_capacity_change(row["compute_id"])

    def service_error(self, failure: Optional[Failure], row, outcome: Optional[Outcome] = None) -> dict:
        """The RunHistory error for what the runner saw."""
        kind = failure.kind if failure else records.INTERNAL
        details = failure.details if failure else {}
        if kind == records.FAILED:
            first_log = "user_logs/std_log.txt" if row["nodes"] == 1 else "user_logs/std_log_process_0.txt"
            return errors.user_process_failed(outcome.exit_code if outcome else 1, first_log)
        if kind == SETUP:
            return details["error"]
        if kind == records.INTERRUPTED:
            return errors.job_interrupted()
        if kind == records.CLUSTER_MISSING:
            return errors.job_error("UserError", "Compute {} does not exist (any more).".format(details["cluster"]))
        if kind == records.STOPPED:
            return errors.job_error("UserError", "The job was stopped: {}.".format(details.get("reason")))
        if kind == records.LAUNCH_FAILED:
            return errors.job_setup_failed("{} could not start: {}".format(details["what"], details["reason"]))
        if kind == records.WALL_CLOCK:
            return errors.job_error("UserError", "The job ran past its time limit {}.".format(details["limit"]))
        return errors.job_error("SystemError", "The emulator failed to run the job; see its log.")

    # ---- preparing ---------------------------------------------------------------------------------

    def _prepare(self, row, props: dict, directory: Path) -> dict:
        shutil.rmtree(directory, ignore_errors=True)
        code_dir = directory / "code"
        for sub in ("code", "inputs", "outputs", "logs", "bin"):
            (directory / sub).mkdir(parents=True, exist_ok=True)
        if props.get("codeId"):
            code = self._asset(row, props["codeId"], "codes")
            container, path = self.storage.parse_url(code["codeUri"])
            if not self.storage.download_prefix(container, path.rstrip("/") + "/", code_dir):
                raise _SetupFailed("the code snapshot {} is empty".format(code["codeUri"]))
        paths = {"code": code_dir, "logs": directory / "logs", "inputs": {}, "outputs": {}}
        for name, spec in (props.get("inputs") or {}).items():
            paths["inputs"][name] = self._input(row, directory, name, spec or {})
        for name in props.get("outputs") or {}:
            if name != "default":
                target = inside(directory / "outputs", name)
                target.mkdir(parents=True, exist_ok=True)
                paths["outputs"][name] = target
        (code_dir / "outputs").mkdir(exist_ok=True)
        return paths

    def _environment_build(self, row, props: dict, directory: Path) -> Optional[Path]:
        """The job environment's virtual environment (environments.py), its build log uploaded as it grows."""
        prefix = self.backend.artifact_prefix(row["name"]) + "azureml-logs/"
        return self.environments.prepare(
            row, props.get("environmentId", ""), directory / "azureml-logs" / BUILD_LOG,
            lambda path: self.storage.upload_file(ARTIFACT_CONTAINER, prefix + path.name, path))

    def _asset(self, row, reference: str, kind: str) -> dict:
        match = _ASSET_ID.search(reference) or _SHORT_ASSET.match(reference)
        if not match:
            raise _SetupFailed("cannot resolve {!r}".format(reference))
        try:
            return self.backend.get_asset(row["resource_group"], row["workspace"], kind,
                                          asset_name(match.group("name")), match.group("version"))["properties"]
        except Exception:
            raise _SetupFailed("{} {} does not exist".format(kind, reference)) from None

    def _input(self, row, directory: Path, name: str, spec: dict) -> str:
        if spec.get("jobInputType") == "literal":
            return str(spec.get("value", ""))
        uri = spec.get("uri") or ""
        if not uri.startswith("azureml://"):
            uri = self._asset(row, uri, "data").get("dataUri", "")
        match = _DATASTORE_PATH.match(uri)
        if not match:
            raise _SetupFailed("input {} has an unsupported uri {!r}".format(name, uri))
        container = self.backend.datastore_container(row["resource_group"], row["workspace"],
                                                     match.group("datastore"))
        target = inside(directory / "inputs", name)
        target.mkdir(parents=True, exist_ok=True)
        if not self.storage.download_prefix(container, match.group("path").strip("/") + "/", target):
            raise _SetupFailed("input {} ({}) holds no files".format(name, uri))
        return str(target)

    @staticmethod
    def _command(command: str, paths: dict) -> str:
        def value(match: re.Match) -> str:
            found = paths[match.group(1)].get(match.group(2))
            if found is None:
                raise _SetupFailed("the command uses {}, which the job does not define".format(match.group(0)))
            return str(found)

        try:
            return _PLACEHOLDER.sub(value, command)
        except _SetupFailed as exc:
            raise LaunchRefused(Failure(SETUP, {"reason": str(exc), "error": exc.error})) from None

    def _environment(self, row, props: dict, nodes: int, per_node: int, node: int, local: int, port: int) -> dict:
        env = host_environment()
        # "python" in the command is the emulator's interpreter: the environment image is not pulled.
        env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", os.defpath)
        env.update({str(k): str(v) for k, v in (props.get("environmentVariables") or {}).items()})
        experiment = props.get("experimentName", "Default")
        env.update({"PYTHONUNBUFFERED": "1", "AZUREML_RUN_ID": row["name"],
                    "AZUREML_ARM_SUBSCRIPTION": self.backend.subscription_id,
                    "AZUREML_ARM_RESOURCEGROUP": row["resource_group"], "AZUREML_ARM_WORKSPACE_NAME": row["workspace"],
                    "AZUREML_ARM_PROJECT_NAME": experiment, "AZUREML_EXPERIMENT_NAME": experiment})
        if (props.get("distribution") or {}).get("distributionType") == "PyTorch":
            # Every emulated node is this machine, so rank 0 listens on the loopback address.
            env.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": str(nodes * per_node),
                        "NODE_RANK": str(node), "RANK": str(node * per_node + local), "LOCAL_RANK": str(local),
                        "LOCAL_WORLD_SIZE": str(per_node)})
        return env

    # ---- finishing ---------------------------------------------------------------------------------

    def _finalize(self, row, paths: dict) -> None:
        prefix = self.backend.artifact_prefix(row["name"])
        job_dir = paths["code"].parent
        uploads = [(paths["code"] / "outputs", ARTIFACT_CONTAINER, prefix + "outputs/"),
                   (paths["logs"], ARTIFACT_CONTAINER, prefix + "user_logs/")]
        container = self.backend.datastore_container(row["resource_group"], row["workspace"], BLOB_STORE)
        uploads += [(directory, container, self.backend.output_prefix(row["name"], name))
                    for name, directory in paths["outputs"].items()]
        for directory, container_name, blob_prefix in uploads:
            # The job owns these directories: one it replaced with a link (to anywhere) is not read.
            if not is_link_free(job_dir, directory):
                log.warning("job %s: %s is a link; not uploaded", row["name"], directory.relative_to(job_dir))
                continue
            self.storage.upload_directory(directory, container_name, blob_prefix)


class _LogCopier:
    """Copies a running job's growing log files to blob storage, so that streams see them."""

    def __init__(self, storage, directory: Path, prefix: str) -> None:
        self.storage, self.directory, self.prefix = storage, directory, prefix
        self._sizes: dict = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="azureml-logs", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(LOG_COPY_SECONDS):
            self.copy()

    def copy(self) -> None:
        for path in sorted(self.directory.glob("*.txt")):
            if path.is_symlink():  # a job may replace its log with a link: never followed
                continue
            size = path.stat().st_size
            if self._sizes.get(path.name) != size:
                try:
                    self.storage.upload_file(ARTIFACT_CONTAINER, self.prefix + path.name, path)
                    self._sizes[path.name] = size
                except Exception:
                    log.exception("could not copy %s to blob storage", path.name)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)


class _SetupFailed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.error = errors.job_setup_failed(reason)


class _Changed(Exception):
    """Rolls back a claim whose job or nodes changed under it."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


__all__ = ["AzureMLJobStore", "CANCELLED"]
