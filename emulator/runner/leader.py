"""The leader of a phase with several tasks (one per node or per rank): starts each task on its node,
waits, and ends the phase as the service ended a multi-node job.

    leader.py PLAN_JSON

- every task is a child of this process (in its process group), so stopping the leader's group
  stops them all, and tracking the leader's descendants finds them all;
- the first task to fail stops the others (SIGTERM, SIGKILL after GRACE_SECONDS) and its exit
  status is the phase's;
- once every foreground task has exited 0, background tasks (parameter servers) are stopped and
  the phase succeeds;
- SIGTERM to the leader is passed on to every task.
Standalone: the standard library only, plus ``node_shell`` beside it.
"""
import json
import os
import signal
import sys
import time

import node_shell  # beside this file: run as a script, its directory comes first on sys.path

GRACE_SECONDS = 5.0


def log(message):
    sys.stdout.write("{} leader: {}\n".format(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), message))
    sys.stdout.flush()


def exit_status(status):
    return 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def start(task, table):
    node = table["nodes"][task["node"]]
    argv = node_shell.entering(table, node, task["argv"])
    pid = os.fork()
    if pid == 0:
        try:
            out = os.open(task["stdout"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            err = os.open(task["stderr"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(out, 1)
            os.dup2(err, 2)
            os.chdir(node["cwd"])
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.execvpe(argv[0], argv, node_shell.node_environment(table, task["env"]))
        except OSError as exc:
            os.write(2, "cannot start {}: {}\n".format(task["argv"][0], exc.strerror or exc).encode())
            os._exit(127)
    return pid


def stop(pids, grace=GRACE_SECONDS):
    """SIGTERM to ``pids``, SIGKILL to those still there after ``grace``; reaps them."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    remaining = set(pids)
    while remaining and time.monotonic() < deadline:
        for pid in list(remaining):
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                remaining.discard(pid)
        time.sleep(0.02)
    for pid in remaining:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)


def main(plan_path):
    with open(plan_path) as handle:
        plan = json.load(handle)
    table = node_shell.load_table(plan["table"])
    running = {}  # pid -> task
    terminated = []

    def on_sigterm(signum, frame):
        terminated.append(signum)
        for pid in list(running):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, on_sigterm)
    for task in plan["tasks"]:
        running[start(task, table)] = task
    code = 0
    while any(not task["background"] for task in running.values()):
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        task = running.pop(pid, None)
        if task is None:
            continue
        status = exit_status(status)
        log("{} exited with code {}".format(task["name"], status))
        if status != 0 and not terminated:
            code = status
            log("{} failed: stopping the other tasks".format(task["name"]))
            break
        if terminated and not code:
            code = status
    stop(list(running))
    if terminated and not code:
        code = 128 + signal.SIGTERM
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
