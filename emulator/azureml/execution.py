"""Azure ML command jobs, run on this machine the way a compute cluster runs them.

Each job: Queued -> Preparing (its code snapshot and inputs are copied from blob storage into the job's
directory) -> Running (``instance_count`` x ``process_count_per_instance`` processes of the command, each
its own process group, with the variables Azure ML sets, PyTorch's included) -> Finalizing (``outputs/``
and the named outputs are uploaded) -> Completed, Failed or Canceled. While it runs, its logs are copied
to the artifact store every LOG_COPY_SECONDS as ``user_logs/std_log.txt`` (``std_log_process_<rank>.txt``
with several processes), where ``jobs.stream`` reads them. The container image (``environmentId``) is
recorded, not pulled: ``python`` is the emulator's own interpreter.
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
from pathlib import Path
from typing import Optional

from ..runner.environment import host_environment
from ..runner.processes import GRACE_SECONDS, ProcessGroup
from . import exceptions as errors
from .models import ARTIFACT_CONTAINER, BLOB_STORE, TERMINAL

log = logging.getLogger("emulator.azureml")

LOG_COPY_SECONDS = 0.5
STOP_WAIT_SECONDS = GRACE_SECONDS + 10
_PLACEHOLDER = re.compile(r"\$\{\{\s*(inputs|outputs)\.([A-Za-z0-9_]+)\s*\}\}")
_DATASTORE_PATH = re.compile(r"^azureml://datastores/(?P<datastore>[^/]+)/paths/(?P<path>.*)$")
_ASSET_ID = re.compile(r"/(?P<kind>codes|data)/(?P<name>[^/]+)/versions/(?P<version>[^/]+)$", re.IGNORECASE)
_SHORT_ASSET = re.compile(r"^azureml:(?P<name>[^:@/]+):(?P<version>[^:@/]+)$")


class _JobFailure(Exception):
    def __init__(self, error: dict) -> None:
        super().__init__(error["error"]["message"])
        self.error = error


class JobRun:
    """One job in its own thread."""

    def __init__(self, runner: "AzureMLRunner", rg: str, ws: str, name: str) -> None:
        self.runner, self.rg, self.ws, self.name = runner, rg, ws, name
        self.backend, self.storage = runner.backend, runner.backend.storage
        row = self.backend.job_row(rg, ws, name)
        self.props = json.loads(row["properties"])
        self.compute = self.props["computeId"].rstrip("/").rsplit("/", 1)[-1]
        resources = self.props.get("resources") or {}
        distribution = self.props.get("distribution") or {}
        self.nodes = int(resources.get("instanceCount") or 1)
        self.per_node = int(distribution.get("processCountPerInstance") or 1)
        self.directory = runner.root / _safe(rg) / _safe(ws) / _safe(name)
        self.done = threading.Event()
        self._lock = threading.Lock()
        self._cancelled = False
        self._processes: list = []
        self._thread = threading.Thread(target=self._run, name="azureml-job-" + name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def request_cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            processes = list(self._processes)
        for process in processes:
            process.stop()

    # ---- the thread ----------------------------------------------------------------------------

    def _status(self, status: str, error: Optional[dict] = None) -> None:
        self.backend.set_job_status(self.rg, self.ws, self.name, status, error)

    def _run(self) -> None:
        try:
            self._status("Queued")
            maximum = self.backend.max_nodes(self.rg, self.ws, self.compute)
            if maximum is None or self.nodes > maximum:
                raise _JobFailure(errors.too_many_nodes(self.nodes, maximum or 0, self.compute))
            self._status("Preparing")
            paths = self._prepare()
            if self._cancelled:
                self._status("Canceled", errors.job_cancelled())
                return
            self._status("Running")
            code, log_name = self._execute(paths)
            self._status("Finalizing")
            self._finalize(paths)
            if self._cancelled:
                self._status("Canceled", errors.job_cancelled())
            elif code != 0:
                self._status("Failed", errors.user_process_failed(code, log_name))
            else:
                self._status("Completed")
        except _JobFailure as exc:
            self._status("Failed", exc.error)
        except Exception:
            log.exception("job %s: the emulator failed to run it", self.name)
            self._status("Failed", errors.job_error("SystemError", "The emulator failed to run the job; see its log."))
        finally:
            log.info("job %s ended", self.name)
            self.done.set()
            self.runner.finished(self)

    # ---- preparing -----------------------------------------------------------------------------

    def _prepare(self) -> dict:
        shutil.rmtree(self.directory, ignore_errors=True)
        code_dir = self.directory / "code"
        for sub in ("code", "inputs", "outputs", "logs"):
            (self.directory / sub).mkdir(parents=True, exist_ok=True)
        if self.props.get("codeId"):
            code = self._asset(self.props["codeId"], "codes")
            container, path = self.storage.parse_url(code["codeUri"])
            if not self.storage.download_prefix(container, path.rstrip("/") + "/", code_dir):
                raise _JobFailure(errors.job_setup_failed("the code snapshot {} is empty".format(code["codeUri"])))
        paths = {"code": code_dir, "logs": self.directory / "logs", "inputs": {}, "outputs": {}}
        for name, spec in (self.props.get("inputs") or {}).items():
            paths["inputs"][name] = self._input(name, spec or {})
        for name in self.props.get("outputs") or {}:
            if name != "default":
                target = self.directory / "outputs" / name
                target.mkdir(parents=True, exist_ok=True)
                paths["outputs"][name] = target
        (code_dir / "outputs").mkdir(exist_ok=True)
        return paths

    def _asset(self, reference: str, kind: str) -> dict:
        match = _ASSET_ID.search(reference) or _SHORT_ASSET.match(reference)
        if not match:
            raise _JobFailure(errors.job_setup_failed("cannot resolve {!r}".format(reference)))
        try:
            return self.backend.get_asset(self.rg, self.ws, kind, match.group("name"), match.group("version"))[
                "properties"]
        except Exception:
            raise _JobFailure(errors.job_setup_failed("{} {} does not exist".format(kind, reference))) from None

    def _input(self, name: str, spec: dict) -> str:
        if spec.get("jobInputType") == "literal":
            return str(spec.get("value", ""))
        uri = spec.get("uri") or ""
        if not uri.startswith("azureml://"):
            uri = self._asset(uri, "data").get("dataUri", "")
        match = _DATASTORE_PATH.match(uri)
        if not match:
            raise _JobFailure(errors.job_setup_failed("input {} has an unsupported uri {!r}".format(name, uri)))
        container = self.backend.datastore_container(self.rg, self.ws, match.group("datastore"))
        target = self.directory / "inputs" / name
        target.mkdir(parents=True, exist_ok=True)
        path = match.group("path").strip("/")
        if not self.storage.download_prefix(container, path + "/", target):
            raise _JobFailure(errors.job_setup_failed("input {} ({}) holds no files".format(name, uri)))
        return str(target)

    # ---- running -------------------------------------------------------------------------------

    def _command(self, paths: dict) -> str:
        def value(match: re.Match) -> str:
            kind, name = match.group(1), match.group(2)
            found = paths[kind].get(name)
            if found is None:
                raise _JobFailure(errors.job_setup_failed("the command uses ${{{{{}.{}}}}}, which the job does "
                                                          "not define".format(kind, name)))
            return str(found)

        return _PLACEHOLDER.sub(value, self.props["command"])

    def _environment(self, node: int, local: int, master_port: int) -> dict:
        env = host_environment()
        # "python" in the command is the emulator's interpreter: the environment image is not pulled.
        env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", os.defpath)
        env.update({str(k): str(v) for k, v in (self.props.get("environmentVariables") or {}).items()})
        rank = node * self.per_node + local
        env.update({
            "PYTHONUNBUFFERED": "1",
            "AZUREML_RUN_ID": self.name, "AZUREML_ARM_SUBSCRIPTION": self.backend.subscription_id,
            "AZUREML_ARM_RESOURCEGROUP": self.rg, "AZUREML_ARM_WORKSPACE_NAME": self.ws,
            "AZUREML_ARM_PROJECT_NAME": self.props.get("experimentName", "Default"),
            "AZUREML_EXPERIMENT_NAME": self.props.get("experimentName", "Default"),
        })
        if (self.props.get("distribution") or {}).get("distributionType") == "PyTorch":
            env.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(master_port),
                        "WORLD_SIZE": str(self.nodes * self.per_node), "NODE_RANK": str(node), "RANK": str(rank),
                        "LOCAL_RANK": str(local), "LOCAL_WORLD_SIZE": str(self.per_node)})
        return env

    def _log_names(self) -> list:
        count = self.nodes * self.per_node
        return ["std_log.txt"] if count == 1 else ["std_log_process_{}.txt".format(r) for r in range(count)]

    def _execute(self, paths: dict) -> tuple:
        command, names = self._command(paths), self._log_names()
        master_port = _free_port()
        files = [open(paths["logs"] / name, "ab") for name in names]
        copier = _LogCopier(self.storage, paths["logs"], self.backend.artifact_prefix(self.name) + "user_logs/")
        try:
            with self._lock:
                if self._cancelled:
                    return 1, "user_logs/" + names[0]
                for index, out in enumerate(files):
                    node, local = divmod(index, self.per_node)
                    self._processes.append(ProcessGroup(["/bin/sh", "-c", command],
                                                        self._environment(node, local, master_port),
                                                        paths["code"], out, out))
            log.info("job %s running %d process(es) on compute %s", self.name, len(files), self.compute)
            copier.start()
            codes = self._wait_all()
        finally:
            for out in files:
                out.close()
            copier.stop()
        failed = [(rank, code) for rank, code in enumerate(codes) if code != 0]
        if not failed:
            return 0, "user_logs/" + names[0]
        rank, code = failed[0]
        return code, "user_logs/" + names[rank]

    def _wait_all(self) -> list:
        """Wait for every process; the first that fails stops the others (as torchrun does)."""
        codes: list = [None] * len(self._processes)
        finished = threading.Condition()

        def wait(index: int, process: ProcessGroup) -> None:
            code = process.wait()
            with finished:
                codes[index] = code
                finished.notify_all()

        for index, process in enumerate(self._processes):
            threading.Thread(target=wait, args=(index, process), daemon=True).start()
        with finished:
            while any(code is None for code in codes):
                finished.wait(1.0)
                if any(code not in (None, 0) for code in codes):
                    for process in self._processes:
                        process.stop()
        return codes

    # ---- finalizing ----------------------------------------------------------------------------

    def _finalize(self, paths: dict) -> None:
        prefix = self.backend.artifact_prefix(self.name)
        self.storage.upload_directory(paths["code"] / "outputs", ARTIFACT_CONTAINER, prefix + "outputs/")
        self.storage.upload_directory(paths["logs"], ARTIFACT_CONTAINER, prefix + "user_logs/")
        container = self.backend.datastore_container(self.rg, self.ws, BLOB_STORE)
        for name, directory in paths["outputs"].items():
            self.storage.upload_directory(directory, container, self.backend.output_prefix(self.name, name))


class _LogCopier:
    """Copies the job's growing log files to blob storage while it runs, so that streams see them."""

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


class AzureMLRunner:
    """Starts jobs, cancels them, and reports how many nodes a compute uses."""

    def __init__(self, backend, root: Path) -> None:
        self.backend = backend
        self.root = root
        self._lock = threading.Lock()
        self._runs: dict = {}
        self._closing = False

    def recover(self) -> None:
        """After a restart: jobs that were under way are reported failed (their processes are gone)."""
        for row in self.backend.store.query("SELECT resource_group, workspace, name, status FROM aml_jobs"):
            if row["status"] not in TERMINAL:
                self.backend.set_job_status(row["resource_group"], row["workspace"], row["name"], "Failed",
                                            errors.job_interrupted())

    def _key(self, rg: str, ws: str, name: str) -> tuple:
        return rg.lower(), ws.lower(), name

    def submit(self, rg: str, ws: str, name: str) -> None:
        with self._lock:
            if self._closing:
                self.backend.set_job_status(rg, ws, name, "Failed", errors.job_interrupted())
                return
            run = JobRun(self, rg, ws, name)
            self._runs[self._key(rg, ws, name)] = run
        run.start()

    def finished(self, run: JobRun) -> None:
        with self._lock:
            self._runs.pop(self._key(run.rg, run.ws, run.name), None)

    def cancel(self, rg: str, ws: str, name: str) -> None:
        """Stop the job and wait for it to end (Canceled)."""
        with self._lock:
            run = self._runs.get(self._key(rg, ws, name))
        if run is None:
            self.backend.set_job_status(rg, ws, name, "Canceled", errors.job_cancelled())
            return
        run.request_cancel()
        if not run.done.wait(STOP_WAIT_SECONDS):
            log.error("job %s did not stop within %s s", name, STOP_WAIT_SECONDS)

    def _stop_where(self, match) -> None:
        with self._lock:
            runs = [run for run in self._runs.values() if match(run)]
        for run in runs:
            run.request_cancel()
        for run in runs:
            run.done.wait(STOP_WAIT_SECONDS)

    def stop_workspace(self, rg: str, ws: str) -> None:
        self._stop_where(lambda run: (run.rg.lower(), run.ws.lower()) == (rg.lower(), ws.lower()))

    def stop_compute(self, rg: str, ws: str, compute: str) -> None:
        self._stop_where(lambda run: (run.rg.lower(), run.ws.lower(), run.compute.lower()) ==
                         (rg.lower(), ws.lower(), compute.lower()))

    def nodes_in_use(self, rg: str, ws: str, compute: str) -> int:
        with self._lock:
            return sum(run.nodes for run in self._runs.values()
                       if (run.rg.lower(), run.ws.lower(), run.compute.lower()) == (rg.lower(), ws.lower(),
                                                                                    compute.lower()))

    def close(self) -> None:
        """Stop every running job; they end Failed (the emulator stopped), as after a crash."""
        with self._lock:
            self._closing = True
            runs = list(self._runs.values())
        for run in runs:
            self.backend.set_job_status(run.rg, run.ws, run.name, "Failed", errors.job_interrupted())
            run.request_cancel()
        for run in runs:
            run.done.wait(STOP_WAIT_SECONDS)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name) or "_"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


__all__ = ["AzureMLRunner"]
