"""One started job: its directories, environment and processes, from start to outcome.

The job runs on the host (its container image is only recorded), on the first of its nodes, as a
process group whose stdout/stderr go straight into ``{stdOutErrPathPrefix}/{segment}/stdouterr/``
on the mounted share, so clients can follow them while it runs.
"""
from __future__ import annotations

import json
import logging
import shlex
import shutil
import sys
import threading
from pathlib import Path
from typing import NamedTuple, Optional

from ..batchai import exceptions as errors
from ..batchai.validation import parse_duration, toolkit_of
from .environment import expand, host_environment, redact, secret_values, user_variables
from .nodes import NodeError, mount_shares
from .processes import ExecutionLog, ProcessGroup, job_marker

log = logging.getLogger("emulator.runner")

SHELL = "/bin/sh"
TOOLKIT_ARGS = {"tensorFlowSettings": "masterCommandLineArgs"}  # others: commandLineArgs
CONTAINER_ONLY = {
    "cntkSettings": "BrainScript (cntkSettings.configFilePath) needs the CNTK container; use pythonScriptFilePath",
    "caffeSettings": "Caffe prototxt (caffeSettings.configFilePath) needs the Caffe container; "
                     "use pythonScriptFilePath",
}


class Outcome(NamedTuple):
    state: str                 # succeeded | failed
    exit_code: Optional[int]
    errors: list


class _Abort(Exception):
    """The job cannot run; ``error`` says why."""

    def __init__(self, error: dict) -> None:
        super().__init__(error["message"])
        self.error = error


def job_command(props: dict, env: dict) -> list:
    """The argv of a job's toolkit: custom command lines go to the shell (which expands them);
    Python toolkits run ``<interpreter> <script> <args>`` with each word expanded here."""
    toolkit = toolkit_of(props)
    settings = props[toolkit]
    if settings.get("commandLine"):
        return [SHELL, "-c", settings["commandLine"]]
    if not settings.get("pythonScriptFilePath"):
        raise _Abort(errors.toolkit_not_supported(CONTAINER_ONLY.get(toolkit, "{} needs pythonScriptFilePath"
                                                                               .format(toolkit))))
    interpreter = expand(settings.get("pythonInterpreterPath") or "", env) or sys.executable
    args = shlex.split(settings.get(TOOLKIT_ARGS.get(toolkit, "commandLineArgs")) or "")
    return [interpreter, expand(settings["pythonScriptFilePath"], env)] + [expand(arg, env) for arg in args]


class JobExecution:
    """Runs one job in a thread: prepare, job preparation, the job; stop on request or at maxWallClockTime."""

    def __init__(self, runner, job, cluster, node_ids: list) -> None:
        self.runner = runner
        self.backend = runner.backend
        self.job_id = job["id"]
        self.name = job["name"]
        self._job = job
        self._props = json.loads(job["properties"])
        self._segment = self.backend.output_segment(job)
        self._node_dirs = [self.backend.node_dir(cluster, node_id) for node_id in node_ids]
        self._node_ids = node_ids
        self._secrets = secret_values(self._props.get("secrets"))
        self._env: dict = {}
        self.done = threading.Event()
        self._lock = threading.Lock()
        self._stop_error: Optional[dict] = None
        self._process: Optional[ProcessGroup] = None
        self._thread = threading.Thread(target=self._run, name="batchai-job-" + self.name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def request_stop(self, error: dict) -> None:
        """Stop the job (SIGTERM, then SIGKILL after the grace period); ``error`` is what it failed with.
        The first reason wins (a terminated job stays terminated when the emulator then stops)."""
        with self._lock:
            if self._stop_error is None:
                self._stop_error = error
            process = self._process
        if process is not None:
            process.stop()

    # ---- the thread --------------------------------------------------------------------------

    def _run(self) -> None:
        limit = self._props["constraints"]["maxWallClockTime"]
        timer = threading.Timer(parse_duration(limit), self._wall_clock_exceeded, args=(limit,))
        timer.daemon = True
        timer.start()
        try:
            outcome = self._execute()
        except Exception:
            log.exception("job %s: the runner failed", self.name)
            outcome = Outcome("failed", None, [errors.batchai_error(
                "InternalError", "The emulator failed to run the job; see the emulator's log.")])
        finally:
            timer.cancel()
        self.runner.job_finished(self, outcome)

    def _wall_clock_exceeded(self, limit: str) -> None:
        log.info("job %s: maxWallClockTime %s exceeded, stopping it", self.name, limit)
        self.backend.mark_terminating([self.job_id])
        self.request_stop(errors.job_wall_clock_exceeded(limit))

    def _execute(self) -> Outcome:
        try:
            stdouterr = self._prepare()
        except _Abort as exc:
            return Outcome("failed", None, [exc.error])
        with ExecutionLog(stdouterr / "execution.log", self._secrets.values()) as execution_log:
            outcome = self._run_job(stdouterr, execution_log)
            self._note_unlisted_outputs(execution_log)
            execution_log.write("job {} ended: {}{}".format(
                self.name, outcome.state,
                "" if outcome.exit_code is None else ", exit code {}".format(outcome.exit_code)))
        return outcome

    def _run_job(self, stdouterr: Path, execution_log: ExecutionLog) -> Outcome:
        self._log_start(execution_log)
        prep = self._props.get("jobPreparation")
        try:
            if prep:
                code = self._run_process("job preparation", [SHELL, "-c", prep["commandLine"]],
                                         stdouterr / "stdout-job_prep.txt", stdouterr / "stderr-job_prep.txt",
                                         execution_log)
                if self._stop_error is not None:
                    return Outcome("failed", code, [self._stop_error])
                if code != 0:
                    return Outcome("failed", code, [errors.job_preparation_failed()])
            command = job_command(self._props, self._process_environment())  # what a shell would expand
            code = self._run_process("job", command, stdouterr / "stdout.txt",
                                     stdouterr / "stderr.txt", execution_log)
        except _Abort as exc:
            execution_log.write("job {} could not start: {}".format(self.name, exc))
            return Outcome("failed", None, [exc.error])
        if self._stop_error is not None:  # code: of the process the stop cut short; None if it never started
            return Outcome("failed", code, [self._stop_error])
        return Outcome("succeeded", 0, []) if code == 0 else Outcome("failed", code, [errors.job_failed()])

    def _log_start(self, execution_log: ExecutionLog) -> None:
        execution_log.write("job {} started on node(s) {} (nodeCount {})".format(
            self.name, ", ".join(self._node_ids), self._props["nodeCount"]))
        image = ((self._props.get("containerSettings") or {}).get("imageSourceRegistry") or {}).get("image")
        if image:
            execution_log.write("container image {} recorded; the emulator runs the job on the host".format(image))
        execution_log.write("environment: {}".format(" ".join(sorted(n for n in self._env if n.startswith("AZ_")))))

    def _note_unlisted_outputs(self, execution_log: ExecutionLog) -> None:
        """Names the job wrote that are not UTF-8 cannot be listed or downloaded: say so in the log."""
        for directory in self._props.get("outputDirectories") or []:
            located = self.backend.output_share_location(self._job, directory["id"])
            if located is None:
                continue
            names = self.backend.files.unlisted_names(*located)
            if names:
                execution_log.write("output directory {}: {} name(s) are not UTF-8, so listOutputFiles and the File "
                                    "service leave them out: {}".format(directory["id"], len(names), ", ".join(names)))

    # ---- preparing the node ------------------------------------------------------------------

    def _prepare(self) -> Path:
        """Directories, job-level mounts and the environment; returns the stdouterr directory."""
        node = self._node_dirs[0]
        temp_root = node / "jobs"
        job_temp = temp_root / self._job["workspace"] / self._job["experiment"] / self.name
        env = {
            "AZ_BATCHAI_MOUNT_ROOT": str(node / "mounts"),
            "AZ_BATCHAI_JOB_MOUNT_ROOT": str(job_temp / "mounts"),
            "AZ_BATCHAI_JOB_TEMP_DIR": str(temp_root),
            "AZ_BATCHAI_JOB_TEMP": str(job_temp),
            "AZ_BATCHAI_SHARED_JOB_TEMP": str(job_temp / "shared"),
            "AZ_BATCHAI_MPI_HOST_FILE": str(job_temp / "hostfile"),
            "AZ_BATCHAI_NUM_GPUS": "0",
            "AZ_BATCHAI_TASK_INDEX": "0",
        }
        shutil.rmtree(temp_root, ignore_errors=True)  # a node wipes it before each job; never follows mounts
        try:
            (job_temp / "mounts").mkdir(parents=True)
            (job_temp / "shared").mkdir()
            (job_temp / "hostfile").write_text("localhost slots={}\n".format(len(self._node_dirs)))
            mount_shares(self.backend.files, (self._props.get("mountVolumes") or {}).get("azureFileShares"),
                         job_temp / "mounts")
        except NodeError as exc:
            raise _Abort(exc.error) from None
        # Paths may use the job's own variables too (listOutputFiles resolves them the same way).
        path_env = {**env, **user_variables(self._props.get("environmentVariables"), env)}
        stdouterr = self._make_directory(expand(self._props["stdOutErrPathPrefix"], path_env), "stdouterr")
        env["AZ_BATCHAI_STDOUTERR_DIR"] = str(stdouterr)
        for directory in self._props.get("inputDirectories") or []:
            env["AZ_BATCHAI_INPUT_" + directory["id"]] = expand(directory["path"], path_env)
        for directory in self._props.get("outputDirectories") or []:
            suffix = expand(directory.get("pathSuffix") or "", path_env)
            env["AZ_BATCHAI_OUTPUT_" + directory["id"]] = str(self._make_directory(
                expand(directory["pathPrefix"], path_env), "outputs", suffix))
        # Now the job's variables may refer to its input and output directories as well.
        env.update(user_variables(self._props.get("environmentVariables"), env))
        self._env = env
        return stdouterr

    def _make_directory(self, prefix: str, *parts: str) -> Path:
        """``{prefix}/{segment}/{parts}``, created (the service always creates output directories)."""
        path = Path(prefix, self._segment, *[part for part in parts if part])
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _Abort(errors.job_launch_failed("the job", "cannot create {}: {}".format(path, exc.strerror))) \
                from None
        return path

    # ---- processes ---------------------------------------------------------------------------

    def _process_environment(self) -> dict:
        """What the job's processes get: the host's environment, the job's variables and its secrets."""
        return {**host_environment(), "PYTHONUNBUFFERED": "1", **self._env, **self._secrets}

    def _run_process(self, what: str, argv: list, stdout_path: Path, stderr_path: Path,
                     execution_log: ExecutionLog) -> Optional[int]:
        """Run ``argv`` as a process group with the job's environment; its exit status, or None if a
        stop request came first."""
        env = self._process_environment()
        execution_log.write("{}: {}".format(what, redact(" ".join(shlex.quote(a) for a in argv), self._secrets)))
        with open(stdout_path, "ab") as out, open(stderr_path, "ab") as err:
            with self._lock:
                if self._stop_error is not None:
                    return None
                try:
                    process = ProcessGroup(argv, env, Path(self._env["AZ_BATCHAI_JOB_TEMP"]), out, err,
                                           marker=job_marker(self._job))
                except OSError as exc:  # argv holds expanded values: redact them
                    raise _Abort(errors.job_launch_failed(what, redact(
                        "{}: {}".format(argv[0], exc.strerror or exc), self._secrets))) from None
                self._process = process
            self.backend.record_process(self.job_id, process.pid, process.start_time)
            execution_log.write("{} started (pid {})".format(what, process.pid))
            code = process.wait()
            with self._lock:
                self._process = None
        execution_log.write("{} exited with code {}".format(what, code))
        return code
