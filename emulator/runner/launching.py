"""How a phase of a job becomes one command: a single task as it is, several under ``leader.py``,
MPI ranks under a real ``mpirun`` whose remote shell is ``node_shell.py`` (the job's ``ssh``).

Every node of a job is entered the same way, by ``ssh <node ip>`` from inside the job or by mpirun
starting its daemon there: the node's directory, its environment, and (where the kernel lets us)
its own host name in a UTS namespace, as the emulated node's identity.
"""
from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Optional

from . import processes
from .environment import host_environment
from .records import JobLaunch, MpiLaunch

RUNNER_DIR = Path(__file__).resolve().parent
LEADER = RUNNER_DIR / "leader.py"
NODE_SHELL = RUNNER_DIR / "node_shell.py"
NODE_TABLE = "nodes.json"


def inherited_variables() -> list:
    """Variables that entering a node keeps from the caller, whose environment it otherwise replaces:
    the process tree's marker, by which the runner finds every process of a job."""
    marker = getattr(processes, "MARKER_VARIABLE", None)
    return [marker] if marker else []


@functools.lru_cache(maxsize=None)
def can_isolate_host_names() -> bool:
    """Whether ``unshare --uts`` works here (root or CAP_SYS_ADMIN): each node then has its own host name,
    which Open MPI needs to tell the emulated nodes apart."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return False
    try:
        return subprocess.run([unshare, "--uts", "true"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def mpirun_path() -> str:
    """The ``mpirun`` installed with this Python (the ``openmpi`` package), else the one on PATH."""
    beside = Path(sys.executable).parent / "mpirun"
    return str(beside) if beside.exists() else (shutil.which("mpirun") or "mpirun")


def _private_file(path: Path, text: str, mode: int = 0o600) -> None:
    """Write ``text`` readable by the owner only (node environments hold the job's secrets)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(str(path), mode)


def job_bin(launch: JobLaunch) -> Path:
    """Where the job's node table, ``ssh`` and ``mpirun`` go: the service's ``bin_dir`` (which it puts
    first on the job's PATH), else a directory in the first node's temporary directory."""
    return launch.bin_dir or launch.nodes[0].temp_dir / ".runner-bin"


def write_node_files(launch: JobLaunch) -> None:
    """After the nodes are prepared: the files the service wants on each node, and the job's node
    table, ``ssh`` and ``mpirun`` in ``job_bin(launch)``."""
    for node in launch.nodes:
        for path, text in node.files.items():
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(text)
    bin_dir = job_bin(launch)
    table = {"isolate": can_isolate_host_names(), "inherit": inherited_variables(),
             "nodes": [{"ip": node.node.ip, "node_id": node.node.node_id, "cwd": str(node.work_dir), "env": node.env}
                       for node in launch.nodes]}
    _private_file(bin_dir / NODE_TABLE, json.dumps(table))
    _private_file(bin_dir / "ssh", '#!/bin/sh\nexec "{}" "{}" "{}" "$@"\n'.format(
        sys.executable, NODE_SHELL, bin_dir / NODE_TABLE), mode=0o700)
    mpirun = Path(mpirun_path())
    if mpirun.is_absolute() and mpirun.exists():  # jobs that call mpirun themselves (customToolkitSettings)
        for name in ("mpirun", "mpiexec"):
            (bin_dir / name).symlink_to(mpirun.parent / name)


def mpirun_argv(launch: JobLaunch, mpi: MpiLaunch) -> list:
    """mpirun over the job's nodes: the host file as the service wrote it, the job's ssh as the
    remote shell, TCP on loopback between ranks, no core binding (emulated nodes share the cores)."""
    argv = [mpirun_path(), "--hostfile", str(mpi.host_file), "-np", str(mpi.process_count),
            "--mca", "plm_ssh_agent", str(job_bin(launch) / "ssh"),
            "--mca", "btl_tcp_if_include", "lo",
            "--bind-to", "none"]
    if os.geteuid() == 0:
        argv.append("--allow-run-as-root")
    if not can_isolate_host_names():  # nodes share one host name: shared-memory transport between them misfires
        argv += ["--mca", "btl", "self,tcp"]
    return argv + list(mpi.argv)


def phase_command(launch: JobLaunch, phase: str, tasks: list, mpi: Optional[MpiLaunch]) -> tuple:
    """(argv, env, cwd, stdout path, stderr path) of the one process that runs a phase."""
    leader_node = launch.nodes[0]
    cwd = launch.working_dir or leader_node.work_dir
    if mpi is not None:
        return (mpirun_argv(launch, mpi), leader_node.env, cwd, mpi.stdout, mpi.stderr)
    if len(tasks) == 1 and tasks[0].node == 0 and not tasks[0].background:
        task = tasks[0]
        return task.argv, task.env, cwd, task.stdout, task.stderr
    plan = {"table": str(job_bin(launch) / NODE_TABLE),
            "tasks": [{"name": t.name, "argv": t.argv, "env": t.env, "node": t.node, "stdout": str(t.stdout),
                       "stderr": str(t.stderr), "background": t.background} for t in tasks]}
    plan_path = job_bin(launch) / "{}.json".format(phase)
    _private_file(plan_path, json.dumps(plan))
    env = {**host_environment(), "PYTHONUNBUFFERED": "1"}
    log = leader_node.execution_log
    return [sys.executable, str(LEADER), str(plan_path)], env, cwd, log, log
