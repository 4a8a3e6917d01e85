"""The runner's parts on their own: no service imported by the runner, the job's ssh (node_shell.py) and
the leader of multi-task phases (leader.py), run as real processes."""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNNER = ROOT / "emulator" / "runner"


def test_the_runner_imports_no_service():
    """The runner serves any service through records.py: it imports nothing of emulator/batchai (or any other)."""
    services = {p.name for p in (ROOT / "emulator").iterdir() if (p / "urls.py").exists()}
    assert "batchai" in services
    for path in RUNNER.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                assert (node.module or "").split(".")[0] not in services, (path.name, node.module)
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [node.module or ""] if isinstance(node, ast.ImportFrom) \
                    else [a.name for a in node.names]
                assert not any(n.startswith("emulator.") and n.split(".")[1] in services for n in names), path.name


def node_table(tmp_path: Path, count: int = 2) -> Path:
    nodes = []
    for index in range(count):
        directory = tmp_path / "node{}".format(index)
        directory.mkdir()
        nodes.append({"ip": "10.0.0.{}".format(4 + index), "node_id": "tvm-1_{}".format(index + 1),
                      "cwd": str(directory), "env": {"PATH": os.environ["PATH"], "WHERE": "node{}".format(index)}})
    table = tmp_path / "nodes.json"
    table.write_text(json.dumps({"isolate": False, "inherit": ["TREE_MARK"], "nodes": nodes}))
    return table


def ssh(table: Path, *args: str, **env) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, str(RUNNER / "node_shell.py"), str(table), *args], capture_output=True,
                            timeout=30, env=dict(os.environ, **env))
    result.stdout, result.stderr = result.stdout.decode(), result.stderr.decode()  # keeping \r\n as sent
    return result


def test_ssh_runs_the_command_on_the_node(tmp_path):
    table = node_table(tmp_path)
    result = ssh(table, "-o", "StrictHostKeyChecking=no", "-p", "23", "-T", "demo@10.0.0.5",
                 "echo", "$WHERE", "$PWD", "$TREE_MARK", "$HOME", TREE_MARK="tree-1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["node1", str(tmp_path / "node1"), "tree-1"]  # the node's env, plus the marker
    assert result.stderr == "Warning: Permanently added '10.0.0.5' (ECDSA) to the list of known hosts.\r\n"
    assert ssh(table, "-q", "tvm-1_1", "exit 7").returncode == 7   # by node id too; quiet; exit status passed on
    assert ssh(table, "-q", "tvm-1_1", "true").stderr == ""


def test_ssh_to_an_unknown_host_fails_like_ssh(tmp_path):
    result = ssh(node_table(tmp_path), "10.0.0.9", "true")
    assert result.returncode == 255
    assert result.stderr == "ssh: Could not resolve hostname 10.0.0.9: Name or service not known\n"


def run_leader(tmp_path: Path, tasks: list, timeout: float = 60) -> tuple:
    table = node_table(tmp_path)
    plan = tmp_path / "plan.json"
    full = []
    for index, (name, command, node, background) in enumerate(tasks):
        full.append({"name": name, "argv": ["/bin/sh", "-c", command], "env": {"PATH": os.environ["PATH"]},
                     "node": node, "background": background, "stdout": str(tmp_path / "out-{}.txt".format(index)),
                     "stderr": str(tmp_path / "err-{}.txt".format(index))})
    plan.write_text(json.dumps({"table": str(table), "tasks": full}))
    start = time.monotonic()
    result = subprocess.run([sys.executable, str(RUNNER / "leader.py"), str(plan)], capture_output=True, text=True,
                            timeout=timeout)
    return result, time.monotonic() - start


def test_leader_succeeds_when_every_task_does_and_stops_background_tasks(tmp_path):
    result, seconds = run_leader(tmp_path, [("ps-0", "echo $$; exec sleep 60", 0, True),
                                            ("wk-0", "sleep 0.5; pwd", 0, False), ("wk-1", "pwd", 1, False)])
    assert result.returncode == 0, result.stdout
    assert seconds < 10                                     # the parameter server did not hold the job
    assert (tmp_path / "out-1.txt").read_text().strip() == str(tmp_path / "node0")   # each in its node's directory
    assert (tmp_path / "out-2.txt").read_text().strip() == str(tmp_path / "node1")
    ps_pid = int((tmp_path / "out-0.txt").read_text())
    assert not Path("/proc/{}".format(ps_pid)).exists()


def test_leader_stops_every_task_when_one_fails(tmp_path):
    result, seconds = run_leader(tmp_path, [("rank 0", "echo $$; exec sleep 60", 0, False),
                                            ("rank 1", "sleep 0.3; exit 3", 1, False)])
    assert result.returncode == 3
    assert seconds < 10
    assert "rank 1 failed: stopping the other tasks" in result.stdout
    assert not Path("/proc/{}".format(int((tmp_path / "out-0.txt").read_text()))).exists()
