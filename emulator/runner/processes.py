"""Process trees of jobs and setup tasks, stopped as a whole.

A tree is started with ``ProcessTree`` (``ProcessGroup`` is the same class under its older name):
its leader runs in a new session (process group), and every process of the tree carries the
tree's marker in its environment (``BATCHAI_EMULATOR_TREE=<marker>``; children inherit it, also
through ``setsid``, ``nohup`` and double forks). A tree's members are then
- the leader's process group,
- every descendant of the leader (by parent pid, while the chain exists), and
- every process whose environment holds the marker (orphans that left the group: ``setsid cmd &``),
so a stop or the end of the leader kills them all. Recovery after a restart finds the leftovers of
an interrupted job by its marker alone (the leader may have exited while the emulator was down).
Where the emulator runs as its own process (``python -m emulator``) it also becomes a child
subreaper (``prctl(PR_SET_CHILD_SUBREAPER)``), so orphans are re-parented to it rather than to
init, and ``reap_orphans`` collects them when they exit.

(cgroup v2 would be the kernel's own answer, but needs a delegated, writable cgroup subtree, which
containers and these CI machines do not give; the marker works for any process of the same user.)
The runner starts every job and setup task under its sandbox (sandbox.py), the tree's leader: a PID
namespace's init or a subreaper that the job cannot signal, which holds every process the job starts,
also one that cleared its environment (``env -i setsid cmd &``). So SIGKILL reaches the leader last.

The distributed runner launches ``mpirun`` and its ranks through the same class: every rank
descends from the leader and inherits the marker.
"""
from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import IO, Iterable, Optional

from ..core.arm import utc_now

log = logging.getLogger("emulator.runner")

# How long a stopped job may take to exit after SIGTERM before it gets SIGKILL.
GRACE_SECONDS = 5.0
#: The environment variable carrying a tree's marker.
MARKER_VARIABLE = "BATCHAI_EMULATOR_TREE"
_PR_SET_CHILD_SUBREAPER = 36
_KILL_ROUNDS = 20  # a tree that forks while being killed is scanned again, up to this many times

# Pids this module started with Popen (their owners reap them); any other exited child is an orphan.
_launched: set = set()
_launched_lock = threading.Lock()
# Only a process that became a subreaper reaps orphans: in any other process (the emulator started
# from Python, inside a test or an application) an exited child is its owner's to wait for.
_reaping = False


def process_start_time(pid: int) -> Optional[int]:
    """The start time of ``pid`` (clock ticks since boot, /proc/PID/stat field 22), or None.

    Stored with the pid so that a later emulator never signals an unrelated process that reuses it.
    """
    fields = _stat_fields(pid)
    try:
        return int(fields[19])  # field 22 overall; fields[0] is field 3 (state)
    except (IndexError, TypeError, ValueError):
        return None


def _stat_fields(pid: int) -> Optional[list]:
    try:
        stat = Path("/proc/{}/stat".format(pid)).read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()  # the command name in (...) may contain spaces


def _all_pids() -> list:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _has_marker(pid: int, needle: bytes) -> bool:
    try:
        with open("/proc/{}/environ".format(pid), "rb") as f:
            return needle in f.read().split(b"\0")
    except OSError:  # gone, or another user's
        return False


def tree_members(marker: str, leader: Optional[int] = None) -> set:
    """Pids of the live processes of a tree: marked ones and descendants of ``leader`` (and of them)."""
    needle = "{}={}".format(MARKER_VARIABLE, marker).encode()
    parents: dict = {}
    members = set()
    for pid in _all_pids():
        if pid == os.getpid():
            continue
        fields = _stat_fields(pid)
        if not fields or fields[0] in ("Z", "X"):
            continue
        parents[pid] = int(fields[1])
        if _has_marker(pid, needle):
            members.add(pid)
    if leader is not None and leader in parents:
        members.add(leader)
    changed = True
    while changed:  # add descendants of members (a child that cleared its environment)
        changed = False
        for pid, parent in parents.items():
            if parent in members and pid not in members:
                members.add(pid)
                changed = True
    return members


def kill_tree(marker: str, leader: Optional[int] = None, signum: int = signal.SIGKILL) -> int:
    """Signal every process of a tree until none is left (SIGKILL) or once (another signal); how
    many were signalled. SIGKILL reaches the leader last: while it lives (the sandbox, a subreaper),
    every process of the tree stays its descendant, however it was started."""
    signalled: set = set()
    rounds = _KILL_ROUNDS if signum == signal.SIGKILL else 1
    for round_ in range(rounds):
        members = tree_members(marker, leader)
        if signum == signal.SIGKILL and round_ < rounds - 1 and members - {leader}:
            members.discard(leader)
        if not members:
            break
        for pid in members:
            try:
                os.kill(pid, signum)
                signalled.add(pid)
            except (ProcessLookupError, PermissionError):
                pass
        if signum == signal.SIGKILL:
            time.sleep(0.01)
    reap_orphans()
    return len(signalled)


def signal_group(pgid: int, signum: int) -> bool:
    """Send ``signum`` to a process group; False if it is gone."""
    try:
        os.killpg(pgid, signum)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def kill_leftovers(marker: Optional[str], pid: Optional[int] = None, start_time: Optional[int] = None) -> int:
    """After a restart: kill what is left of a tree, by its marker, and the process group of ``pid``
    if ``pid`` is still the leader we started (same start time)."""
    killed = 0
    leader = pid if pid and start_time is not None and process_start_time(pid) == start_time else None
    if marker:
        count = kill_tree(marker, leader)  # the leader last, so its descendants are found through it
        if count:
            log.warning("killed %d process(es) of %s left over from a previous run", count, marker)
        killed += count
    if leader is not None and signal_group(leader, signal.SIGKILL):
        log.warning("killed process group %d left over from a previous run", leader)
        killed += not marker
    return killed


def kill_leftover_group(pid: int, start_time: Optional[int], marker: Optional[str] = None) -> bool:
    """Older name of ``kill_leftovers`` (True if anything was killed)."""
    return kill_leftovers(marker, pid, start_time) > 0


def become_subreaper() -> bool:
    """Make this process the reaper of its descendants' orphans (Linux), for a process that starts no
    children but process trees (``python -m emulator``); False where not possible."""
    global _reaping
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        _reaping = libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        _reaping = False
    return _reaping


def zombie_children() -> list:
    """Pids of this process's children that have exited and wait to be reaped (a process that goes away
    while it is looked at is left out)."""
    me = str(os.getpid())
    zombies = []
    for pid in _all_pids():
        fields = _stat_fields(pid)
        if fields and len(fields) > 1 and fields[0] == "Z" and fields[1] == me:
            zombies.append(pid)
    return zombies


def reap_orphans() -> None:
    """In a subreaper: collect exited children this module did not start (re-parented orphans)."""
    if not _reaping:
        return
    for pid in zombie_children():
        with _launched_lock:
            if pid in _launched:
                continue
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


def exit_status(returncode: int) -> int:
    """Popen's -N (killed by signal N) as a shell reports it: 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


def new_marker() -> str:
    return os.urandom(12).hex()


def job_marker(job) -> str:
    """The marker of every process tree a job starts (from its stored uuid, so recovery finds them)."""
    return "job-" + job["uuid"]


class ProcessTree:
    """One child process, leader of its own session, with its stdout/stderr going to files, and
    everything it starts."""

    def __init__(self, argv: list, env: dict, cwd: Path, stdout: IO, stderr: IO,
                 marker: Optional[str] = None) -> None:
        self.marker = marker or new_marker()
        env = dict(env, **{MARKER_VARIABLE: self.marker})
        with _launched_lock:  # registered before it can exit, so reap_orphans never takes it
            self.process = subprocess.Popen(argv, env=env, cwd=str(cwd), stdin=subprocess.DEVNULL, stdout=stdout,
                                            stderr=stderr, start_new_session=True, close_fds=True)
            _launched.add(self.process.pid)
        self.pid = self.process.pid
        self.start_time = process_start_time(self.pid)
        self._lock = threading.Lock()
        self._exited = False
        self._kill_timer: Optional[threading.Timer] = None

    def stop(self, grace: Optional[float] = None) -> None:
        """SIGTERM to the whole tree now, SIGKILL after ``grace`` seconds (default GRACE_SECONDS) if the
        leader is still there."""
        with self._lock:
            if self._exited:
                return
            signal_group(self.pid, signal.SIGTERM)
            kill_tree(self.marker, self.pid, signal.SIGTERM)
            if self._kill_timer is None:
                self._kill_timer = threading.Timer(GRACE_SECONDS if grace is None else grace, self._kill)
                self._kill_timer.daemon = True
                self._kill_timer.start()

    def _kill(self) -> None:
        with self._lock:
            if not self._exited:
                kill_tree(self.marker, self.pid)  # the leader last
                signal_group(self.pid, signal.SIGKILL)

    def kill(self) -> None:
        """SIGKILL the whole tree now."""
        self._kill()

    def wait(self) -> int:
        """Block until the leader exits, kill whatever is left of the tree, reap it; return its exit status."""
        # WNOWAIT leaves the leader a zombie, so its pid (the group id) cannot be reused while we
        # kill the rest of the tree, as a container runtime would tear the container down.
        os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOWAIT)
        with self._lock:
            self._exited = True
            if self._kill_timer is not None:
                self._kill_timer.cancel()
            signal_group(self.pid, signal.SIGKILL)
            kill_tree(self.marker, self.pid)
        try:
            return exit_status(self.process.wait())
        finally:
            with _launched_lock:
                _launched.discard(self.pid)


ProcessGroup = ProcessTree  # the name the runner used first


def start_tree(argv: list, env: dict, cwd: Path, stdout: IO, stderr: IO, marker: Optional[str] = None
               ) -> ProcessTree:
    """Start ``argv`` as a tracked process tree (see the module docstring)."""
    return ProcessTree(argv, env, cwd, stdout, stderr, marker)


class ExecutionLog:
    """``execution.log``: what the runner did, one time-stamped line at a time (never a secret)."""

    def __init__(self, path: Path, secrets: Iterable[str] = ()) -> None:
        self._file = open(path, "a", buffering=1, encoding="utf-8", errors="backslashreplace")
        self._secrets = sorted((value for value in secrets if value), key=len, reverse=True)

    def write(self, message: str) -> None:
        for value in self._secrets:  # a line built from expanded values may hold one
            message = message.replace(value, "***")
        self._file.write("{} {}\n".format(utc_now(), message))

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "ExecutionLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
