"""The training benchmarks still run: each bench/*.py in its --smoke mode (the small MNIST subset, one short
run), so that a benchmark broken by a later change fails here rather than on the day someone measures.
Figures from a smoke run mean nothing; only that each prints its figure lines and exits 0 is checked."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# bench script -> lines its smoke run must print (regexes)
EXPECTED = {
    "convert_bench.py": [r"Outputs byte-identical on the slice \(all three\): yes", r"Speedup vs installer loop: "],
    "sample_bench.py": [r"ratio script / bare: \d+\.\d+x", r"1 epochs: test error \d+\.\d+%"],
    "distributed_bench.py": [r"2 nodes x 1 thread :\s+\d+\.\d+ samples/s", r"communication share of the 2-node epoch"],
    "quickstart_bench.py": [r"quickstart\.py:\s+\d+\.\d+ s\s+overhead", r"quickstart_azureml\.py:\s+\d+\.\d+ s",
                            r"quickstart\.py --target azure, through the emulator's proxy: \d+\.\d+ s .* ratio to the "
                            r"local target \d+\.\d+x"],
    "preemption_bench.py": [r"cost of one preemption: [+-]\d+\.\d+ s .* same test error: True"],
}


@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_bench_runs_in_smoke_mode(script, tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "bench" / script), "--smoke"], cwd=str(tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:]
    for pattern in EXPECTED[script]:
        assert re.search(pattern, result.stdout), "{} printed no line matching {!r}:\n{}".format(
            script, pattern, result.stdout[-3000:])
