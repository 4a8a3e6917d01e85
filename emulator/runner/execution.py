"""One started job: its nodes made ready, its processes run, its outcome, from start to end.

The service describes the job as a ``JobLaunch`` (records.py); this module knows nothing of any
service's settings. Each phase (preparation, then the job) is one process tree: a single task runs
as it is; several tasks, or MPI ranks, run under ``leader.py`` so that every process of the job
descends from the one process the runner tracks and stops.
"""
from __future__ import annotations

import logging
import shlex
import shutil
import threading
from pathlib import Path
from typing import Optional

from . import launching
from .mounts import MountError, drain_synced, fill_synced, mount_shares
from .processes import ExecutionLog, ProcessGroup
from .sandbox import mounted_sources, with_variables
from .records import (FAILED, INTERNAL, LAUNCH_FAILED, PREEMPTED, PREPARATION_FAILED, STOPPED, WALL_CLOCK, Failure,
                      JobLaunch, LaunchRefused, Outcome, QueuedJob)
from .environment import redact

log = logging.getLogger("emulator.runner")


class _Abort(Exception):
    """The job cannot run; ``failure`` says why."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.details.get("reason") or failure.kind)
        self.failure = failure


class JobExecution:
    """Runs one job in a thread: prepare, job preparation, the job; stop on request or at the time limit."""

    def __init__(self, runner, job: QueuedJob, nodes: list) -> None:
        self.runner = runner
        self.store = runner.store
        self.job_id = job.job_id
        self.name = job.name
        self._marker = job.marker  # every process of the job carries it (processes.py)
        self._cluster_id = job.cluster_id
        self._nodes = nodes
        self._launch: Optional[JobLaunch] = None
        self._temp: Optional[Path] = None  # the job's own TMPDIR, where the sandbox gives it one
        self.done = threading.Event()
        self._lock = threading.Lock()
        self._stop_failure: Optional[Failure] = None
        self._process: Optional[ProcessGroup] = None
        self._thread = threading.Thread(target=self._run, name="runner-job-" + self.name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def node_ids(self) -> list:
        return [node.node_id for node in self._nodes]

    def request_stop(self, failure: Failure, at_once: bool = False) -> None:
        """Stop the job (SIGTERM to every process, SIGKILL after the grace period; ``at_once``: SIGKILL now,
        as when a node vanishes); it ends with ``failure``. The first reason wins (a terminated job stays
        terminated when the emulator then stops)."""
        with self._lock:
            if self._stop_failure is None:
                self._stop_failure = failure
            process = self._process
        if process is not None:
            if at_once:
                process.kill()
            else:
                process.stop()

    # ---- the thread --------------------------------------------------------------------------

    def _run(self) -> None:
        timer = None
        try:
            try:
                self._launch = self.store.launch(self.job_id, self._nodes)
            except LaunchRefused as exc:
                outcome = Outcome("failed", None, exc.failure)
            else:
                timer = threading.Timer(self._launch.wall_clock_seconds, self._wall_clock_exceeded)
                timer.daemon = True
                timer.start()
                self._temp = self.runner.sandbox.temp_dir()
                try:
                    outcome = self._execute(self._launch if self._temp is None else
                                            with_variables(self._launch, {"TMPDIR": str(self._temp)}))
                finally:
                    if self._temp is not None:
                        shutil.rmtree(self._temp, ignore_errors=True)
        except Exception:
            log.exception("job %s: the runner failed", self.name)
            outcome = Outcome("failed", None, Failure(INTERNAL))
        finally:
            if timer is not None:
                timer.cancel()
        self.runner.job_finished(self, outcome)

    def _wall_clock_exceeded(self) -> None:
        limit = self._launch.wall_clock_text
        log.info("job %s: time limit %s exceeded, stopping it", self.name, limit)
        self.store.job_terminating([self.job_id])
        self.request_stop(Failure(WALL_CLOCK, {"limit": limit}))

    def _execute(self, launch: JobLaunch) -> Outcome:
        try:
            self._prepare(launch)
        except _Abort as exc:
            return Outcome("failed", None, exc.failure)
        logs = [ExecutionLog(node.execution_log, launch.secrets.values()) for node in launch.nodes]
        try:
            outcome = self._run_job(launch, logs)
            for node in launch.nodes:
                for note in drain_synced(node.synced_mounts, node.mount_root):
                    logs[0].write(note)
                if node.node_mount_root is not None:
                    for note in drain_synced(node.node_synced_mounts, node.node_mount_root):
                        logs[0].write(note)
            for note in launch.final_notes() if launch.final_notes else []:
                logs[0].write(note)
            if outcome.failure is not None and outcome.failure.kind == PREEMPTED:
                logs[0].write("job {} stopped: node {} was preempted; the job goes back to the queue".format(
                    self.name, outcome.failure.details["node_id"]))
            else:
                logs[0].write("job {} ended: {}{}".format(self.name, outcome.state, "" if outcome.exit_code is None
                                                          else ", exit code {}".format(outcome.exit_code)))
        finally:
            for execution_log in logs:
                execution_log.close()
        return outcome

    def _run_job(self, launch: JobLaunch, logs: list) -> Outcome:
        self._log_start(launch, logs)
        try:
            if launch.preparation:
                code = self._run_phase("job preparation", launch, launch.preparation, None, logs)
                if self._stop_failure is not None:
                    return Outcome("failed", code, self._stop_failure)
                if code != 0:
                    return Outcome("failed", code, Failure(PREPARATION_FAILED))
            code = self._run_phase("job", launch, launch.tasks, launch.mpi, logs)
        except _Abort as exc:
            logs[0].write("job {} could not start: {}".format(self.name, exc))
            return Outcome("failed", None, exc.failure)
        if self._stop_failure is not None:  # code: of the process the stop cut short; None if it never started
            return Outcome("failed", code, self._stop_failure)
        return Outcome("succeeded", 0) if code == 0 else Outcome("failed", code, Failure(FAILED))

    def _log_start(self, launch: JobLaunch, logs: list) -> None:
        ids = [node.node.node_id for node in launch.nodes]
        for index, (node, execution_log) in enumerate(zip(launch.nodes, logs)):
            execution_log.write("job {} started on node(s) {} ({} node(s)); this is node {} ({}, {})".format(
                self.name, ", ".join(ids), len(ids), index, node.node.node_id, node.node.ip))
        for note in launch.notes:
            logs[0].write(note)
        logs[0].write("environment: {}".format(" ".join(sorted(n for n in launch.nodes[0].env if n.startswith("AZ_")))))

    # ---- preparing the nodes -----------------------------------------------------------------

    def _prepare(self, launch: JobLaunch) -> None:
        """Each node: a fresh temporary directory, the job's own mounts, then its directories."""
        for node in launch.nodes:
            shutil.rmtree(node.temp_dir, ignore_errors=True)  # a node wipes it before each job; never follows mounts
            try:
                node.mount_root.mkdir(parents=True, exist_ok=True)
                mount_shares(self.runner.shares, node.mounts, node.mount_root)
                fill_synced(node.synced_mounts, node.mount_root)
            except MountError as exc:
                raise _Abort(exc.failure) from None
            for directory in node.directories:
                try:
                    Path(directory).mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise _Abort(Failure(LAUNCH_FAILED, {"what": "the job", "reason": "cannot create {}: {}".format(
                        directory, exc.strerror)})) from None
        launching.write_node_files(launch)

    # ---- processes ---------------------------------------------------------------------------

    def _run_phase(self, what: str, launch: JobLaunch, tasks: list, mpi, logs: list) -> Optional[int]:
        """Run one phase as one process tree; its exit status, or None if a stop request came first."""
        argv, env, cwd, stdout, stderr = launching.phase_command(
            launch, "preparation" if what == "job preparation" else "job", tasks, mpi)
        for task in tasks:
            if task.node:
                logs[task.node].write("{} ({}) on this node: {}".format(what, task.name, self._shown(task.argv)))
        logs[0].write("{}: {}".format(what, self._shown(argv)))
        with open(stdout, "ab") as out, open(stderr, "ab") as err:
            with self._lock:
                if self._stop_failure is not None:
                    return None
                try:
                    process = ProcessGroup(self.runner.sandbox.command(argv, self._allowed(launch), env, cwd,
                                                                        launch.shared_dirs), env,
                                           cwd, out, err, marker=self._marker)
                except OSError as exc:  # argv holds expanded values: redact them
                    raise _Abort(Failure(LAUNCH_FAILED, {"what": what, "reason": redact("{}: {}".format(
                        argv[0], exc.strerror or exc), launch.secrets)})) from None
                self._process = process
            self.store.job_process(self.job_id, process.pid, process.start_time)
            logs[0].write("{} started (pid {})".format(what, process.pid))
            code = process.wait()
            with self._lock:
                self._process = None
        logs[0].write("{} exited with code {}".format(what, code))
        return code

    def _allowed(self, launch: JobLaunch) -> list:
        """What of the data directory the job's processes may use: its nodes, its own directories, and the
        shares and directories mounted for it and on its nodes."""
        allowed = [launch.working_dir, launch.bin_dir, *launch.job_dirs, self._temp]
        for node in launch.nodes:
            allowed += [node.node.directory, node.temp_dir, node.work_dir, node.mount_root, node.node_mount_root]
            allowed += mounted_sources(self.runner.shares, node.mounts)
        cluster = self.store.cluster(self._cluster_id) if self._cluster_id is not None else None
        if cluster is not None:
            allowed += mounted_sources(self.runner.shares, cluster.mounts, cluster.directory_mounts)
        return allowed

    def _shown(self, argv: list) -> str:
        return redact(" ".join(shlex.quote(a) for a in argv), self._launch.secrets)


def stop_failure(reason) -> Failure:
    """What a stop requested by the service fails the job with."""
    return reason if isinstance(reason, Failure) else Failure(STOPPED, {"reason": reason})
