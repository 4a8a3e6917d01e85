"""The process-tree API of the runner (emulator.runner.processes): a tree is every process its
leader starts, also those that leave its process group, and stopping or ending it ends them all."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

from emulator.runner import processes
from test_jobs import pid_alive, wait_for

ESCAPER = ("setsid sh -c 'echo $$ > escaped.pid; exec sleep 300' & "
           "(nohup sleep 300 > /dev/null 2>&1 & echo $! > nohup.pid) ; "
           "while [ ! -s escaped.pid ] || [ ! -s nohup.pid ]; do sleep 0.02; done; {tail}")


def start(tmp_path, tail: str) -> processes.ProcessTree:
    with open(tmp_path / "out", "wb") as out:
        return processes.start_tree(["/bin/sh", "-c", ESCAPER.format(tail=tail)], dict(os.environ), tmp_path, out,
                                    out)


def escaped(tmp_path) -> list:
    return [int(wait_for(lambda: (tmp_path / name).exists() and (tmp_path / name).read_text().strip()))
            for name in ("escaped.pid", "nohup.pid")]


def cleanup(pids) -> None:
    for pid in pids:
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_the_end_of_the_leader_ends_its_whole_tree(tmp_path):
    tree = start(tmp_path, "exit 3")
    pids = escaped(tmp_path)
    try:
        assert tree.wait() == 3
        wait_for(lambda: not any(pid_alive(pid) for pid in pids), timeout=10)
    finally:
        cleanup(pids)


def test_stop_and_kill_end_the_whole_tree(tmp_path):
    for action in ("stop", "kill"):
        work = tmp_path / action
        work.mkdir()
        tree = start(work, "exec sleep 300")
        pids = escaped(work)
        try:
            assert processes.tree_members(tree.marker, tree.pid) >= set(pids) | {tree.pid}
            tree.stop(grace=1) if action == "stop" else tree.kill()
            assert tree.wait() in (128 + signal.SIGTERM, 128 + signal.SIGKILL)
            wait_for(lambda: not any(pid_alive(pid) for pid in pids), timeout=10)
        finally:
            cleanup(pids)


def test_leftovers_are_found_by_marker_alone(tmp_path):
    """What recovery does after a restart: the leader is long gone, its orphans are not."""
    marker = "job-test-{}".format(os.getpid())
    env = dict(os.environ, **{processes.MARKER_VARIABLE: marker})
    orphan = subprocess.Popen(["sleep", "300"], env=env, start_new_session=True)
    try:
        assert processes.kill_leftovers(marker, pid=None, start_time=None) == 1
        assert orphan.wait(10) == -signal.SIGKILL
        assert processes.kill_leftovers(marker) == 0
    finally:
        if orphan.poll() is None:
            orphan.kill()


def test_a_subreaper_collects_orphans(tmp_path):
    # No timing and no /proc entry assumed to stay put: wait (without a deadline of its own; the test's
    # timeout bounds it) until the orphan has exited and is our zombie; processes that come and go while
    # /proc is read are skipped by zombie_children.
    script = (
        "import os, time\n"
        "from emulator.runner import processes\n"
        "assert processes.become_subreaper()\n"
        "os.system('sh -c \"true &\"')\n"  # the true is orphaned, then re-parented to us
        "while not processes.zombie_children():\n"
        "    time.sleep(0.01)\n"
        "before = processes.zombie_children()\n"
        "processes.reap_orphans()\n"
        "print(len(before), len(processes.zombie_children()))\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "0"]


def test_zombie_children_skips_processes_that_vanish_while_read(monkeypatch):
    """A pid listed in /proc whose process is gone when its stat is read is skipped, not an error."""
    gone = subprocess.Popen(["true"])
    gone.wait()  # reaped: its /proc entry is gone, as if it had exited between the listing and the read
    monkeypatch.setattr(processes, "_all_pids", lambda: [gone.pid, os.getpid()])
    assert processes.zombie_children() == []
