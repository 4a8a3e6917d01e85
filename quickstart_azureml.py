#!/usr/bin/env python3
"""The same quickstart on Azure Machine Learning, with the azure-ai-ml (v2) SDK.

Step for step as quickstart.py: read the configuration, create the clients, a resource group and an
Azure ML workspace, upload MNIST as a data asset, create an AmlCompute GPU cluster that scales from
zero, submit a command job running ConvNet_MNIST.py (``--nodes N``: PyTorch distribution), stream its
log, download its outputs and the model, and delete everything.

By default it runs against the local emulator; ``--target azure`` makes the same SDK calls to Azure,
where Azure Machine Learning is Batch AI's successor. Each step is one function of
batchai_quickstart.azureml_steps that can be copied alone.
"""
from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

from azure.core.exceptions import AzureError, ResourceNotFoundError

from batchai_quickstart import azureml_steps as steps
from batchai_quickstart.azureml_clients import create_azureml_clients
from batchai_quickstart.azureml_config import ConfigError, load_azureml_config
from batchai_quickstart.azureml_errors import describe_azureml_error
from batchai_quickstart.config import find_config, warn_if_readable_by_others
from batchai_quickstart.mnist import MnistError

HERE = Path(__file__).resolve().parent
CODE_DIR = HERE / "samples"  # the job's code snapshot: ConvNet_MNIST.py
OUTPUTS = Path("outputs")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run the ConvNet_MNIST training job on Azure Machine Learning "
                                                 "(local emulator by default).")
    parser.add_argument("--config", help="configuration file (default: config.ini, else config.example.ini)")
    parser.add_argument("--target", choices=("local", "azure"), help="override [quickstart] target")
    parser.add_argument("--epochs", type=int, help="training epochs (overrides [job] epochs)")
    parser.add_argument("--nodes", type=int, help="nodes the job runs on, with PyTorch distribution (default 1)")
    parser.add_argument("--mnist-dir", type=Path,
                        help="directory with the four MNIST .gz files (else cache or download)")
    parser.add_argument("--mirror", action="append", metavar="URL",
                        help="MNIST mirror base URL to download from (repeatable; default: $MNIST_MIRROR, else the "
                             "public mirrors)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the resources at the end (scripts/cleanup_azureml.py deletes them)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)

    # 1. Read the configuration.
    config = load_azureml_config(find_config(args.config, HERE), target=args.target, epochs=args.epochs,
                                 nodes=args.nodes)
    warn_if_readable_by_others(config.path)
    print("Configuration: {} (target: {})".format(config.path, config.target))

    # 2. Prepare the MNIST data first: a missing or broken dataset fails before anything is created.
    data_dir = config.path.parent / "data" / "mnist-cntk"
    data_files = steps.prepare_mnist_data(data_dir, args.mnist_dir, args.mirror)

    # 3. Create the Resource Manager client and the Azure ML client (MLClient).
    clients = create_azureml_clients(config)
    group_created, job, submitted, interrupted, failed, cleaned_up = False, None, None, False, None, True
    try:
        # 4. Create the resource group.
        steps.create_resource_group(clients.resource, config.resource_group, config.location)
        group_created = True
        print("Created resource group {}".format(config.resource_group))

        # 5. Create the Azure ML workspace (it brings the storage the data and outputs live in).
        steps.create_workspace(clients.ml, config.workspace, config.location)
        print("Created workspace {}".format(config.workspace))

        # 6. Upload the data as a data asset (the training script travels as the job's code, step 9).
        data = steps.upload_data(clients.ml, config.data_asset, data_dir, steps.data_version(data_files))
        print("Uploaded data asset {} version {} ({})".format(data.name, data.version, data.path))

        # 7. Create the GPU cluster, scaling from 0 nodes.
        compute = steps.create_compute(clients.ml, config.compute, config.vm_size, config.max_nodes,
                                       config.idle_seconds)

        # 8. Show the cluster: there is nothing to wait for, nodes come with the job.
        print(steps.compute_status(compute))

        # 9. Submit the training job with ConvNet_MNIST.py as its code.
        job = steps.build_job(CODE_DIR, data, config.compute, config.environment, config.experiment,
                              config.epochs, config.nodes)
        submitted = steps.submit_job(clients.ml, job)
        print("Submitted job {} in experiment {} on {} node(s)".format(submitted.name, config.experiment,
                                                                      config.nodes))

        # 10. Stream the job's log until it ends.
        try:
            job = steps.stream_job(clients.ml, submitted.name)
            print(steps.job_summary(job))
        except steps.JobFailed as exc:
            failed = exc
            print("error: {}".format(exc), file=sys.stderr)

        # 11. and 12. Download and list the job's logs and its model output.
        with tempfile.TemporaryDirectory(prefix="azureml-job-") as download_dir:
            files = steps.download_job_outputs(clients.ml, submitted.name, Path(download_dir))
            print("Job files:")
            for path in files:
                print("  {} ({} bytes)".format(path.relative_to(download_dir), path.stat().st_size))

            # 13. Keep the final model and the training plot in ./outputs.
            for path in steps.copy_model_files(files, OUTPUTS):
                print("Downloaded {}".format(OUTPUTS / path.name))
    except KeyboardInterrupt:
        interrupted = True
        print("\nInterrupted: cancelling the job and cleaning up.", flush=True)
    finally:
        # 14. Cancel the job if it still runs, delete the cluster, the workspace and the resource group.
        try:
            if group_created:
                cleaned_up = _clean_up(clients, config, submitted.name if interrupted and submitted else None,
                                       keep=args.keep)
        finally:
            clients.close()
    if interrupted:
        return 130
    return 0 if cleaned_up and failed is None and job is not None and job.status == "Completed" else 1


def _clean_up(clients, config, job_to_cancel, keep: bool) -> bool:
    """Step 14; a failure here is a warning, so that it never hides the error that led here."""
    try:
        if job_to_cancel:
            try:
                steps.cancel_job(clients.ml, job_to_cancel)
                print("Cancelled job {}".format(job_to_cancel))
            except ResourceNotFoundError:
                pass
        if keep:
            print("Kept the resources (--keep): python scripts/cleanup_azureml.py deletes them.")
            return True
        steps.delete_azureml_resources(clients.ml, clients.resource, config.resource_group, config.workspace,
                                       config.compute, report=print)
        return True
    except AzureError as exc:
        print("warning: clean-up failed: {}; python scripts/cleanup_azureml.py retries it".format(
            describe_azureml_error(exc)), file=sys.stderr)
        return False


def run(argv=None) -> int:
    """main() with every expected failure turned into one ``error:`` line and exit code 2."""
    # The SDKs' own warnings and progress logs would bury that line.
    logging.getLogger("azure").setLevel(logging.ERROR)
    logging.getLogger("azure.ai.ml._utils._experimental").setLevel(logging.ERROR)  # schema classes it uses itself
    try:
        return main(argv)
    except KeyboardInterrupt:  # before any resource existed (later ones are handled in main)
        print("\nInterrupted.", file=sys.stderr)
        return 130
    except (ConfigError, MnistError, ValueError, OSError) as exc:
        print("error: {}".format(str(exc).splitlines()[0] if str(exc) else type(exc).__name__), file=sys.stderr)
        return 2
    except Exception as exc:  # AzureError and azure-ai-ml's own MlException
        if not isinstance(exc, AzureError) and not type(exc).__module__.startswith("azure."):
            raise
        print("error: {}".format(describe_azureml_error(exc)), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(run())
