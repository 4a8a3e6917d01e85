"""The sandbox of jobs and setup tasks: which one this machine allows, and what each job may use.

Every process tree the runner starts runs under ``sandbox_exec.py`` (see there), which uses what an
unprivileged process may use, where the kernel has it:
- **Landlock** (Linux 5.13+): the job's processes cannot open anything under the emulator's data
  directory (its database and token, TLS and CA keys, share contents, other jobs' nodes) except
  their own nodes, their job directory and the shares and directories mounted on their nodes;
- **a PID namespace** with its own ``/proc`` (root, or an unprivileged user namespace): the job sees
  only its own processes (no other job's ``/proc/<pid>/environ``), and when its first process ends
  the kernel ends every process left in it. Without one, the sandbox process is a child subreaper
  that ends whatever is left below it, and Landlock (ABI 6+) keeps the job from signalling it.
Which of them is in force is logged once when the emulator starts (``describe()``).
"""
from __future__ import annotations

import dataclasses
import errno
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Iterable, Optional

from .mounts import mount_table

SANDBOX_EXEC = Path(__file__).resolve().parent / "sandbox_exec.py"


@functools.lru_cache(maxsize=None)
def capabilities() -> tuple:
    """(Landlock ABI version or 0, whether a PID namespace with its own /proc can be made), tried once
    in a separate process (it forks: never in this threaded one)."""
    try:
        result = subprocess.run([sys.executable, "-I", "-S", str(SANDBOX_EXEC), "--probe"], capture_output=True,
                                text=True, timeout=30)
        found = json.loads(result.stdout)
        return int(found["landlock"]), bool(found["pid_namespace"])
    except (OSError, subprocess.SubprocessError, ValueError, KeyError, TypeError):
        return 0, False


def describe() -> str:
    """One line for the log: what keeps jobs from the emulator's secrets and from escaping a stop."""
    abi, pid_namespace = capabilities()
    files = ("Landlock ABI {}: a job reads and writes only its own nodes, job directory and mounts of the "
             "data directory".format(abi) if abi else
             "NO file sandbox (Landlock unavailable): jobs can read the whole data directory, the token and keys "
             "included")
    processes = ("a PID namespace per job: jobs see only their own processes and none outlives its job"
                 if pid_namespace else
                 "no PID namespace: jobs see other processes in /proc; a subreaper{} ends what a job leaves".format(
                     " that jobs cannot signal (Landlock scopes)" if abi >= 6 else ""))
    return "job sandbox: {}; {}".format(files, processes)


def _inside(path: str, root: str) -> bool:
    return path.startswith(root.rstrip("/") + "/")


class Sandbox:
    """Wraps the commands of jobs and setup tasks of one emulator whose data directory is ``private_root``
    (None: no file rules, only the process part)."""

    def __init__(self, private_root: Optional[Path] = None) -> None:
        self.root = os.path.realpath(str(private_root)) if private_root is not None else None
        abi, pid_namespace = capabilities()
        self.landlock = bool(abi) and self.root is not None
        self.pid_namespace = pid_namespace
        # Jobs need TMPDIRs of their own where the machine's temporary directory lies above the data directory:
        # the sandbox lets them use its entries as they were, not create new ones. Made at the first need.
        self._own_temp = self.landlock and _inside(self.root, os.path.realpath(tempfile.gettempdir()))
        self._temp_root: Optional[str] = None
        self._lock = threading.Lock()

    def command(self, argv: list, allowed: Iterable, env: dict, cwd: Path, read_only: Iterable = ()) -> list:
        """``argv`` run in the sandbox, allowed the directories ``allowed`` of the data directory (and of
        the jobs' temporary directories), and to read and run those of ``read_only``. Raises OSError, as
        starting it directly would, if ``argv[0]`` cannot be run."""
        _check_executable(argv[0], env, cwd)
        policy = {"landlock": self.landlock, "pid_namespace": self.pid_namespace}
        if self.landlock:
            hidden = [self.root] + ([self._temp_root] if self._temp_root else [])
            policy.update(hidden=hidden, allowed=sorted(self._grantable(allowed, hidden)),
                          read_only=sorted(self._grantable(read_only, hidden)))
        return [sys.executable, "-I", "-S", str(SANDBOX_EXEC), json.dumps(policy)] + list(argv)

    @staticmethod
    def _grantable(paths: Iterable, roots: list) -> set:
        """Those of ``paths`` strictly inside one of ``roots``, by paths with no link on them (a job may
        plant links in its own directories; what they point to is never granted this way)."""
        granted = set()
        for path in paths:
            if path is None:
                continue
            absolute = os.path.abspath(str(path))
            if os.path.realpath(absolute) == absolute and any(_inside(absolute, root) for root in roots):
                granted.add(absolute)
        return granted

    def temp_dir(self) -> Optional[Path]:
        """A fresh TMPDIR for a job (pass it in ``allowed`` too) where the machine's temporary directory lies
        above the data directory: the job could not create entries in it. Else None. The caller removes it."""
        if not self._own_temp:
            return None
        with self._lock:
            if self._temp_root is None or not os.path.isdir(self._temp_root):
                self._temp_root = tempfile.mkdtemp(prefix="emulator-jobs-")
            return Path(tempfile.mkdtemp(dir=self._temp_root))

    def close(self) -> None:
        """Remove the jobs' temporary directories (once no job runs)."""
        with self._lock:
            if self._temp_root is not None:
                shutil.rmtree(self._temp_root, ignore_errors=True)
                self._temp_root = None


def _check_executable(program: str, env: dict, cwd: Path) -> None:
    if "/" in program:
        path = os.path.join(str(cwd), program)
        if not os.path.exists(path):
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), program)
        if os.path.isdir(path) or not os.access(path, os.X_OK):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), program)
    elif shutil.which(program, path=env.get("PATH", os.defpath)) is None:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), program)


def mounted_sources(shares, share_mounts: Iterable, directory_mounts: Iterable = ()) -> list:
    """The directories behind mounts (a share's directory, a file server's export) as the services name
    them, never by reading a mount point (a job may have replaced it)."""
    sources = []
    for name in mount_table(shares, share_mounts).values():
        try:
            sources.append(shares.share_path(name))
        except LookupError:
            pass
    sources.extend(mount.source for mount in directory_mounts if mount.source is not None)
    return sources


def with_variables(launch, variables: dict):
    """``launch`` with ``variables`` added to the environment of each node and task."""
    def task(item):
        return dataclasses.replace(item, env={**item.env, **variables})

    for node in launch.nodes:
        node.env = {**node.env, **variables}
    launch.tasks = [task(item) for item in launch.tasks]
    launch.preparation = [task(item) for item in launch.preparation]
    return launch
