"""The steps of the quickstart on Azure Machine Learning (azure-ai-ml v2), one function each.

Each is the Azure ML counterpart of a step of batchai_quickstart/steps.py (README: migration table):
a workspace instead of a Batch AI workspace, a data asset and the job's code snapshot instead of a
mounted file share, an autoscaling AmlCompute cluster instead of a fixed one, a command job with a
curated environment instead of container settings. Each function takes an ``MLClient`` (or another
SDK client) and plain values and returns what the SDK returns; quickstart_azureml.py calls them in order.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Iterable, List, Optional

from azure.ai.ml import Input, MLClient, Output, PyTorchDistribution, command
from azure.ai.ml.constants import AssetTypes, InputOutputModes
from azure.ai.ml.entities import AmlCompute, Data, Workspace
from azure.ai.ml.exceptions import JobException
from azure.core.exceptions import ResourceNotFoundError

from .steps import (SCRIPT_NAME, create_resource_group, delete_resource_group,  # noqa: F401 (shared steps)
                    prepare_mnist_data)

MODEL_OUTPUT = "model"
DATA_INPUT = "data"
# Job states (azure.ai.ml JobStatus) after which nothing more happens.
FINISHED_STATES = ("Completed", "Failed", "Canceled", "NotResponding", "Paused")
DOWNLOADED_FILES = ("ConvNet_MNIST.onnx", "ConvNet_MNIST_training.png")


class JobFailed(Exception):
    """The job ended Failed; the message is the service's error, on one line."""


# 5. Workspace --------------------------------------------------------------------------------

def create_workspace(ml_client: MLClient, workspace: str, location: str):
    """Create the Azure ML workspace, the home of data assets, computes and jobs.

    Azure deploys it with its own storage account (where data, code and job outputs live), key
    vault, Application Insights and Log Analytics; that takes a few minutes the first time.
    """
    return ml_client.workspaces.begin_create(
        Workspace(name=workspace, location=location, display_name=workspace)).result()


# 6. Data --------------------------------------------------------------------------------------

def data_version(paths: Iterable[Path]) -> str:
    """A version for the data asset that changes when the files change (names and sizes).

    A data asset version is immutable, so different data (the test subset, full MNIST) needs a new one.
    """
    digest = hashlib.sha256()
    for path in sorted(Path(p) for p in paths):
        digest.update("{}:{}\n".format(path.name, path.stat().st_size).encode())
    return digest.hexdigest()[:12]


def upload_data(ml_client: MLClient, name: str, data_dir: Path, version: str):
    """Upload the prepared MNIST files as a ``uri_folder`` data asset in the workspace's default datastore.

    This replaces the Batch AI file share: the job gets the folder as an input instead of a mount.
    An upload of unchanged files is skipped by the SDK.
    """
    return ml_client.data.create_or_update(Data(
        name=name, version=version, type=AssetTypes.URI_FOLDER, path=str(data_dir),
        description="MNIST in CNTK text format (Train-28x28_cntk_text.txt, Test-28x28_cntk_text.txt)"))


# 7. Compute -----------------------------------------------------------------------------------

def create_compute(ml_client: MLClient, name: str, vm_size: str, max_nodes: int, idle_seconds: int = 120):
    """Create an AmlCompute GPU cluster that scales from 0 nodes, so it costs nothing while idle.

    Unlike a Batch AI cluster it has no mounts and no node credentials: jobs bring their data and
    code, and nodes are added when a job asks for them and removed ``idle_seconds`` after.
    """
    return ml_client.compute.begin_create_or_update(AmlCompute(
        name=name, size=vm_size, min_instances=0, max_instances=max_nodes,
        idle_time_before_scale_down=idle_seconds)).result()


# 8. Compute status ---------------------------------------------------------------------------

def compute_status(compute) -> str:
    """One line: size, node range and provisioning state of the cluster."""
    state = getattr(compute.provisioning_state, "value", compute.provisioning_state)  # an enum from the service
    return "Compute {}: {} x {} to {} nodes (scales to {} when idle for {:.0f} s), {}".format(
        compute.name, compute.size, compute.min_instances, compute.max_instances, compute.min_instances,
        float(compute.idle_time_before_scale_down or 0), state)


# 9. Job ---------------------------------------------------------------------------------------

def build_job(code_dir: Path, data: Data, compute: str, environment: str, experiment: str,
              epochs: Optional[int] = None, nodes: int = 1):
    """The command job: ``python ConvNet_MNIST.py <data> <model dir>`` in a PyTorch environment.

    The data asset is mounted read-only as input ``data``; ``model`` is an output folder that Azure ML
    uploads to the workspace's storage. With ``nodes`` > 1, PyTorchDistribution starts one process per
    node with MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK and NODE_RANK set.
    """
    arguments = "${{inputs.data}} ${{outputs.model}}"
    if epochs is not None:
        arguments += " --epochs {}".format(epochs)
    extra = {}
    if nodes > 1:
        extra = dict(distribution=PyTorchDistribution(process_count_per_instance=1), instance_count=nodes)
    return command(
        code=str(code_dir),
        command="python {} {}".format(SCRIPT_NAME, arguments),
        inputs={DATA_INPUT: Input(type=AssetTypes.URI_FOLDER, path="azureml:{}:{}".format(data.name, data.version),
                                  mode=InputOutputModes.RO_MOUNT)},
        outputs={MODEL_OUTPUT: Output(type=AssetTypes.URI_FOLDER, mode=InputOutputModes.RW_MOUNT)},
        environment=environment,
        compute=compute,
        experiment_name=experiment,
        display_name="ConvNet_MNIST",
        **extra,
    )


def submit_job(ml_client: MLClient, job):
    """Submit the job (its code folder is uploaded first, unless an identical snapshot exists)."""
    return ml_client.jobs.create_or_update(job)


# 10. Monitoring -------------------------------------------------------------------------------

def stream_job(ml_client: MLClient, job_name: str):
    """Print the job's log live (``user_logs/std_log.txt``) until it ends; return the finished job.

    Raises JobFailed with the service's error when the job fails. Ctrl-C stays a KeyboardInterrupt
    (the SDK would turn it into a JobException and leave the job running).
    """
    try:
        ml_client.jobs.stream(job_name)
    except JobException as exc:
        if isinstance(exc.__cause__, KeyboardInterrupt):
            raise KeyboardInterrupt from None
        raise JobFailed(_error_line(job_name, str(exc))) from None
    return ml_client.jobs.get(job_name)


def _error_line(job_name: str, text: str) -> str:
    """The error the SDK printed as JSON (``Exception : {...}``), as one line."""
    body = text.split(":", 1)[-1].strip()
    try:
        error = json.loads(body)
    except ValueError:
        return "job {} failed: {}".format(job_name, " ".join(text.split()))
    inner = error.get("error", error) if isinstance(error, dict) else {}
    return "job {} failed: {}{}".format(job_name, "{}: ".format(inner["code"]) if inner.get("code") else "",
                                        " ".join(str(inner.get("message", body)).split()))


def job_summary(job) -> str:
    """How the job ended, in one line."""
    return "Job {} {} ({})".format(job.name, job.status.lower() if job.status else "unknown", job.studio_url)


# 11-12. Outputs -------------------------------------------------------------------------------

def download_job_outputs(ml_client: MLClient, job_name: str, download_dir: Path,
                         output_name: str = MODEL_OUTPUT) -> List[Path]:
    """Download the job's logs and ``outputs/`` (to ``artifacts/``) and its ``model`` output (to
    ``named-outputs/model/``); returns the files, sorted.

    Two calls: with ``all=True`` azure-ai-ml 1.35.2 skips named outputs that RunHistory reports with
    a PascalCase type (``UriFolder``), as the service does.
    """
    download_dir = Path(download_dir)
    ml_client.jobs.download(job_name, download_path=str(download_dir))
    ml_client.jobs.download(job_name, download_path=str(download_dir), output_name=output_name)
    return sorted(p for p in download_dir.rglob("*") if p.is_file())


# 13. Model ------------------------------------------------------------------------------------

def copy_model_files(files: Iterable[Path], destination: Path, names: Iterable[str] = DOWNLOADED_FILES) -> List[Path]:
    """Copy the ONNX model and the training plot among the downloaded ``files`` into ``destination``."""
    destination = Path(destination)
    wanted, copied = set(names), []
    for path in files:
        if path.name in wanted and "named-outputs" in path.parts:
            destination.mkdir(parents=True, exist_ok=True)
            copied.append(Path(shutil.copyfile(path, destination / path.name)))
    return copied


# 14. Clean up ---------------------------------------------------------------------------------

def cancel_job(ml_client: MLClient, job_name: str) -> None:
    """Cancel a queued or running job (it ends Canceled)."""
    ml_client.jobs.begin_cancel(job_name).result()


def delete_compute(ml_client: MLClient, name: str) -> None:
    """Delete the cluster (its nodes are released)."""
    ml_client.compute.begin_delete(name).result()


def delete_workspace(ml_client: MLClient, workspace: str) -> None:
    """Delete the workspace with its data assets, code snapshots and jobs, permanently (no soft delete)."""
    ml_client.workspaces.begin_delete(workspace, delete_dependent_resources=False, permanently_delete=True).result()


def delete_azureml_resources(ml_client: MLClient, resource_client, resource_group: str, workspace: str,
                             compute: str, report=print) -> None:
    """Delete the cluster, the workspace and the resource group, newest first; what is gone is skipped."""
    deletions = (
        ("compute", compute, delete_compute, (ml_client, compute)),
        ("workspace", workspace, delete_workspace, (ml_client, workspace)),
        ("resource group", resource_group, delete_resource_group, (resource_client, resource_group)),
    )
    for kind, name, delete, arguments in deletions:
        try:
            delete(*arguments)
        except ResourceNotFoundError:
            continue
        report("Deleted {} {}".format(kind, name))
