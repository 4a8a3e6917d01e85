"""What a started Batch AI job runs, per toolkit, as the service ran it (reference:
shared/reference/batchai-distributed.md): a ``JobLaunch`` for the runner.

Per node: ``<node>/jobs/<ws>/<exp>/<job>`` as AZ_BATCHAI_JOB_TEMP, the job's mounts under its
``mounts``, the MPI host file, and the node's environment. Then, by toolkit:
- customToolkitSettings: the command line once, on the first node (it may ``ssh`` to the others);
- customMpiSettings, horovodSettings, chainerSettings, cntkSettings, caffeSettings: ``processCount``
  ranks (default nodeCount) under mpirun over the job's nodes, all into stdout.txt/stderr.txt; a
  single rank on a single node runs without mpirun (a singleton MPI process);
- pyTorchSettings: ``processCount`` tasks (default nodeCount), rank = AZ_BATCHAI_TASK_INDEX, file
  rendezvous in the shared job directory, stdout-<i>.txt/stderr-<i>.txt (stdout.txt for one task);
- tensorFlowSettings: parameter servers and workers dealt over the nodes, ports from 2222 per node,
  stdout-ps-<i>.txt/stdout-wk-<i>.txt; worker 0 gets masterCommandLineArgs; the job ends with the workers;
- caffe2Settings: one task per node, TASK_INDEX = node index.
Job preparation runs on every node first. Several nodes: one execution-<nodeId>.log per node and
stdout-job_prep-<nodeId>.txt; one node: execution.log and stdout-job_prep.txt.
"""
from __future__ import annotations

import dataclasses
import json
import shlex
import sys
from pathlib import Path

from ..core.paths import inside
from ..runner.environment import (NODE_NETWORK, expand, host_environment, secret_values, threads_per_process,
                                  user_variables)
from ..runner.mounts import share_mounts
from ..runner.records import Failure, JobLaunch, LaunchRefused, MpiLaunch, NodeLaunch, Task
from .validation import parse_duration, toolkit_of

SHELL = "/bin/sh"
REFUSED = "refused"
CONTAINER_ONLY = {
    "cntkSettings": "BrainScript (cntkSettings.configFilePath) needs the CNTK container; use pythonScriptFilePath",
    "caffeSettings": "Caffe prototxt (caffeSettings.configFilePath) needs the Caffe container; "
                     "use pythonScriptFilePath",
}
TF_FIRST_PORT = 2222
# PyTorch 0.4's 'tcp' backend is gone from current torch; gloo is what does TCP now.
PYTORCH_BACKENDS = {"tcp": "gloo"}


def _refuse(reason: str) -> LaunchRefused:
    return LaunchRefused(Failure(REFUSED, {"reason": reason}))


class _Job:
    """The pieces every toolkit needs: nodes, their environments, the stdouterr directory."""

    def __init__(self, row, props: dict, nodes: list, segment: str, blob_mount=None) -> None:
        self.row, self.props, self.nodes, self.segment = row, props, nodes, segment
        self.blob_mount = blob_mount  # an azureBlobFileSystems entry as a SyncedMount
        self.multi = len(nodes) > 1
        self.secrets = secret_values(props.get("secrets"))
        self.temp_roots = [node.directory / "jobs" for node in nodes]
        self.job_temps = [inside(root, row["workspace"], row["experiment"], row["name"]) for root in self.temp_roots]
        self.shared = self.job_temps[0] / "shared"  # one directory that every node sees, as the service's NFS
        self.bin_dir = self.temp_roots[0] / ".batchai-emulator"
        self.envs = [self._node_env(index) for index in range(len(nodes))]
        self.stdouterr = Path(self.envs[0]["AZ_BATCHAI_STDOUTERR_DIR"])

    def _node_env(self, index: int) -> dict:
        node, job_temp = self.nodes[index], self.job_temps[index]
        env = {
            "AZ_BATCHAI_MOUNT_ROOT": str(node.directory / "mounts"),
            "AZ_BATCHAI_JOB_MOUNT_ROOT": str(job_temp / "mounts"),
            "AZ_BATCHAI_JOB_TEMP_DIR": str(self.temp_roots[index]),
            "AZ_BATCHAI_JOB_TEMP": str(job_temp),
            "AZ_BATCHAI_SHARED_JOB_TEMP": str(self.shared),
            "AZ_BATCHAI_MPI_HOST_FILE": str(job_temp / "hostfile"),
            "AZ_BATCHAI_NUM_GPUS": "0",
            "AZ_BATCHAI_TASK_INDEX": "0",
            "AZ_BATCH_HOST_LIST": ",".join(n.ip for n in self.nodes),
        }
        # Paths may use the job's own variables too (listOutputFiles resolves them the same way).
        path_env = {**env, **user_variables(self.props.get("environmentVariables"), env)}
        env["AZ_BATCHAI_STDOUTERR_DIR"] = str(Path(expand(self.props["stdOutErrPathPrefix"], path_env),
                                                   self.segment, "stdouterr"))
        for directory in self.props.get("inputDirectories") or []:
            env["AZ_BATCHAI_INPUT_" + directory["id"]] = expand(directory["path"], path_env)
        for directory in self.props.get("outputDirectories") or []:
            suffix = expand(directory.get("pathSuffix") or "", path_env)
            env["AZ_BATCHAI_OUTPUT_" + directory["id"]] = str(Path(
                expand(directory["pathPrefix"], path_env), self.segment, "outputs", *[p for p in [suffix] if p]))
        # Now the job's variables may refer to its input and output directories as well.
        env.update(user_variables(self.props.get("environmentVariables"), env))
        host = {**host_environment(), **threads_per_process(_processes(self.props, len(self.nodes))), **NODE_NETWORK}
        path = "{}:{}".format(self.bin_dir, host.get("PATH", "/usr/bin:/bin"))  # the job's ssh comes first
        return {**host, "PYTHONUNBUFFERED": "1", **env, "PATH": path, **self.secrets}

    def node_launch(self, index: int, host_file: str) -> NodeLaunch:
        env = self.envs[index]
        directories = ()
        if index == 0:  # on shares every node sees: made once
            directories = (self.shared, self.stdouterr) + tuple(
                Path(v) for k, v in env.items() if k.startswith("AZ_BATCHAI_OUTPUT_"))
        log_name = "execution-{}.log".format(self.nodes[index].node_id) if self.multi else "execution.log"
        return NodeLaunch(node=self.nodes[index], temp_dir=self.temp_roots[index], work_dir=self.job_temps[index],
                          mount_root=self.job_temps[index] / "mounts",
                          mounts=share_mounts((self.props.get("mountVolumes") or {}).get("azureFileShares")),
                          synced_mounts=tuple(self.blob_mount(entry) for entry in (
                              self.props.get("mountVolumes") or {}).get("azureBlobFileSystems") or []
                              if self.blob_mount),
                          directories=directories, files={env["AZ_BATCHAI_MPI_HOST_FILE"]: host_file}, env=env,
                          execution_log=self.stdouterr / log_name)

    def task(self, name: str, argv: list, node: int, files: str, **env) -> Task:
        """A task on ``node`` writing stdout<files>.txt / stderr<files>.txt."""
        return Task(name=name, argv=argv, env={**self.envs[node], **env}, node=node,
                    stdout=self.stdouterr / "stdout{}.txt".format(files),
                    stderr=self.stdouterr / "stderr{}.txt".format(files))

    def expanded(self, text: str, node: int = 0, extra: dict = None) -> str:
        return expand(text or "", {**self.envs[node], **(extra or {})})


def _slots(process_count: int, node_count: int) -> list:
    """Ranks per node: processCount spread evenly, the first nodes taking any remainder."""
    return [process_count // node_count + (1 if index < process_count % node_count else 0)
            for index in range(node_count)]


def host_file(nodes: list, process_count: int) -> str:
    """$AZ_BATCHAI_MPI_HOST_FILE: one ``<ip> slots=<ranks on it>`` line per node (Open MPI's syntax)."""
    return "".join("{} slots={}\n".format(node.ip, max(slots, 1))
                   for node, slots in zip(nodes, _slots(process_count, len(nodes))))


def python_argv(job: _Job, settings: dict, args_key: str = "commandLineArgs", node: int = 0, env: dict = None) -> list:
    """``<interpreter> <script> <args>``, each word expanded as the node's shell would (with the task's ``env``)."""
    interpreter = job.expanded(settings.get("pythonInterpreterPath"), node, env) or sys.executable
    args = shlex.split(settings.get(args_key) or "")
    return [interpreter, job.expanded(settings["pythonScriptFilePath"], node, env)] + [
        job.expanded(arg, node, env) for arg in args]


def _node_expanded(word: str) -> str:
    """``word`` for the node's shell: one word, its $VARIABLES expanded there and nothing else."""
    return '"{}"'.format(word.replace("\\", "\\\\").replace('"', '\\"').replace("`", "\\`").replace(
        "$(", "\\$("))


def _process_count(settings: dict, node_count: int) -> int:
    return settings.get("processCount") or node_count


def _processes(props: dict, node_count: int) -> int:
    """How many processes the job's toolkit starts in all."""
    toolkit = toolkit_of(props)
    settings = props[toolkit]
    if toolkit == "customToolkitSettings":
        return 1
    if toolkit == "tensorFlowSettings":
        return sum(_tensorflow_counts(settings, node_count))
    if toolkit == "caffe2Settings":
        return node_count
    return _process_count(settings, node_count)


def _pytorch_tasks(job: _Job, settings: dict) -> list:
    count = _process_count(settings, len(job.nodes))
    backend = settings.get("communicationBackend") or "gloo"
    backend = PYTORCH_BACKENDS.get(backend.lower(), backend)
    per_node = -(-count // len(job.nodes))
    tasks = []
    for rank in range(count):
        node = rank // per_node
        env = {"AZ_BATCHAI_TASK_INDEX": str(rank)}
        if count > 1:
            env.update(AZ_BATCHAI_PYTORCH_BACKEND=backend,
                       AZ_BATCHAI_PYTORCH_INIT_METHOD="file://{}/pytorch_init".format(job.shared))
        tasks.append(job.task("rank {}".format(rank), python_argv(job, settings, node=node, env=env), node,
                              "-{}".format(rank) if count > 1 else "", **env))
    return tasks


def _tensorflow_counts(settings: dict, node_count: int) -> tuple:
    """(parameter servers, workers): workers default to nodeCount, one parameter server when distributed."""
    workers = settings.get("workerCount") or node_count
    servers = settings.get("parameterServerCount")
    return (1 if workers > 1 else 0) if servers is None else servers, workers


def _tensorflow_tasks(job: _Job, settings: dict) -> list:
    node_count = len(job.nodes)
    servers, workers = _tensorflow_counts(settings, node_count)
    ports = [TF_FIRST_PORT] * node_count
    placed = []  # (role, index, node, port): parameter servers first, each role dealt from the first node
    for role, count in (("ps", servers), ("wk", workers)):
        for index in range(count):
            node = index % node_count
            placed.append((role, index, node, ports[node]))
            ports[node] += 1
    hosts = {role: ["{}:{}".format(job.nodes[node].ip, port) for r, _, node, port in placed if r == role]
             for role in ("ps", "wk")}
    cluster = {"ps": hosts["ps"], "worker": hosts["wk"]}
    tasks = []
    for role, index, node, _ in placed:
        args_key = ("parameterServerCommandLineArgs" if role == "ps" else
                    "masterCommandLineArgs" if index == 0 or not settings.get("workerCommandLineArgs")
                    else "workerCommandLineArgs")
        kind = "ps" if role == "ps" else ("master" if index == 0 else "worker")
        env = {"AZ_BATCHAI_TASK_INDEX": str(index), "AZ_BATCHAI_PS_HOSTS": ",".join(hosts["ps"]),
               "AZ_BATCHAI_WORKER_HOSTS": ",".join(hosts["wk"]),
               "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": kind, "index": index},
                                        "environment": "cloud"})}
        task = job.task("{}-{}".format(role, index), python_argv(job, settings, args_key, node, env), node,
                        "-{}-{}".format(role, index), **env)
        tasks.append(dataclasses.replace(task, background=role == "ps"))
    return tasks


def _job_tasks(job: _Job, toolkit: str, settings: dict):
    """(tasks, mpi launch or None) of the job's toolkit."""
    node_count = len(job.nodes)
    if toolkit == "customToolkitSettings":
        return [job.task("job", [SHELL, "-c", settings["commandLine"]], 0, "")], None
    if toolkit != "customMpiSettings" and not settings.get("pythonScriptFilePath"):
        raise _refuse(CONTAINER_ONLY.get(toolkit, "{} needs pythonScriptFilePath".format(toolkit)))
    if toolkit == "pyTorchSettings":
        return _pytorch_tasks(job, settings), None
    if toolkit == "tensorFlowSettings":
        return _tensorflow_tasks(job, settings), None
    if toolkit == "caffe2Settings":
        shards = [{"AZ_BATCHAI_TASK_INDEX": str(i)} for i in range(node_count)]
        return [job.task("shard {}".format(i), python_argv(job, settings, node=i, env=env), i,
                         "-{}".format(i) if job.multi else "", **env) for i, env in enumerate(shards)], None
    count = _process_count(settings, node_count)
    if count == 1 and node_count == 1:
        argv = [SHELL, "-c", settings["commandLine"]] if toolkit == "customMpiSettings" else python_argv(job, settings)
        return [job.task("rank 0", argv, 0, "")], None
    # Every rank starts in its node's AZ_BATCHAI_JOB_TEMP with its words expanded there: on the service
    # those paths were the same on every node, here each node has its own.
    command = settings["commandLine"] if toolkit == "customMpiSettings" else " ".join(
        _node_expanded(word) for word in [settings.get("pythonInterpreterPath") or sys.executable,
                                          settings["pythonScriptFilePath"]] + shlex.split(
                                              settings.get("commandLineArgs") or ""))
    argv = [SHELL, "-c", 'cd "$AZ_BATCHAI_JOB_TEMP" && ' + (command if toolkit == "customMpiSettings"
                                                             else "exec " + command)]
    mpi = MpiLaunch(argv=argv, process_count=count, host_file=Path(job.envs[0]["AZ_BATCHAI_MPI_HOST_FILE"]),
                    stdout=job.stdouterr / "stdout.txt", stderr=job.stdouterr / "stderr.txt")
    return [], mpi


def build_launch(row, props: dict, nodes: list, segment: str, blob_mount=None) -> JobLaunch:
    """The JobLaunch of a job that starts on ``nodes``; ``blob_mount`` turns its azureBlobFileSystems
    entries into SyncedMounts."""
    job = _Job(row, props, nodes, segment, blob_mount)
    toolkit = toolkit_of(props)
    settings = props[toolkit]
    tasks, mpi = _job_tasks(job, toolkit, settings)
    process_count = mpi.process_count if mpi else len(nodes)
    launch = JobLaunch(nodes=[job.node_launch(i, host_file(nodes, process_count)) for i in range(len(nodes))],
                       tasks=tasks, mpi=mpi, secrets=job.secrets,
                       wall_clock_seconds=parse_duration(props["constraints"]["maxWallClockTime"]),
                       wall_clock_text=props["constraints"]["maxWallClockTime"], bin_dir=job.bin_dir)
    prep = props.get("jobPreparation")
    if prep:
        launch.preparation = [job.task("job preparation on {}".format(node.node_id), [SHELL, "-c", prep["commandLine"]],
                                       i, "-job_prep-{}".format(node.node_id) if job.multi else "-job_prep")
                              for i, node in enumerate(nodes)]
    image = ((props.get("containerSettings") or {}).get("imageSourceRegistry") or {}).get("image")
    if image:
        launch.notes.append("container image {} recorded; the emulator runs the job on the host".format(image))
    return launch
