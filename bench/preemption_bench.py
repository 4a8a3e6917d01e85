#!/usr/bin/env python3
"""What a preemption costs a training job on the emulator, in this run: the same seeded ConvNet_MNIST.py
job on a dedicated cluster, uninterrupted, and on a low-priority cluster whose node is preempted right
after the first checkpoint (the job requeued, a replacement node, the rerun resuming from it).

Prints each job's wall time from submission to success and their ratio, the time from the preemption
to the rerun running again (requeue plus the emulator's replacement delay) and to its "Resumed from"
line (interpreter and data start-up), and both final test errors (equal: the rerun resumes exactly).

Usage: python bench/preemption_bench.py [--mnist-dir DIR] [--epochs N] [--smoke]
(--smoke: 2 epochs of the small MNIST subset in tests/data, to check that the benchmark still runs)
"""
from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

import requests
from azure.mgmt.batchai import BatchAI, models
from azure.mgmt.resource.resources import ResourceManagementClient
from azure.storage.fileshare import ShareServiceClient

import emulator
from batchai_quickstart.mnist import prepare_mnist
from batchai_quickstart.steps import create_job

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "samples" / "ConvNet_MNIST.py"
RG, WS, EXP, SHARE, MOUNT = "rg", "ws", "exp", "bench", "$AZ_BATCHAI_MOUNT_ROOT/share"
FINAL = re.compile(r"Final Results: Minibatch\[1-\d+\]: errs = (\d+\.\d+)%")


def poll(predicate, timeout: float = 3600, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise SystemExit("timed out")
        time.sleep(interval)


class Bench:
    def __init__(self, emu, epochs: int) -> None:
        common = dict(base_url=emu.arm_url, connection_verify=emu.ca_cert, polling_interval=0.05)
        self.emu, self.epochs = emu, epochs
        self.batchai = BatchAI(emu.credential(), emu.subscription_id, **common)
        self.resources = ResourceManagementClient(emu.credential(), emu.subscription_id, **common)
        self.files = ShareServiceClient.from_connection_string(emu.files_connection_string)

    def set_up(self, data_dir: Path) -> dict:
        self.resources.resource_groups.create_or_update(RG, {"location": "eastus"})
        share = self.files.get_share_client(SHARE)
        share.create_share()
        directory = share.get_directory_client("mnist")
        directory.create_directory()
        for path in sorted(data_dir.glob("*-28x28_cntk_text.txt")) + [SCRIPT]:
            with open(path, "rb") as data:
                directory.get_file_client(path.name).upload_file(data)
        self.batchai.workspaces.begin_create(RG, WS, models.WorkspaceCreateParameters(location="eastus")).result()
        self.batchai.experiments.begin_create(RG, WS, EXP).result()
        return {priority: self.cluster(priority) for priority in ("dedicated", "lowpriority")}

    def cluster(self, priority: str) -> str:
        mount = models.AzureFileShareReference(
            account_name=self.emu.account_name, azure_file_url="{}/{}".format(self.emu.files_url, SHARE),
            relative_mount_path="share", credentials=models.AzureStorageCredentialsInfo(account_key=self.emu.account_key))
        cluster = self.batchai.clusters.begin_create(RG, WS, priority, models.ClusterCreateParameters(
            vm_size="STANDARD_NC6", vm_priority=priority,
            scale_settings=models.ScaleSettings(manual=models.ManualScaleSettings(target_node_count=1)),
            user_account_settings=models.UserAccountSettings(admin_user_name="bench", admin_user_password="Pa55word!x"),
            node_setup=models.NodeSetup(mount_volumes=models.MountVolumes(azure_file_shares=[mount])))).result()
        poll(lambda: self.batchai.clusters.get(RG, WS, priority).allocation_state == "steady")
        return cluster.id

    def submit(self, name: str, cluster_id: str) -> float:
        """The quickstart's job (its create_job step), seeded; returns when it was submitted."""
        create_job(self.batchai, RG, WS, EXP, name, cluster_id, "microsoft/cntk:2.1-gpu-python3.5-cuda8.0-cudnn6.0",
                   "mnist", self.epochs, relative_mount_path="share", script_arguments="--seed 7 --engine pytorch")
        return time.monotonic()

    def warm_up(self, cluster_id: str) -> None:
        self.batchai.jobs.begin_create(RG, WS, EXP, "warm-up", models.JobCreateParameters(
            cluster=models.ResourceId(id=cluster_id), node_count=1, std_out_err_path_prefix=MOUNT,
            custom_toolkit_settings=models.CustomToolkitSettings(
                command_line="{} -c 'import torch, numpy' && cat {} > /dev/null".format(
                    sys.executable, MOUNT + "/mnist/*.txt")))).result()
        poll(lambda: self.state("warm-up") in ("succeeded", "failed"))

    def state(self, name: str) -> str:
        return self.batchai.jobs.get(RG, WS, EXP, name).execution_state

    def outputs(self, name: str, directory_id: str) -> dict:
        return {f.name: f for f in self.batchai.jobs.list_output_files(
            RG, WS, EXP, name, models.JobsListOutputFilesOptions(outputdirectoryid=directory_id))}

    def stderr(self, name: str) -> str:
        return requests.get(self.outputs(name, "stdouterr")["stderr.txt"].download_url, timeout=30).text

    def finish(self, name: str, submitted: float) -> tuple:
        state = poll(lambda: self.state(name) in ("succeeded", "failed") and self.state(name))
        seconds = time.monotonic() - submitted
        stderr = self.stderr(name)
        if state != "succeeded":
            raise SystemExit("job {} {}:\n{}".format(name, state, stderr[-3000:]))
        return seconds, float(FINAL.search(stderr).group(1)), stderr


def main() -> int:
    default_mnist = ROOT.parent / "shared" / "data" / "mnist"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist-dir", type=Path, default=default_mnist, help="the four MNIST .gz files")
    parser.add_argument("--epochs", type=int, default=3, help="epochs of each job (default 3)")
    parser.add_argument("--smoke", action="store_true", help="2 epochs of the small subset: checks that it runs")
    args = parser.parse_args()
    if args.smoke:  # two epochs: the preemption comes after the first checkpoint
        args.mnist_dir, args.epochs = ROOT / "tests" / "data" / "mnist-small", 2
    with tempfile.TemporaryDirectory() as scratch, emulator.start(Path(scratch) / "emulator") as emu:
        data_dir = Path(scratch) / "data"
        prepare_mnist(data_dir, mnist_dir=args.mnist_dir, log=lambda *a: None)
        bench = Bench(emu, args.epochs)
        clusters = bench.set_up(data_dir)

        bench.warm_up(clusters["dedicated"])  # the first torch import reads it from disk: not the job's cost
        uninterrupted = bench.finish("uninterrupted", bench.submit("uninterrupted", clusters["dedicated"]))

        submitted = bench.submit("preempted", clusters["lowpriority"])
        poll(lambda: "ConvNet_MNIST_0.pt" in bench.outputs("preempted", "MODEL"), interval=0.02)
        preempted_at = time.monotonic()
        emu.preempt_node(RG, WS, "lowpriority")
        poll(lambda: bench.state("preempted") != "queued", interval=0.02)
        running_again = time.monotonic() - preempted_at
        poll(lambda: "Resumed from " in bench.stderr("preempted"), interval=0.05)
        resumed = time.monotonic() - preempted_at
        preempted = bench.finish("preempted", submitted)

    print("ConvNet_MNIST.py, {} epochs, one node, {}".format(args.epochs, args.mnist_dir))
    print("uninterrupted job: {:7.2f} s, test error {:.2f}%".format(uninterrupted[0], uninterrupted[1]))
    print("preempted job:     {:7.2f} s, test error {:.2f}% (preempted after checkpoint 0)".format(
        preempted[0], preempted[1]))
    print("  preemption to running again: {:.2f} s; to 'Resumed from': {:.2f} s".format(running_again, resumed))
    print("cost of one preemption: {:+.2f} s ({:.2f}x the uninterrupted job); same test error: {}".format(
        preempted[0] - uninterrupted[0], preempted[0] / uninterrupted[0], preempted[1] == uninterrupted[1]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
