"""The steps of the Batch AI CNTK quickstart, one function each.

Each function takes SDK clients and plain values and returns what the SDK returns, so any step
can be copied into another script on its own. quickstart.py calls them in order.
"""
from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Callable, Iterable, List, Optional

import requests
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.mgmt.batchai import BatchAI
from azure.mgmt.batchai import models
from azure.mgmt.resource.resources import ResourceManagementClient
from azure.storage.fileshare import ShareClient, ShareServiceClient

# Where the share is mounted on every node: $AZ_BATCHAI_MOUNT_ROOT/azurefileshare.
RELATIVE_MOUNT_POINT = "azurefileshare"
SCRIPT_NAME = "ConvNet_MNIST.py"
DATA_FILES = ("Train-28x28_cntk_text.txt", "Test-28x28_cntk_text.txt")
FINISHED_STATES = ("succeeded", "failed")
ACTIVE_STATES = ("running", "terminating")


# 3. Resource group ----------------------------------------------------------------------------

def create_resource_group(resource_client: ResourceManagementClient, name: str, location: str):
    """Create (or update) the resource group that holds every Batch AI resource of the quickstart.

    Deleting this group at the end deletes everything in it.
    """
    return resource_client.resource_groups.create_or_update(name, {"location": location})


# 4. Data and file share ----------------------------------------------------------------------

def prepare_mnist_data(out_dir: Path, mnist_dir: Optional[Path] = None,
                       mirrors: Optional[List[str]] = None) -> List[Path]:
    """Make the MNIST training and test files in CNTK's text format, once.

    The four original MNIST files come from ``mnist_dir`` when given, else from a local cache,
    else from a checksummed download (from ``mirrors`` when given). Returns the paths of
    Train- and Test-28x28_cntk_text.txt.
    """
    from .mnist import prepare_mnist

    return list(prepare_mnist(out_dir, mnist_dir=mnist_dir, mirrors=mirrors))


def create_file_share(share_service: ShareServiceClient, share_name: str, directory: str) -> ShareClient:
    """Create the Azure file share and the directory in it that receives the data and the script.

    Both may already exist (a rerun): that is fine.
    """
    share = share_service.get_share_client(share_name)
    try:
        share.create_share()
    except ResourceExistsError:
        pass
    try:
        share.create_directory(directory)
    except ResourceExistsError:
        pass
    return share


def upload_files(share: ShareClient, directory: str, paths: Iterable[Path], show_progress: bool = True) -> List[str]:
    """Upload local files into ``directory`` of the share, with one progress bar for all bytes.

    Returns the names uploaded.
    """
    from tqdm import tqdm

    paths = [Path(p) for p in paths]
    total = sum(p.stat().st_size for p in paths)
    uploaded = []
    with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc="Uploading",
              disable=not show_progress) as bar:
        for path in paths:
            file_client = share.get_file_client("{}/{}".format(directory, path.name))
            done = [0]

            def on_progress(current: int, _total: Optional[int], done=done) -> None:
                bar.update(current - done[0])
                done[0] = current

            with open(path, "rb") as data:
                file_client.upload_file(data, length=path.stat().st_size, progress_hook=on_progress)
            uploaded.append(path.name)
    return uploaded


# 5. Workspace --------------------------------------------------------------------------------

def create_workspace(batchai_client: BatchAI, resource_group: str, workspace: str, location: str):
    """Create the Batch AI workspace: the container of clusters and experiments (API 2018-05-01)."""
    return batchai_client.workspaces.begin_create(
        resource_group, workspace, models.WorkspaceCreateParameters(location=location)).result()


# 6. Cluster ----------------------------------------------------------------------------------

def create_cluster(batchai_client: BatchAI, resource_group: str, workspace: str, cluster: str, vm_size: str,
                   node_count: int, admin_user_name: str, admin_user_password: str, storage_account_name: str,
                   storage_account_key: str, azure_file_url: str,
                   relative_mount_path: str = RELATIVE_MOUNT_POINT, vm_priority: str = "dedicated"):
    """Create a GPU cluster of ``node_count`` ``vm_size`` nodes with the file share mounted on each.

    The share appears on every node at ``$AZ_BATCHAI_MOUNT_ROOT/<relative_mount_path>``.
    ``vm_priority`` ``lowpriority`` makes nodes that cost less but can be preempted; the service
    then requeues the job on them (``nodeDeallocationOption`` requeue, the default) and reruns it
    when a node is back.
    """
    parameters = models.ClusterCreateParameters(
        vm_size=vm_size,
        vm_priority=vm_priority,
        user_account_settings=models.UserAccountSettings(
            admin_user_name=admin_user_name, admin_user_password=admin_user_password),
        scale_settings=models.ScaleSettings(manual=models.ManualScaleSettings(target_node_count=node_count)),
        node_setup=models.NodeSetup(mount_volumes=models.MountVolumes(azure_file_shares=[
            models.AzureFileShareReference(
                account_name=storage_account_name,
                credentials=models.AzureStorageCredentialsInfo(account_key=storage_account_key),
                azure_file_url=azure_file_url,
                relative_mount_path=relative_mount_path)])),
    )
    return batchai_client.clusters.begin_create(resource_group, workspace, cluster, parameters).result()


# 7. Cluster status ---------------------------------------------------------------------------

def cluster_status(cluster) -> str:
    """One line in the original quickstart's format: allocation state, then the node counts."""
    counts = cluster.node_state_counts
    target = cluster.scale_settings.manual.target_node_count if cluster.scale_settings.manual else "auto"
    return ("Cluster state: {} Target: {}; Allocated: {}; Idle: {}; Unusable: {}; Running: {}; Preparing: {}; "
            "Leaving: {}").format(cluster.allocation_state, target, cluster.current_node_count,
                                  counts.idle_node_count, counts.unusable_node_count, counts.running_node_count,
                                  counts.preparing_node_count, counts.leaving_node_count)


class ClusterError(RuntimeError):
    """The cluster's nodes could not be made ready."""


def wait_for_cluster(batchai_client: BatchAI, resource_group: str, workspace: str, cluster: str,
                     poll_seconds: float, on_status: Callable[[str], None] = print, timeout: float = 3600):
    """Poll the cluster until it is steady with its nodes ready, printing each new status line.

    Raises ClusterError when a node is unusable (for example, the share could not be mounted).
    """
    last_line, deadline = None, time.monotonic() + timeout
    while True:
        state = batchai_client.clusters.get(resource_group, workspace, cluster)
        line = cluster_status(state)
        if line != last_line:
            on_status(line)
            last_line = line
        counts = state.node_state_counts
        if counts.unusable_node_count:
            errors = "; ".join("{}: {}".format(e.code, e.message) for e in (state.errors or []))
            raise ClusterError("cluster {} has unusable nodes: {}".format(cluster, errors or "no details"))
        if state.allocation_state == "steady" and counts.preparing_node_count == 0 and \
                counts.idle_node_count + counts.running_node_count >= (state.current_node_count or 0) > 0:
            return state
        if time.monotonic() > deadline:
            raise ClusterError("cluster {} was not ready after {:.0f} s".format(cluster, timeout))
        time.sleep(poll_seconds)


# 8. Experiment and job -----------------------------------------------------------------------

def create_experiment(batchai_client: BatchAI, resource_group: str, workspace: str, experiment: str):
    """Create the experiment, the container of jobs."""
    return batchai_client.experiments.begin_create(resource_group, workspace, experiment).result()


def create_job(batchai_client: BatchAI, resource_group: str, workspace: str, experiment: str, job: str,
               cluster_id: str, image: str, directory: str, epochs: Optional[int] = None,
               relative_mount_path: str = RELATIVE_MOUNT_POINT, node_count: int = 1, script_arguments: str = ""):
    """Create the training job: CNTK running ConvNet_MNIST.py from the share, on ``node_count`` nodes.

    Input ``SAMPLE`` is the share directory with the data and the script; output ``MODEL`` is a
    directory ``Models`` the service creates on the share; stdout and stderr go to the share too.
    On several nodes the service starts one process per node under mpirun (``process_count``);
    the script then trains data-parallel, each process on its share of every minibatch.
    ``script_arguments`` go after the script's own (e.g. ``--seed 7`` for a repeatable run).
    """
    mount = "$AZ_BATCHAI_MOUNT_ROOT/{}".format(relative_mount_path)
    arguments = "$AZ_BATCHAI_INPUT_SAMPLE $AZ_BATCHAI_OUTPUT_MODEL"
    if epochs is not None:
        arguments += " --epochs {}".format(epochs)
    if script_arguments:
        arguments += " " + script_arguments
    parameters = models.JobCreateParameters(
        cluster=models.ResourceId(id=cluster_id),
        node_count=node_count,
        container_settings=models.ContainerSettings(image_source_registry=models.ImageSourceRegistry(image=image)),
        std_out_err_path_prefix=mount,
        input_directories=[models.InputDirectory(id="SAMPLE", path="{}/{}".format(mount, directory))],
        output_directories=[models.OutputDirectory(id="MODEL", path_prefix=mount, path_suffix="Models")],
        cntk_settings=models.CNTKsettings(python_script_file_path="$AZ_BATCHAI_INPUT_SAMPLE/" + SCRIPT_NAME,
                                          command_line_args=arguments, process_count=node_count),
    )
    return batchai_client.jobs.begin_create(resource_group, workspace, experiment, job, parameters).result()


# 9. Monitoring -------------------------------------------------------------------------------

def read_new_output(url: str, offset: int, session: Optional[requests.Session] = None) -> bytes:
    """The bytes of a file (by its download URL) from ``offset`` on, with a Range request.

    Returns b"" when nothing new was written yet.
    """
    response = (session or requests).get(url, headers={"Range": "bytes={}-".format(offset)}, timeout=30)
    if response.status_code == 416:  # nothing at or after offset yet
        return b""
    response.raise_for_status()
    if response.status_code == 200:  # a server that ignores Range sends everything
        return response.content[offset:]
    return response.content


def find_output_file(batchai_client: BatchAI, resource_group: str, workspace: str, experiment: str, job: str,
                     output_directory_id: str, name: str):
    """The listed output file called ``name``, or None while the job has not written it."""
    for output in list_output_files(batchai_client, resource_group, workspace, experiment, job, output_directory_id):
        if output.name == name and output.download_url:
            return output
    return None


def monitor_job(batchai_client: BatchAI, resource_group: str, workspace: str, experiment: str, job: str,
                poll_seconds: float, on_state: Callable[[str], None] = print,
                on_output: Optional[Callable[[str], None]] = None, follow: str = "stderr.txt"):
    """Poll the job until it ends, reporting each state change and following its output.

    The training script writes its progress to stderr.txt on the share; while the job runs, the
    new bytes are read through the file's download URL with Range requests and passed to
    ``on_output``. A job whose node is preempted (low priority) or removed goes back to queued
    and later runs again, appending to the same files: the state line says so, and following
    goes on where it was. Returns the finished job.
    """
    state, started, url, offset = None, None, None, 0
    with requests.Session() as session:
        while True:
            current = batchai_client.jobs.get(resource_group, workspace, experiment, job)
            previous, state = state, current.execution_state
            start_time = getattr(current.execution_info, "start_time", None)
            # A requeue and rerun between two polls shows only as a later start time.
            restarted = state == previous == "running" and None not in (started, start_time) and start_time != started
            if state != previous or restarted:
                on_state(job_state(current, requeued=restarted or (state == "queued" and previous in ACTIVE_STATES)))
            started = start_time or started
            if on_output and state in ACTIVE_STATES + FINISHED_STATES:
                if url is None:
                    found = find_output_file(batchai_client, resource_group, workspace, experiment, job,
                                             "stdouterr", follow)
                    url = found.download_url if found else None
                if url:
                    data = read_new_output(url, offset, session)
                    offset += len(data)
                    if data:
                        on_output(data.decode("utf-8", errors="replace"))
            if state in FINISHED_STATES:
                return current
            time.sleep(poll_seconds)


# Why a running job goes back to queued: on Batch AI only its nodes going away does that (a low-priority
# node preempted, or a node removed by a resize with nodeDeallocationOption requeue, the default).
REQUEUED = "requeued: a node it ran on was preempted or removed; it runs again when nodes are free"
RERUN = "again: it was requeued after a node it ran on was preempted or removed"


def job_state(job, requeued: bool = False) -> str:
    """The state line: ``Job state: running``, naming the nodes when there are several, and why a job was requeued."""
    nodes = getattr(job, "node_count", None)
    line = "Job state: {}".format(job.execution_state)
    if isinstance(nodes, int) and nodes > 1:
        line += " on {} nodes".format(nodes)
    if requeued:
        line += " ({})".format(REQUEUED if job.execution_state == "queued" else RERUN)
    return line


def job_summary(job) -> str:
    """How the job ended: exit code and errors, in one line."""
    info = job.execution_info
    if info is None:
        return "Job {} {} before it started".format(job.name, job.execution_state)
    errors = "; ".join("{}: {}".format(e.code, e.message) for e in (info.errors or []))
    return "Job {} {} with exit code {}{}".format(job.name, job.execution_state, info.exit_code,
                                                   " ({})".format(errors) if errors else "")


# 10-12. Outputs ------------------------------------------------------------------------------

def list_output_files(batchai_client: BatchAI, resource_group: str, workspace: str, experiment: str, job: str,
                      output_directory_id: str, directory: str = ".") -> list:
    """The files of a job output directory (``stdouterr`` or an output id such as ``MODEL``).

    Each has a name, a size and a read-only download URL valid for an hour.
    """
    options = models.JobsListOutputFilesOptions(outputdirectoryid=output_directory_id, directory=directory)
    return list(batchai_client.jobs.list_output_files(resource_group, workspace, experiment, job, options))


def hide_signature(url: str) -> str:
    """A download URL fit to print: its SAS signature is a credential, so it is elided."""
    return re.sub(r"([?&]sig=)[^&]*", r"\1...", url)


def download_output_file(url: str, destination: Path) -> Path:
    """Download a job output file by its URL to ``destination`` (written whole, then renamed)."""
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".partial")
    with requests.get(url, stream=True, timeout=60) as response:
        response.raise_for_status()
        with open(partial, "wb") as f:
            for chunk in response.iter_content(1 << 20):
                f.write(chunk)
    os.replace(partial, destination)
    return destination


# 13. Clean up --------------------------------------------------------------------------------

def terminate_job(batchai_client: BatchAI, resource_group: str, workspace: str, experiment: str, job: str) -> None:
    """Stop a queued or running job (it ends as failed with JobTerminated)."""
    batchai_client.jobs.begin_terminate(resource_group, workspace, experiment, job).result()


def delete_job(batchai_client: BatchAI, resource_group: str, workspace: str, experiment: str, job: str) -> None:
    """Delete the job (its output files stay on the share)."""
    batchai_client.jobs.begin_delete(resource_group, workspace, experiment, job).result()


def delete_cluster(batchai_client: BatchAI, resource_group: str, workspace: str, cluster: str) -> None:
    """Delete the cluster; its nodes are released."""
    batchai_client.clusters.begin_delete(resource_group, workspace, cluster).result()


def delete_workspace(batchai_client: BatchAI, resource_group: str, workspace: str) -> None:
    """Delete the workspace with its experiments."""
    batchai_client.workspaces.begin_delete(resource_group, workspace).result()


def delete_file_share(share_service: ShareServiceClient, share_name: str) -> None:
    """Delete the file share with the data, the script and the job outputs on it."""
    share_service.delete_share(share_name)


def delete_resource_group(resource_client: ResourceManagementClient, resource_group: str) -> None:
    """Delete the resource group and everything left in it."""
    resource_client.resource_groups.begin_delete(resource_group).result()


def delete_quickstart_resources(clients, config, report: Callable[[str], None] = print) -> None:
    """Delete everything the quickstart creates, newest first; what is already gone is skipped.

    ``clients`` is a batchai_quickstart.clients.Clients, ``config`` a QuickstartConfig.
    """
    rg, ws = config.resource_group, config.workspace
    deletions = (
        ("job", config.job, delete_job, (clients.batchai, rg, ws, config.experiment, config.job)),
        ("cluster", config.cluster, delete_cluster, (clients.batchai, rg, ws, config.cluster)),
        ("workspace", ws, delete_workspace, (clients.batchai, rg, ws)),
        ("file share", config.share, delete_file_share, (clients.files, config.share)),
        ("resource group", rg, delete_resource_group, (clients.resource, rg)),
    )
    for kind, name, delete, arguments in deletions:
        try:
            delete(*arguments)
        except ResourceNotFoundError:
            continue
        report("Deleted {} {}".format(kind, name))
