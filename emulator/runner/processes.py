"""Child processes that are stopped as a whole: each runs in its own session (process group),
gets SIGTERM then SIGKILL after a grace period, and leaves no stragglers behind when it ends.
"""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
from pathlib import Path
from typing import IO, Optional

from ..core.arm import utc_now

log = logging.getLogger("emulator.runner")

# How long a stopped job may take to exit after SIGTERM before it gets SIGKILL.
GRACE_SECONDS = 5.0


def process_start_time(pid: int) -> Optional[int]:
    """The start time of ``pid`` (clock ticks since boot, /proc/PID/stat field 22), or None.

    Stored with the pid so that a later emulator never signals an unrelated process that reuses it.
    """
    try:
        stat = Path("/proc/{}/stat".format(pid)).read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()  # the command name in (...) may contain spaces
    try:
        return int(fields[19])  # field 22 overall; fields[0] is field 3 (state)
    except (IndexError, ValueError):
        return None


def signal_group(pgid: int, signum: int) -> bool:
    """Send ``signum`` to a process group; False if it is gone."""
    try:
        os.killpg(pgid, signum)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def kill_leftover_group(pid: int, start_time: Optional[int]) -> bool:
    """After a restart: kill the process group of ``pid`` if ``pid`` is still the process we started."""
    if start_time is None or process_start_time(pid) != start_time:
        return False
    log.warning("killing process group %d left over from a previous run", pid)
    return signal_group(pid, signal.SIGKILL)


def exit_status(returncode: int) -> int:
    """Popen's -N (killed by signal N) as a shell reports it: 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


class ProcessGroup:
    """One child process, leader of its own session, with its stdout/stderr going to files."""

    def __init__(self, argv: list, env: dict, cwd: Path, stdout: IO, stderr: IO) -> None:
        self.process = subprocess.Popen(argv, env=env, cwd=str(cwd), stdin=subprocess.DEVNULL, stdout=stdout,
                                        stderr=stderr, start_new_session=True, close_fds=True)
        self.pid = self.process.pid
        self.start_time = process_start_time(self.pid)
        self._lock = threading.Lock()
        self._exited = False
        self._kill_timer: Optional[threading.Timer] = None

    def stop(self, grace: Optional[float] = None) -> None:
        """SIGTERM to the group now, SIGKILL after ``grace`` seconds (default GRACE_SECONDS) if the
        leader is still there."""
        with self._lock:
            if self._exited:
                return
            signal_group(self.pid, signal.SIGTERM)
            if self._kill_timer is None:
                self._kill_timer = threading.Timer(GRACE_SECONDS if grace is None else grace, self._kill)
                self._kill_timer.daemon = True
                self._kill_timer.start()

    def _kill(self) -> None:
        with self._lock:
            if not self._exited:
                signal_group(self.pid, signal.SIGKILL)

    def wait(self) -> int:
        """Block until the leader exits, kill whatever it left in its group, reap it; return its exit status."""
        # WNOWAIT leaves the leader a zombie, so its pid (the group id) cannot be reused while we
        # kill the rest of the group, as a container runtime would tear the container down.
        os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOWAIT)
        with self._lock:
            self._exited = True
            if self._kill_timer is not None:
                self._kill_timer.cancel()
            signal_group(self.pid, signal.SIGKILL)
        return exit_status(self.process.wait())


class ExecutionLog:
    """``execution.log``: what the runner did, one time-stamped line at a time (never a secret)."""

    def __init__(self, path: Path) -> None:
        self._file = open(path, "a", buffering=1, encoding="utf-8")

    def write(self, message: str) -> None:
        self._file.write("{} {}\n".format(utc_now(), message))

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "ExecutionLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
