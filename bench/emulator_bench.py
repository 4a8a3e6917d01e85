"""Emulator benchmark: Files upload throughput and Batch AI job start latency, with the real SDKs.

The emulator runs as users run it, ``python -m emulator`` in its own process (``servers.py``).

1. Upload a 128 MiB random file through the Files endpoint with azure-storage-file-share
   (``ShareFileClient.upload_file``, then with ``max_concurrency=4``) against ``shutil.copyfile`` of
   the same bytes on the same disk. Each round copies, then uploads both ways, so that a busy
   machine slows all alike: MB/s (median of the rounds) and the ratio upload / copy (goal >= 0.5).
   The same uploads to a null server (``servers.py``: it drops what it receives) show the client's
   own ceiling on this machine, which no server can be measured above.
2. Time from calling ``jobs.begin_create`` to the job's executionState ``running`` (or later) as seen
   by polling ``jobs.get`` every 10 ms, for a trivial job on an idle one-node cluster: median of
   RUNS runs (goal < 1 s).

Usage: ``.venv/bin/python bench/emulator_bench.py [--size-mib 128] [--rounds 3] [--runs 5] [--smoke]``
(``--smoke``: 8 MiB, one round, one job: it checks that the benchmark still runs).
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path


from azure.mgmt.batchai import BatchAI, models
from azure.mgmt.resource.resources import ResourceManagementClient
from azure.storage.fileshare import ShareFileClient, ShareServiceClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from servers import AZURITE_ACCOUNT, AZURITE_KEY, emulator_process, null_blob_process  # noqa: E402

POLL_SECONDS = 0.010
RG, WS, EXP, SHARE = "benchrg", "benchws", "benchexp", "bench"
UPLOAD_GOAL, START_GOAL = 0.5, 1.0


def timed(action, repeats: int = 1) -> float:
    """Median wall time of ``repeats`` calls of ``action``."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def throughput(size: int, seconds: float) -> float:
    return size / 2**20 / seconds


def bench_upload(emu, work: Path, size: int, rounds: int) -> None:
    source = work / "random.bin"
    with open(source, "wb") as f:
        for _ in range(size // 2**20):
            f.write(os.urandom(2**20))
    ShareServiceClient.from_connection_string(emu.files_connection_string).create_share(SHARE)
    uploads = (("upload_file", "serial.bin", {}), ("upload_file max_concurrency=4", "parallel.bin",
                                                   {"max_concurrency": 4}))
    with null_blob_process(size) as null:
        null_url = null.blob_connection_string.rpartition("BlobEndpoint=")[2]
        null_files = "DefaultEndpointsProtocol=http;AccountName={};AccountKey={};FileEndpoint={}".format(
            AZURITE_ACCOUNT, AZURITE_KEY, null_url)
        clients = {(server, name): ShareFileClient.from_connection_string(connection, SHARE, name)
                   for server, connection in (("emulator", emu.files_connection_string), ("null", null_files))
                   for _, name, _ in uploads}

        def upload(server: str, name: str, kwargs: dict) -> None:
            with open(source, "rb") as data:
                clients[(server, name)].upload_file(data, **kwargs)

        # A 128 MiB page-cache copy takes ~0.1 s: one sample is too noisy for a ratio, hence rounds,
        # each measuring the copy and the uploads back to back.
        copies, times = [], {(server, label): [] for server in ("emulator", "null") for label, _, _ in uploads}
        for _ in range(rounds):
            copies.append(timed(lambda: shutil.copyfile(source, work / "copy.bin")))
            (work / "copy.bin").unlink()
            for label, name, kwargs in uploads:
                for server in ("emulator", "null"):
                    times[(server, label)].append(timed(lambda: upload(server, name, kwargs)))
    for _, name, _ in uploads:
        assert clients[("emulator", name)].get_file_properties().size == size
        assert clients[("emulator", name)].download_file().readall() == source.read_bytes()
    copy_rate = throughput(size, statistics.median(copies))
    print("Files upload of {} MiB of random bytes, {} round{} (medians); the emulator in its own process".format(
        size // 2**20, rounds, "s" if rounds > 1 else ""))
    print("  shutil.copyfile on disk        {:8.1f} MB/s ({:.2f} s)".format(copy_rate, statistics.median(copies)))
    for label, _, _ in uploads:
        seconds = statistics.median(times[("emulator", label)])
        rate = throughput(size, seconds)
        ceiling = throughput(size, statistics.median(times[("null", label)]))
        verdict = "meets" if rate / copy_rate >= UPLOAD_GOAL else "MISSES"
        print("  {:30s} {:8.1f} MB/s ({:.2f} s)  ratio {:.2f} ({} goal >= {}); null server {:.1f} MB/s "
              "(ratio {:.2f}, emulator at {:.2f}x of it)".format(label, rate, seconds, rate / copy_rate, verdict,
                                                                 UPLOAD_GOAL, ceiling, ceiling / copy_rate,
                                                                 rate / ceiling))


def bench_job_start(emu, runs: int) -> None:
    credential = emu.credential()
    common = dict(base_url=emu.arm_url, connection_verify=emu.ca_cert, polling_interval=0.05)
    resource_client = ResourceManagementClient(credential, emu.subscription_id, **common)
    batchai_client = BatchAI(credential, emu.subscription_id, **common)
    resource_client.resource_groups.create_or_update(RG, {"location": "eastus"})
    batchai_client.workspaces.begin_create(RG, WS, models.WorkspaceCreateParameters(location="eastus")).result()
    batchai_client.experiments.begin_create(RG, WS, EXP).result()
    share = models.AzureFileShareReference(
        account_name=emu.account_name, azure_file_url="{}/{}".format(emu.files_url, SHARE), relative_mount_path="afs",
        credentials=models.AzureStorageCredentialsInfo(account_key=emu.account_key))
    cluster = batchai_client.clusters.begin_create(RG, WS, "one", models.ClusterCreateParameters(
        vm_size="STANDARD_NC6", user_account_settings=models.UserAccountSettings(admin_user_name="bench"),
        scale_settings=models.ScaleSettings(manual=models.ManualScaleSettings(target_node_count=1)),
        node_setup=models.NodeSetup(mount_volumes=models.MountVolumes(azure_file_shares=[share])))).result()
    parameters = models.JobCreateParameters(
        cluster=models.ResourceId(id=cluster.id), node_count=1, std_out_err_path_prefix="$AZ_BATCHAI_MOUNT_ROOT/afs",
        custom_toolkit_settings=models.CustomToolkitSettings(command_line="true"))

    def idle_node() -> bool:
        return batchai_client.clusters.get(RG, WS, "one").node_state_counts.idle_node_count == 1

    to_running, create_calls = [], []
    for run in range(runs):
        while not idle_node():
            time.sleep(POLL_SECONDS)
        name = "job{}".format(run)
        start = time.perf_counter()
        batchai_client.jobs.begin_create(RG, WS, EXP, name, parameters).result()
        create_calls.append(time.perf_counter() - start)
        while batchai_client.jobs.get(RG, WS, EXP, name).execution_state == "queued":
            time.sleep(POLL_SECONDS)
        to_running.append(time.perf_counter() - start)
        while batchai_client.jobs.get(RG, WS, EXP, name).execution_state not in ("succeeded", "failed"):
            time.sleep(POLL_SECONDS)
    median = statistics.median(to_running)
    print("Batch AI job start on an idle one-node cluster ({} runs, polling every {:.0f} ms)".format(
        runs, POLL_SECONDS * 1000))
    print("  begin_create().result()        median {:.3f} s".format(statistics.median(create_calls)))
    print("  begin_create -> running        median {:.3f} s  (runs: {})  {} goal < {} s".format(
        median, ", ".join("{:.3f}".format(t) for t in to_running), "meets" if median < START_GOAL else "MISSES",
        START_GOAL))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=128, help="size of the uploaded file")
    parser.add_argument("--rounds", type=int, default=3, help="upload rounds; figures are medians")
    parser.add_argument("--runs", type=int, default=5, help="job starts to time")
    parser.add_argument("--smoke", action="store_true", help="8 MiB, one round, one job: does it run?")
    args = parser.parse_args(argv)
    size_mib, rounds, runs = (8, 1, 1) if args.smoke else (args.size_mib, args.rounds, args.runs)
    with tempfile.TemporaryDirectory(prefix="emulator-bench-") as work, \
            emulator_process(Path(work) / "data") as emu:
        bench_upload(emu, Path(work), size_mib * 2**20, rounds)
        bench_job_start(emu, runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
