"""Benchmarks that cannot rot: each storage benchmark runs in its smoke mode (tiny data, one
round) and prints its figures, so a change that breaks a benchmark fails here. The command lines
are the ones docs/benchmarks-storage.md shows under "Running them", with ``--smoke`` added. The
figures themselves are not checked: they depend on the machine."""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks-storage.md"


def documented_command(name: str) -> list:
    """The command line for ``bench/<name>`` in the documentation's "Running them" block."""
    block = DOC.read_text(encoding="utf-8").split("## Running them", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    for line in block.splitlines():
        words = shlex.split(line)
        if len(words) > 1 and words[1] == "bench/" + name:
            return [sys.executable] + words[1:]
    raise AssertionError("{} shows no command for bench/{}".format(DOC, name))


def run_bench(name: str) -> str:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run(documented_command(name) + ["--smoke"], cwd=str(ROOT), env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_blob_bench_runs_in_smoke_mode():
    output = run_bench("blob_bench.py")
    for operation in ("Put Blob (one request)", "Put Block + Put Block List, 4 threads",
                      "ranged download_blob, 4 threads"):
        assert re.search(re.escape(operation) + r" +\d+\.\d MB/s  emulator/copy \d+\.\d\dx", output), output
        assert re.search(re.escape(operation) + r".*\n +null server https \d+\.\d MB/s", output), output
    # Azurite beside it when it is installed, and a line saying so when it is not
    assert re.search(r"Azurite [\w.]+: http", output) or "Azurite comparison skipped" in output, output


def test_emulator_bench_runs_in_smoke_mode():
    output = run_bench("emulator_bench.py")
    assert re.search(r"upload_file +\d+\.\d MB/s .* ratio \d+\.\d\d", output), output
    assert re.search(r"begin_create -> running +median \d+\.\d+ s", output), output
