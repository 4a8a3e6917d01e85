"""Issue 10, small things a new user met: offline without --mnist-dir, the quickstart fails on the
data before creating anything, and its error names only options it accepts (--mirror among them)."""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys

from test_quickstart_e2e import ROOT, assert_nothing_left, make_config


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_quickstart(tmp_path, *extra):
    env = dict(os.environ, MNIST_CACHE_DIR=str(tmp_path / "empty-cache"), MNIST_MIRROR="")
    return subprocess.run([sys.executable, str(ROOT / "quickstart.py"), "--config", str(make_config(tmp_path)),
                           *extra], cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)


def test_missing_mnist_fails_first_and_names_only_options_the_quickstart_accepts(tmp_path):
    mirror = "http://127.0.0.1:{}/mnist/".format(unused_port())  # nothing listens: as offline
    result = run_quickstart(tmp_path, "--mirror", mirror, "--mirror", mirror + "second/")
    assert result.returncode == 2, result.stdout + result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1, result.stderr
    assert mirror in error_lines[0] and mirror + "second/" in error_lines[0]  # --mirror reached prepare_mnist
    accepted = subprocess.run([sys.executable, str(ROOT / "quickstart.py"), "--help"], capture_output=True,
                              text=True, timeout=60).stdout
    for option in set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", error_lines[0])):
        assert option in accepted, option
    assert "Created" not in result.stdout and "Deleted" not in result.stdout
    assert "Traceback" not in result.stderr
    assert_nothing_left(tmp_path)
