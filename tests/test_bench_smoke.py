"""Benchmarks that cannot rot: every bench/*.py runs in its smoke mode (tiny data, one short run) and prints
its figure lines, so that a benchmark broken by a later change fails here rather than on the day someone
measures. The storage benchmarks' command lines are the ones docs/benchmarks-storage.md shows under "Running
them", with ``--smoke`` added; the training benchmarks run on the small MNIST subset. Figures from a smoke run
mean nothing: only that each prints its figure lines and exits 0 is checked."""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from doc_blocks import code_block

ROOT = Path(__file__).resolve().parents[1]


def documented_command(name: str) -> list:
    """The command line for ``bench/<name>`` in the documentation's "Running them" block."""
    for line in code_block("docs/benchmarks-storage.md", "Running them", "sh").splitlines():
        words = shlex.split(line)
        if len(words) > 1 and words[1] == "bench/" + name:
            return [sys.executable] + words[1:]
    raise AssertionError("docs/benchmarks-storage.md shows no command for bench/{}".format(name))


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


# the training benchmarks -> lines their smoke run must print (regexes)
TRAINING = {
    "convert_bench.py": [r"Outputs byte-identical on the slice \(all three\): yes", r"Speedup vs installer loop: "],
    "sample_bench.py": [r"ratio script / bare: \d+\.\d+x", r"1 epochs: test error \d+\.\d+%"],
    "distributed_bench.py": [r"round 1: 2 nodes\s+\d+\.\d+ samples/s  load average",
                             r"2 nodes x 1 thread :\s+\d+\.\d+ samples/s", r"communication share of the 2-node epoch"],
    "quickstart_bench.py": [r"quickstart\.py:\s+\d+\.\d+ s\s+overhead", r"quickstart_azureml\.py:\s+\d+\.\d+ s",
                            r"quickstart\.py --target azure, through the emulator's proxy: \d+\.\d+ s .* ratio to the "
                            r"local target \d+\.\d+x"],
    "preemption_bench.py": [r"cost of one preemption: [+-]\d+\.\d+ s .* same test error: True"],
}


@pytest.mark.parametrize("script", sorted(TRAINING))
def test_training_bench_runs_in_smoke_mode(script, tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "bench" / script), "--smoke"], cwd=str(tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:]
    for pattern in TRAINING[script]:
        assert re.search(pattern, result.stdout), "{} printed no line matching {!r}:\n{}".format(
            script, pattern, result.stdout[-3000:])
