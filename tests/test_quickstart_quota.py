"""A quota refusal in the quickstart: the emulator's Batch AI refuses the cluster as the service
did, and the quickstart says so in one line and cleans up."""
from __future__ import annotations

import subprocess
import sys

from test_quickstart_e2e import ROOT, SUBSET, assert_nothing_left, make_config


def test_cluster_past_the_core_quota_is_one_line_error(tmp_path):
    import emulator

    with emulator.start(tmp_path / "emulator-data") as emu:  # the data dir the quickstart's config names
        emu.set_batchai_quota("Standard NC Family Cluster Dedicated vCPUs", 0)
    result = subprocess.run([sys.executable, str(ROOT / "quickstart.py"), "--config", str(make_config(tmp_path)),
                             "--mnist-dir", str(SUBSET)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0, result.stdout + result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1, result.stderr
    assert "(AccountVMSeriesCoreQuotaReached) Operation results in exceeding quota limits of Standard NC Family " \
           "Cluster Dedicated vCPUs. Maximum allowed: 0" in error_lines[0]
    assert "Traceback" not in result.stderr
    assert "Deleted resource group batchaiquickstartrg" in result.stdout
    assert_nothing_left(tmp_path)
