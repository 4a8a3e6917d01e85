"""Restarts: the emulator's state is SQLite plus files, so a stop (or a crash) and a start on the
same data directory keep every resource and every output; jobs that were running are reported
failed with JobInterrupted and their processes are gone; queued jobs run after the restart."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import types

import emulator as emulator_package
from conftest import ROOT
from test_jobs import (EXP, RG, SHARE, WS, error_codes, job_parameters, make_cluster, make_share, make_workspace,
                       pid_alive, read_output, running_pid, sdk_clients, submit, wait_for, wait_for_state)

TICKING = "echo $$; i=0; while true; do i=$((i+1)); echo tick $i >&2; sleep 0.05; done"


def assert_interrupted(batchai_client, name: str) -> None:
    job = batchai_client.jobs.get(RG, WS, EXP, name)
    assert (job.execution_state, error_codes(job)) == ("failed", ["JobInterrupted"])
    assert "The emulator stopped while the job was running" in job.execution_info.errors[0].message
    assert "resubmit the job" in job.execution_info.errors[0].message
    assert job.execution_info.end_time >= job.execution_info.start_time


def test_stop_interrupts_running_jobs_and_a_restart_carries_on(tmp_path):
    data_dir = tmp_path / "data"
    emu = emulator_package.start(data_dir)
    try:
        batchai_client, resource_client, share_service = sdk_clients(emu)
        share = make_share(share_service)
        share.get_file_client("kept.txt").upload_file(b"still here")
        make_workspace(resource_client, batchai_client)
        cluster = make_cluster(batchai_client, emu)
        submit(batchai_client, "long", job_parameters(cluster.id, TICKING))
        pid = running_pid(batchai_client, "long")
        submit(batchai_client, "next", job_parameters(cluster.id, "echo after the restart"))
        wait_for(lambda: "tick 3\n" in read_output(batchai_client, "long", "stderr.txt"))
    finally:
        emu.stop()
    assert not pid_alive(pid)

    emu = emulator_package.start(data_dir)
    try:
        batchai_client, resource_client, share_service = sdk_clients(emu)
        assert resource_client.resource_groups.check_existence(RG)
        assert share_service.get_share_client(SHARE).get_file_client("kept.txt").download_file().readall() == \
            b"still here"
        assert_interrupted(batchai_client, "long")
        assert "tick 3\n" in read_output(batchai_client, "long", "stderr.txt")  # outputs written so far are kept
        job = wait_for_state(batchai_client, "next")  # it was queued: it runs now
        assert job.execution_state == "succeeded"
        assert read_output(batchai_client, "next", "stdout.txt") == "after the restart\n"
        cluster = batchai_client.clusters.get(RG, WS, "cluster")
        assert (cluster.allocation_state, cluster.current_node_count) == ("steady", 1)
        submit(batchai_client, "fresh", job_parameters(cluster.id, "echo fresh"))
        assert wait_for_state(batchai_client, "fresh").execution_state == "succeeded"
    finally:
        emu.stop()


def test_after_a_crash_the_leftover_job_process_is_killed(tmp_path):
    """``kill -9`` of the emulator orphans the job's process; the next start kills it (pid + start time)."""
    data_dir = tmp_path / "data"
    server = subprocess.Popen([sys.executable, "-m", "emulator", "--data-dir", str(data_dir)], cwd=str(ROOT),
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    pid = None
    try:
        info = types.SimpleNamespace(**json.loads(server.stdout.readline()))
        batchai_client, resource_client, share_service = sdk_clients(info)
        make_share(share_service)
        make_workspace(resource_client, batchai_client)
        cluster = make_cluster(batchai_client, info)
        submit(batchai_client, "orphan", job_parameters(cluster.id, TICKING))
        pid = running_pid(batchai_client, "orphan")
        server.kill()
        server.wait(10)
        assert pid_alive(pid)  # nobody stopped it: the emulator died

        emu = emulator_package.start(data_dir)
        try:
            batchai_client, _, _ = sdk_clients(emu)
            assert_interrupted(batchai_client, "orphan")
            wait_for(lambda: not pid_alive(pid), timeout=5)
        finally:
            emu.stop()
    finally:
        if server.poll() is None:
            server.kill()
        if pid and pid_alive(pid):
            os.killpg(pid, signal.SIGKILL)
