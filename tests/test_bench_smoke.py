"""Benchmarks that cannot rot: each storage benchmark runs in its smoke mode (tiny data, one
round) and prints its figures, so a change that breaks a benchmark fails here. The figures
themselves are not checked: they depend on the machine."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_bench(name: str, *args: str) -> str:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, str(ROOT / "bench" / name), "--smoke", *args], cwd=str(ROOT), env=env,
                            capture_output=True, text=True, timeout=600)
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
