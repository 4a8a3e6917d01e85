"""What the runner reads and writes: plain records, and the two interfaces a service hands it.

A service (Batch AI today) keeps its own state and REST shapes; the runner sees only these records.
``JobStore`` is what the service implements over its state; ``SharePaths`` is the Files backend's
part the runner needs for mounts. Failures travel as ``Failure`` (a kind and its details) and the
service turns them into its own error JSON, so nothing here knows any service's error codes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Protocol

# ---- failures ----------------------------------------------------------------------------------

# Failure kinds the runner reports (details in brackets):
FAILED = "failed"                    # the job's processes exited non-zero
PREPARATION_FAILED = "preparation"   # the job preparation exited non-zero
LAUNCH_FAILED = "launch"             # [what, reason] a process could not be started
MOUNT_FAILED = "mount"               # [url, path, reason] a share could not be mounted
DIRECTORY_MOUNT_FAILED = "directory_mount"  # [name, path, reason] a DirectoryMount could not be mounted
SYNCED_MOUNT_FAILED = "synced_mount"  # [name, path, reason] a SyncedMount could not be filled
WALL_CLOCK = "wall_clock"            # [limit] the job ran past its time limit
INTERNAL = "internal"                # the runner itself failed
INTERRUPTED = "interrupted"          # the emulator stopped while the job ran
CLUSTER_MISSING = "cluster_missing"  # [cluster] the job's cluster is gone
SETUP_FAILED = "setup"               # [node_id, exit_code] a node's setup task failed
SETUP_LAUNCH_FAILED = "setup_launch"  # [node_id, reason]
STOPPED = "stopped"                  # [reason: what the service passed to stop_jobs]
PREEMPTED = "preempted"              # [node_id] a node of the job was preempted: the job goes back to the queue
NODE_REMOVED = "node_removed"        # [node_id, requeue] a shrink took a node of the job: requeued, or failed


def requeues(failure: Optional["Failure"]) -> bool:
    """Whether a job that ended with ``failure`` goes back to the queue instead of ending."""
    return failure is not None and (failure.kind == PREEMPTED or (failure.kind == NODE_REMOVED and
                                                                  failure.details.get("requeue")))


@dataclass(frozen=True)
class Failure:
    kind: str
    details: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """How a started job ended."""
    state: str                   # succeeded | failed
    exit_code: Optional[int]
    failure: Optional[Failure] = None


# ---- clusters and nodes ------------------------------------------------------------------------

@dataclass(frozen=True)
class ShareMount:
    """An Azure File share to mount at ``<mount root>/<relative_path>``."""
    url: str
    account_name: Optional[str]
    account_key: Optional[str]
    relative_path: str


@dataclass(frozen=True)
class DirectoryMount:
    """A directory of this machine (a file server's export) to mount at ``<mount root>/<relative_path>``;
    ``source`` None means it cannot be mounted, ``missing`` says why."""
    name: str                   # what is mounted, for errors (e.g. the file server's resource id)
    source: Optional[Path]
    relative_path: str
    missing: str = ""


@dataclass(frozen=True)
class SyncedMount:
    """A directory at ``<mount root>/<relative_path>`` filled by ``sync_in(directory)`` before the job and
    handed to ``sync_out(directory)`` (returning execution.log lines) after it: a copy, not a live mount.
    Either may raise ValueError/LookupError/OSError with a one-line reason."""
    name: str
    relative_path: str
    sync_in: Callable[[Path], None]
    sync_out: Callable[[Path], list]


@dataclass(frozen=True)
class Task:
    """One process to run: on a node (``node`` = index into the job's nodes) or for a node's setup."""
    name: str                   # shown in logs: "job", "rank 1", "wk-0", "setup task"
    argv: list
    env: dict                   # the complete environment
    stdout: Path
    stderr: Path
    node: int = 0
    background: bool = False    # stopped once the other tasks have ended (TensorFlow parameter servers)


@dataclass(frozen=True)
class NodeRecord:
    node_id: str
    seq: int                    # 0, 1, ... in the order the cluster got them
    state: str                  # preparing | idle | running | unusable | leaving (shrinking or preempted)
    ip: str                     # private address, 10.0.0.4 onward as Azure subnets hand them out
    directory: Path             # the node's own place on this machine


@dataclass(frozen=True)
class ClusterRecord:
    cluster_id: int
    name: str
    accepts_jobs: bool          # provisioned and not being deleted
    target_nodes: int
    version: str                # changes whenever the cluster's settings change
    mounts: tuple = ()          # ShareMounts of every node, under ``<node>/mounts``
    directory_mounts: tuple = ()  # DirectoryMounts of every node, under ``<node>/mounts``
    synced_mounts: tuple = ()   # SyncedMounts of every node, under ``<node>/mounts``: filled when the node is
                                # prepared, drained after each job that ran on it
    shrink_policy: str = "wait"  # when a shrink needs busy nodes: requeue or terminate their jobs, or wait for them


@dataclass(frozen=True)
class QueuedJob:
    job_id: int
    name: str
    cluster_id: Optional[int]   # None: the cluster is gone
    cluster_name: str
    node_count: int
    marker: Optional[str] = None  # carried by every process of the job, so that recovery finds them all


# ---- a started job -------------------------------------------------------------------------------

@dataclass
class NodeLaunch:
    """What a job needs on one of its nodes before its processes start."""
    node: NodeRecord
    temp_dir: Path              # wiped before the job (never following mounts)
    work_dir: Path              # where the job's processes start on this node
    mount_root: Path            # the job's own mounts go here
    mounts: tuple = ()          # ShareMounts
    synced_mounts: tuple = ()   # SyncedMounts (Blob containers), filled after the share mounts
    node_synced_mounts: tuple = ()  # the cluster's SyncedMounts under ``node_mount_root``, drained after the job
    node_mount_root: Optional[Path] = None
    directories: tuple = ()     # created after mounting (stdout/err and output directories)
    files: dict = field(default_factory=dict)  # {path: text} written then (e.g. the MPI host file)
    env: dict = field(default_factory=dict)   # the node's environment for anything entering it (ssh, mpirun)
    execution_log: Optional[Path] = None


@dataclass
class MpiLaunch:
    """``argv`` run as ``process_count`` ranks by mpirun over the job's nodes (slots per node from the host file)."""
    argv: list
    process_count: int
    host_file: Path
    stdout: Path
    stderr: Path


@dataclass
class JobLaunch:
    """What a started job runs, built by the service once its nodes are known.

    ``preparation`` runs first (every task must exit 0), then either ``mpi`` or ``tasks``: the job
    ends when every non-background task has ended; the first task that fails ends all of them.
    """
    nodes: list                 # NodeLaunch, the first is where the job is led from
    working_dir: Optional[Path] = None   # where its leading process starts (default: the first node's work_dir)
    preparation: list = field(default_factory=list)    # Task per node
    tasks: list = field(default_factory=list)          # Task
    mpi: Optional[MpiLaunch] = None
    wall_clock_seconds: float = 7 * 86400
    wall_clock_text: str = "P7D"
    secrets: dict = field(default_factory=dict)        # values never written to logs
    notes: list = field(default_factory=list)          # extra execution.log lines
    final_notes: Optional[Callable[[], list]] = None   # lines for execution.log once the job has ended
    bin_dir: Optional[Path] = None                     # where the runner puts the job's ssh and mpirun (on its PATH)
    job_dirs: tuple = ()                               # the job's own directories besides its nodes (its sandbox
                                                       # allows them)
    shared_dirs: tuple = ()                            # directories of the data dir it may read and run, not change
                                                       # (a built environment shared between jobs)


class LaunchRefused(Exception):
    """The service cannot build a launch for the job (e.g. an unsupported setting)."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.details.get("reason") or failure.kind)
        self.failure = failure


# ---- the interfaces ------------------------------------------------------------------------------

class SharePaths(Protocol):
    """The part of the Files backend the runner uses to mount shares."""

    def share_from_url(self, url: str) -> str: ...          # ValueError if not a share URL of this emulator
    def check_account_key(self, account: Optional[str], key: Optional[str]) -> bool: ...
    def share_path(self, share: str) -> Path: ...           # LookupError if there is no such share


class JobStore(Protocol):
    """The job and node records of a service, as the runner reads and writes them."""

    # scheduling
    def queued_jobs(self) -> list: ...                       # QueuedJob, in the order to run them
    def cluster(self, cluster_id: int) -> Optional[ClusterRecord]: ...
    def clusters_to_resume(self) -> list: ...                # cluster ids whose node count may be off
    def nodes(self, cluster_id: int) -> list: ...            # NodeRecord by seq
    def claim_nodes(self, job_id: int, node_ids: list) -> bool: ...
    def fail_queued_job(self, job_id: int, failure: Failure) -> bool: ...

    # a started job
    def launch(self, job_id: int, nodes: list) -> JobLaunch: ...   # may raise LaunchRefused
    def job_process(self, job_id: int, pid: int, start_time: Optional[int]) -> None: ...
    def job_terminating(self, job_ids: list) -> None: ...
    def job_finished(self, job_id: int, outcome: Outcome) -> None: ...   # frees its running nodes
    def job_requeued(self, job_id: int) -> None: ...         # a preempted job: queued again, its running nodes
                                                             # freed (only services that preempt nodes call it)
    def interrupted_jobs(self) -> list: ...                  # (job_id, name, pid, pid_start_time[, marker])

    # nodes
    def add_nodes(self, cluster_id: int, count: int) -> list: ...   # node ids, state preparing
    def setup_task(self, cluster_id: int, node: NodeRecord) -> Optional[Task]: ...
    def set_node_state(self, node_id: str, state: str, only_from: Optional[str] = None) -> bool: ...
    def node_unusable(self, cluster_id: int, node_id: str, failure: Failure) -> None: ...
    def remove_node(self, cluster_id: int, node_id: str) -> None: ...
    def set_allocation_state(self, cluster_id: int, state: str, version: str) -> bool: ...
    def reset_nodes_after_restart(self) -> None: ...
