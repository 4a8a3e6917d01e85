#!/usr/bin/env python3
"""Run a CNTK training job using the Azure Batch AI Python SDK.

The Azure quickstart, step by step: read the configuration, create the clients, a resource
group, an Azure file share with the MNIST data and the training script, a Batch AI workspace
and a one-node GPU cluster with the share mounted, then an experiment and a CNTK job running
ConvNet_MNIST.py; follow the job, list its output files with their download URLs, download
the model, and delete everything.

By default it runs against a local emulator of Resource Manager, Batch AI and Azure Files
(Azure Batch AI was retired on 2019-03-31); ``--target azure`` makes the same SDK calls to
Azure. Each step is one function of batchai_quickstart.steps that can be copied alone.
``--low-priority`` makes the cluster's nodes preemptible; ``--preempt-once`` (local target) has the
emulator preempt one after the job's first checkpoint, to show the job requeued and resumed.
"""
from __future__ import annotations

import argparse
import logging
import sys
from contextlib import nullcontext
from pathlib import Path

from azure.core.exceptions import AzureError, ResourceNotFoundError

from batchai_quickstart import preemption_demo, steps
from batchai_quickstart.azure_errors import describe_azure_error
from batchai_quickstart.clients import create_clients
from batchai_quickstart.config import ConfigError, find_config, load_config, open_config, warn_if_readable_by_others
from batchai_quickstart.mnist import MnistError

HERE = Path(__file__).resolve().parent
SAMPLE_SCRIPT = HERE / "samples" / steps.SCRIPT_NAME
OUTPUTS = Path("outputs")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run a CNTK training job on Batch AI (local emulator by default).")
    parser.add_argument("--config", help="configuration file (default: config.ini, else config.example.ini)")
    parser.add_argument("--target", choices=("local", "azure"), help="override [quickstart] target")
    parser.add_argument("--epochs", type=int, help="training epochs (overrides [job] epochs)")
    parser.add_argument("--nodes", type=int, help="cluster nodes the job trains on, data-parallel "
                                                  "(overrides [resources] node_count; default 1)")
    parser.add_argument("--mnist-dir", type=Path, help="directory with the four MNIST .gz files (else cache or download)")
    parser.add_argument("--mirror", action="append", metavar="URL",
                        help="MNIST mirror base URL to download from (repeatable; default: $MNIST_MIRROR, else the "
                             "public mirrors)")
    parser.add_argument("--low-priority", action="store_true",
                        help="low-priority nodes: cheaper, but preemptible (overrides [resources] vm_priority)")
    parser.add_argument("--preempt-once", action="store_true",
                        help="local target: preempt the job's node once after its first checkpoint, to show the "
                             "requeue and the resumed training (implies --low-priority)")
    parser.add_argument("--keep", action="store_true", help="keep the resources at the end (scripts/cleanup.py deletes them)")
    parser.add_argument("--show-sas", action="store_true", help="print download URLs with their SAS signatures")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)

    # 1. Read the configuration.
    config = _read_config(args)
    warn_if_readable_by_others(config.path)
    print("Configuration: {} (target: {})".format(config.path, config.target))

    # 2. Prepare the MNIST data first: a missing or broken dataset fails before anything is created.
    data_files = steps.prepare_mnist_data(config.path.parent / "data" / "mnist-cntk", args.mnist_dir, args.mirror)

    # 3. Create the Resource Manager, Batch AI and Azure Files clients.
    clients = create_clients(config)
    group_created, job_submitted, interrupted, job, cleaned_up = False, False, False, None, True
    try:
        # 4. Create the resource group.
        steps.create_resource_group(clients.resource, config.resource_group, config.location)
        group_created = True
        print("Created resource group {}".format(config.resource_group))

        # 5. Upload the data and the training script to the file share.
        share = steps.create_file_share(clients.files, config.share, config.directory)
        steps.upload_files(share, config.directory, data_files + [SAMPLE_SCRIPT])
        print("Uploaded the data and {} to {}/{}".format(SAMPLE_SCRIPT.name, config.share, config.directory))

        # 6. Create the workspace.
        steps.create_workspace(clients.batchai, config.resource_group, config.workspace, config.location)
        print("Created workspace {}".format(config.workspace))

        # 7. Create the GPU cluster with the file share mounted.
        cluster = steps.create_cluster(
            clients.batchai, config.resource_group, config.workspace, config.cluster, config.vm_size,
            config.node_count, config.admin_user_name, clients.admin_user_password, clients.storage_account_name,
            clients.storage_account_key, clients.azure_file_url(config.share), vm_priority=config.vm_priority)
        print("Created cluster {} ({} x {}{})".format(config.cluster, config.node_count, config.vm_size,
                                                       ", low priority" if config.vm_priority == "lowpriority" else ""))

        # 8. Monitor the cluster until its nodes are ready.
        steps.wait_for_cluster(clients.batchai, config.resource_group, config.workspace, config.cluster,
                               clients.monitor_interval)

        # 9. Create the experiment and the training job.
        steps.create_experiment(clients.batchai, config.resource_group, config.workspace, config.experiment)
        steps.create_job(clients.batchai, config.resource_group, config.workspace, config.experiment, config.job,
                         cluster.id, config.image, config.directory, config.epochs, node_count=config.node_count)
        job_submitted = True
        print("Created job {} in experiment {}{}".format(config.job, config.experiment, "" if config.node_count == 1
                                                         else " ({} nodes, one process each)".format(config.node_count)))

        # 10. Monitor the job, following its training progress in stderr.txt (--preempt-once: preempting its node).
        with preemption_demo.preempt_once(clients, config) if args.preempt_once else nullcontext():
            job = steps.monitor_job(clients.batchai, config.resource_group, config.workspace, config.experiment,
                                    config.job, clients.monitor_interval, on_output=_write_through)
        print(steps.job_summary(job))

        # 11. List the stdout and stderr files, and 12. the model files, with their download URLs.
        show = (lambda url: url) if args.show_sas else steps.hide_signature
        listings = {}
        for directory_id in ("stdouterr", "MODEL"):
            listings[directory_id] = steps.list_output_files(
                clients.batchai, config.resource_group, config.workspace, config.experiment, config.job, directory_id)
            print("Files in {}:".format(directory_id))
            for output in listings[directory_id]:
                if output.download_url:
                    print("  {} ({} bytes) {}".format(output.name, output.content_length, show(output.download_url)))

        # 13. Download the final model and the training plot into ./outputs.
        for output in listings["MODEL"]:
            if output.name in ("ConvNet_MNIST.onnx", "ConvNet_MNIST_training.png") and output.download_url:
                path = steps.download_output_file(output.download_url, OUTPUTS / output.name)
                print("Downloaded {}".format(path))
    except KeyboardInterrupt:
        interrupted = True
        print("\nInterrupted: stopping the job and cleaning up.", flush=True)
    finally:
        # 14. Delete the job, the cluster, the workspace, the share and the resource group.
        try:
            if group_created:  # everything else lives in it or after it
                cleaned_up = _clean_up(clients, config, stop_job=interrupted and job_submitted, keep=args.keep)
        finally:
            clients.close()
    if interrupted:
        return 130
    return 0 if cleaned_up and job is not None and job.execution_state == "succeeded" else 1


def _read_config(args: argparse.Namespace):
    """Step 1: the configuration file with the command line's overrides."""
    path = find_config(args.config, HERE)
    if args.preempt_once:  # checked first: the azure target's own checks would hide this one
        preemption_demo.require_local_target(open_config(path, args.target)[1])
    return load_config(path, target=args.target, epochs=args.epochs, nodes=args.nodes,
                       vm_priority="lowpriority" if args.low_priority or args.preempt_once else None)


def _clean_up(clients, config, stop_job: bool, keep: bool) -> bool:
    """Step 14; a failure here is reported as a warning, so that it never hides the error that led here."""
    try:
        if stop_job:
            _ignore_missing(steps.terminate_job, clients.batchai, config.resource_group, config.workspace,
                            config.experiment, config.job)
            print("Terminated job {}".format(config.job))
        if keep:
            print("Kept the resources (--keep): python scripts/cleanup.py deletes them.")
            return True
        steps.delete_quickstart_resources(clients, config, report=print)
        return True
    except AzureError as exc:
        print("warning: clean-up failed: {}; python scripts/cleanup.py retries it".format(
            describe_azure_error(exc)), file=sys.stderr)
        return False


def _ignore_missing(step, *args) -> None:
    try:
        step(*args)
    except ResourceNotFoundError:
        pass


def _write_through(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def run(argv=None) -> int:
    """main() with every expected failure turned into one ``error:`` line and exit code 2."""
    # The SDKs' own warnings (each credential DefaultAzureCredential tried, ...) would bury that line.
    logging.getLogger("azure").setLevel(logging.ERROR)
    try:
        return main(argv)
    except KeyboardInterrupt:  # before any resource existed (later ones are handled in main)
        print("\nInterrupted.", file=sys.stderr)
        return 130
    except (ConfigError, MnistError, steps.ClusterError, ValueError, OSError) as exc:
        print("error: {}".format(exc), file=sys.stderr)
        return 2
    except AzureError as exc:
        print("error: {}".format(describe_azure_error(exc)), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(run())
