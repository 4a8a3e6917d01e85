"""Batch AI jobs on the emulator, driven by the real SDKs: the quickstart sequence with a real
Files share, failures, termination, deletion, scheduling order, environment, time limits,
listOutputFiles and following a job's stderr while it runs.

The helpers at the top are shared with test_restart.py and test_cli.py.
"""
from __future__ import annotations

import datetime
import json
import os
import sys
import time
from typing import Optional

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.batchai import models

from conftest import PATIENCE
from emulator.runner import sandbox

RG, WS, EXP, SHARE, MOUNT = "rg", "ws", "exp", "batchaiquickstart", "azurefileshare"
MOUNT_ROOT = "$AZ_BATCHAI_MOUNT_ROOT/" + MOUNT

SCRIPT = b"""\
import os, sys
sys.stdout = sys.stderr  # as ConvNet_MNIST.py: progress goes to stderr.txt
data_path, model_path = sys.argv[1], sys.argv[2]
print("data", sorted(os.listdir(data_path)))
for epoch in range(3):
    with open(os.path.join(model_path, "ConvNet_MNIST_{}.dnn".format(epoch)), "w") as f:
        f.write("model {}".format(epoch))
    print("Finished Epoch[{} of 3]".format(epoch + 1))
print("Final Results: done")
"""


# ---- helpers (also used by test_restart.py and test_cli.py) ---------------------------------------

def wait_for(predicate, timeout: float = 10.0, interval: float = 0.02):
    """Poll ``predicate`` until it returns something truthy; that value is returned. A predicate that
    raises LookupError (an output file not listed yet: a job is "running" before its process has
    made stdout.txt) has simply not seen it yet."""
    timeout *= PATIENCE
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except LookupError:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met within {} s".format(timeout))
        time.sleep(interval)


def sdk_clients(emu) -> tuple:
    """(BatchAI, ResourceManagementClient, ShareServiceClient) for an emulator, or for anything with the
    same attributes (such as the JSON line ``python -m emulator`` prints, as a SimpleNamespace)."""
    from azure.mgmt.batchai import BatchAI
    from azure.mgmt.resource.resources import ResourceManagementClient
    from azure.storage.fileshare import ShareServiceClient
    from conftest import POLL
    from emulator.core.bearer import EmulatorCredential

    common = dict(base_url=emu.arm_url, connection_verify=emu.ca_cert, polling_interval=POLL)
    credential = EmulatorCredential(emu.token)
    return (BatchAI(credential, emu.subscription_id, **common),
            ResourceManagementClient(credential, emu.subscription_id, **common),
            ShareServiceClient.from_connection_string(emu.files_connection_string))


def make_share(share_service, name: str = SHARE):
    share = share_service.get_share_client(name)
    share.create_share()
    return share


def file_share_reference(emu, share: str = SHARE, mount: str = MOUNT, key: str = None):
    return models.AzureFileShareReference(
        account_name=emu.account_name, azure_file_url="{}/{}".format(emu.files_url, share), relative_mount_path=mount,
        credentials=models.AzureStorageCredentialsInfo(account_key=key or emu.account_key))


def make_workspace(resource_client, batchai_client, rg: str = RG, ws: str = WS, exp: str = EXP) -> None:
    resource_client.resource_groups.create_or_update(rg, {"location": "eastus"})
    batchai_client.workspaces.begin_create(rg, ws, models.WorkspaceCreateParameters(location="eastus")).result()
    batchai_client.experiments.begin_create(rg, ws, exp).result()


def make_cluster(batchai_client, emu, name: str = "cluster", nodes: int = 1, rg: str = RG, ws: str = WS,
                 wait: bool = True, vm_priority: str = "dedicated", **node_setup) -> models.Cluster:
    """A cluster with the quickstart share mounted at ``azurefileshare``; by default waits until steady."""
    node_setup.setdefault("mount_volumes", models.MountVolumes(azure_file_shares=[file_share_reference(emu)]))
    parameters = models.ClusterCreateParameters(
        vm_size="STANDARD_NC6", vm_priority=vm_priority,
        scale_settings=models.ScaleSettings(manual=models.ManualScaleSettings(target_node_count=nodes)),
        user_account_settings=models.UserAccountSettings(admin_user_name="demo", admin_user_password="Pa55word!x"),
        node_setup=models.NodeSetup(**node_setup))
    cluster = batchai_client.clusters.begin_create(rg, ws, name, parameters).result()
    if wait:
        cluster = wait_for(lambda: _steady(batchai_client.clusters.get(rg, ws, name)))
    return cluster


def _steady(cluster):
    return cluster if cluster.allocation_state == "steady" else None


def job_parameters(cluster_id: str, command: str = None, **kwargs) -> models.JobCreateParameters:
    """A custom-toolkit job (``command`` via /bin/sh) with stdout/err on the quickstart share."""
    if command is not None:
        kwargs["custom_toolkit_settings"] = models.CustomToolkitSettings(command_line=command)
    kwargs.setdefault("std_out_err_path_prefix", MOUNT_ROOT)
    kwargs.setdefault("node_count", 1)
    return models.JobCreateParameters(cluster=models.ResourceId(id=cluster_id), **kwargs)


def submit(batchai_client, name: str, parameters, rg: str = RG, ws: str = WS, exp: str = EXP) -> models.Job:
    return batchai_client.jobs.begin_create(rg, ws, exp, name, parameters).result()


def wait_for_state(batchai_client, name: str, states=("succeeded", "failed"), timeout: float = 15.0,
                   rg: str = RG, ws: str = WS, exp: str = EXP) -> models.Job:
    def reached():
        job = batchai_client.jobs.get(rg, ws, exp, name)
        return job if job.execution_state in states else None
    return wait_for(reached, timeout)


def output_files(batchai_client, name: str, directory_id: str = "stdouterr", rg: str = RG, ws: str = WS,
                 exp: str = EXP, **options) -> dict:
    found = batchai_client.jobs.list_output_files(
        rg, ws, exp, name, models.JobsListOutputFilesOptions(outputdirectoryid=directory_id, **options))
    return {f.name: f for f in found}


def read_output(batchai_client, name: str, file_name: str, directory_id: str = "stdouterr", **where) -> str:
    """A job's output file, downloaded through its SAS downloadUrl as any HTTP client would."""
    url = output_files(batchai_client, name, directory_id, **where)[file_name].download_url
    response = requests.get(url, timeout=10)
    response.raise_for_status()
    return response.text


def pid_alive(pid: Optional[int]) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is not alive either
        with open("/proc/{}/stat".format(pid)) as stat:
            return stat.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return False


def running_pid(batchai_client, name: str, **where) -> int:
    """The pid a job printed first on stdout (``echo $$; ...``), once it is running, as seen from here."""
    wait_for_state(batchai_client, name, ("running",), **where)
    printed = int(wait_for(lambda: read_output(batchai_client, name, "stdout.txt", **where).strip()).split()[0])
    return host_pid(printed, name)


def host_pid(pid: int, job_name: str) -> Optional[int]:
    """``pid`` as a process of the job ``job_name`` printed it (``echo $$``), as seen from here: where the
    sandbox gives each job a PID namespace, the process whose pid is that in its namespace and whose
    working directory is the job's (None if there is none: it has ended); else ``pid`` itself."""
    if not sandbox.capabilities()[1]:
        return pid
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/{}/status".format(entry)) as status:
                nspids = next((line.split()[1:] for line in status if line.startswith("NSpid:")), [])
            cwd = os.readlink("/proc/{}/cwd".format(entry))
        except OSError:  # gone meanwhile
            continue
        if len(nspids) > 1 and int(nspids[-1]) == pid and os.path.basename(cwd) == job_name:
            return int(entry)
    return None


def error_codes(job: models.Job) -> list:
    return [error.code for error in (job.execution_info.errors or [])]


# ---- fixtures -------------------------------------------------------------------------------------

@pytest.fixture
def workspace(resource_client, batchai_client):
    make_workspace(resource_client, batchai_client)


@pytest.fixture
def share(share_service):
    return make_share(share_service)


@pytest.fixture
def cluster(workspace, share, batchai_client, emulator) -> models.Cluster:
    return make_cluster(batchai_client, emulator)


# ---- the quickstart -------------------------------------------------------------------------------

def test_quickstart_sequence(resource_client, batchai_client, share, emulator):
    """Upload a script to the share, mount it on a cluster, run a cntkSettings job, read its outputs."""
    directory = share.get_directory_client("mnistcntksample")
    directory.create_directory()
    directory.get_file_client("ConvNet_MNIST.py").upload_file(SCRIPT)
    directory.get_file_client("Train-28x28_cntk_text.txt").upload_file(b"|labels 0 1 |features 0\n")
    make_workspace(resource_client, batchai_client)
    cluster = make_cluster(batchai_client, emulator, "mycluster")
    assert (cluster.current_node_count, cluster.node_state_counts.idle_node_count) == (1, 1)

    parameters = models.JobCreateParameters(
        cluster=models.ResourceId(id=cluster.id), node_count=1, std_out_err_path_prefix=MOUNT_ROOT,
        input_directories=[models.InputDirectory(id="SAMPLE", path=MOUNT_ROOT + "/mnistcntksample")],
        output_directories=[models.OutputDirectory(id="MODEL", path_prefix=MOUNT_ROOT, path_suffix="Models")],
        container_settings=models.ContainerSettings(image_source_registry=models.ImageSourceRegistry(
            image="microsoft/cntk:2.1-gpu-python3.5-cuda8.0-cudnn6.0")),
        cntk_settings=models.CNTKsettings(python_script_file_path="$AZ_BATCHAI_INPUT_SAMPLE/ConvNet_MNIST.py",
                                          command_line_args="$AZ_BATCHAI_INPUT_SAMPLE $AZ_BATCHAI_OUTPUT_MODEL"))
    job = submit(batchai_client, "myjob", parameters)
    assert job.execution_state in ("queued", "running", "succeeded")
    assert job.tool_type == "cntk"
    assert job.cntk_settings.python_script_file_path == "$AZ_BATCHAI_INPUT_SAMPLE/ConvNet_MNIST.py"  # literal kept
    segment = "{}/{}/workspaces/{}/experiments/{}/jobs/myjob/".format(emulator.subscription_id, RG, WS, EXP)
    assert job.job_output_directory_path_segment.startswith(segment)

    job = wait_for_state(batchai_client, "myjob")
    assert job.execution_state == "succeeded", job.execution_info
    assert job.execution_info.exit_code == 0 and not job.execution_info.errors
    assert job.execution_info.start_time <= job.execution_info.end_time

    stdouterr = output_files(batchai_client, "myjob")
    assert {"stdout.txt", "stderr.txt", "execution.log"} <= set(stdouterr)
    assert all(f.file_type == "file" and f.download_url for f in stdouterr.values())
    stderr = read_output(batchai_client, "myjob", "stderr.txt")
    assert "data ['ConvNet_MNIST.py', 'Train-28x28_cntk_text.txt']" in stderr
    assert "Final Results: done" in stderr
    assert stdouterr["stderr.txt"].content_length == len(stderr.encode())
    execution_log = read_output(batchai_client, "myjob", "execution.log")
    assert "microsoft/cntk:2.1-gpu-python3.5-cuda8.0-cudnn6.0" in execution_log and "exit code 0" in execution_log

    model_files = output_files(batchai_client, "myjob", "MODEL")
    assert sorted(model_files) == ["ConvNet_MNIST_0.dnn", "ConvNet_MNIST_1.dnn", "ConvNet_MNIST_2.dnn"]
    assert read_output(batchai_client, "myjob", "ConvNet_MNIST_2.dnn", "MODEL") == "model 2"
    # The same bytes are on the share, where the quickstart finds them after the cluster is gone.
    path = "{}/outputs/Models/ConvNet_MNIST_1.dnn".format(job.job_output_directory_path_segment)
    assert share.get_file_client(path).download_file().readall() == b"model 1"

    batchai_client.jobs.begin_delete(RG, WS, EXP, "myjob").result()
    batchai_client.clusters.begin_delete(RG, WS, "mycluster").result()
    resource_client.resource_groups.begin_delete(RG).result()
    assert not resource_client.resource_groups.check_existence(RG)
    assert share.get_file_client(path).download_file().readall() == b"model 1"  # outputs outlive the job


# ---- outcomes -------------------------------------------------------------------------------------

def test_failing_job_reports_exit_code(batchai_client, cluster):
    submit(batchai_client, "fails", job_parameters(cluster.id, "echo oops >&2; exit 3"))
    job = wait_for_state(batchai_client, "fails")
    assert job.execution_state == "failed"
    assert job.execution_info.exit_code == 3
    assert [(e.code, e.message) for e in job.execution_info.errors] == [
        ("JobFailed", "Job failed with non-zero exit code")]
    assert read_output(batchai_client, "fails", "stderr.txt") == "oops\n"


def test_job_preparation_runs_first_and_its_failure_fails_the_job(batchai_client, cluster):
    submit(batchai_client, "prepared", job_parameters(
        cluster.id, "cat $AZ_BATCHAI_JOB_TEMP/prepared.txt",
        job_preparation=models.JobPreparation(command_line="echo ready | tee $AZ_BATCHAI_JOB_TEMP/prepared.txt")))
    submit(batchai_client, "unprepared", job_parameters(
        cluster.id, "echo never", job_preparation=models.JobPreparation(command_line="exit 4")))
    job = wait_for_state(batchai_client, "prepared")
    assert job.execution_state == "succeeded"
    assert read_output(batchai_client, "prepared", "stdout.txt") == "ready\n"
    assert read_output(batchai_client, "prepared", "stdout-job_prep.txt") == "ready\n"
    job = wait_for_state(batchai_client, "unprepared")
    assert (job.execution_state, job.execution_info.exit_code, error_codes(job)) == ("failed", 4,
                                                                                     ["JobPreparationFailed"])
    assert "stdout.txt" not in output_files(batchai_client, "unprepared")


def test_brainscript_job_fails_with_a_clear_error(batchai_client, cluster):
    submit(batchai_client, "brainscript", job_parameters(
        cluster.id, cntk_settings=models.CNTKsettings(config_file_path="$AZ_BATCHAI_MOUNT_ROOT/x/ConvNet.cntk")))
    job = wait_for_state(batchai_client, "brainscript")
    assert job.execution_state == "failed" and job.execution_info.exit_code is None
    assert "needs the CNTK container; use pythonScriptFilePath" in job.execution_info.errors[0].message


def test_pytorch_job_runs_its_interpreter(batchai_client, cluster, share):
    share.get_file_client("train.py").upload_file(b"import sys; print(sys.executable, *sys.argv[1:])")
    settings = dict(python_script_file_path=MOUNT_ROOT + "/train.py", command_line_args="--epochs 2 '$HOME'")
    submit(batchai_client, "torch", job_parameters(cluster.id, py_torch_settings=models.PyTorchSettings(
        python_interpreter_path=sys.executable, **settings)))
    submit(batchai_client, "nopython", job_parameters(cluster.id, py_torch_settings=models.PyTorchSettings(
        python_interpreter_path="/no/such/python", **settings)))
    job = wait_for_state(batchai_client, "torch")
    assert (job.execution_state, job.tool_type) == ("succeeded", "pytorch")
    home = os.environ["HOME"]  # shlex words, each expanded: quoting does not stop expansion here
    assert read_output(batchai_client, "torch", "stdout.txt") == "{} --epochs 2 {}\n".format(sys.executable, home)
    job = wait_for_state(batchai_client, "nopython")
    assert (job.execution_state, error_codes(job)) == ("failed", ["JobLaunchFailed"])
    assert "/no/such/python" in job.execution_info.errors[0].message


def test_max_wall_clock_time_is_enforced(batchai_client, cluster):
    start = time.monotonic()
    submit(batchai_client, "slow", job_parameters(
        cluster.id, "sleep 30", constraints=models.JobBasePropertiesConstraints(
            max_wall_clock_time=datetime.timedelta(seconds=1))))  # sent as "PT1S"
    job = wait_for_state(batchai_client, "slow")
    assert time.monotonic() - start < 5
    assert job.constraints.max_wall_clock_time == datetime.timedelta(seconds=1)
    assert (job.execution_state, error_codes(job)) == ("failed", ["JobWallClockTimeExceeded"])
    assert job.execution_info.exit_code == 128 + 15  # stopped by SIGTERM


# ---- termination and deletion ---------------------------------------------------------------------

def test_terminate_queued_running_and_finished_jobs(batchai_client, cluster):
    submit(batchai_client, "done", job_parameters(cluster.id, "true"))
    assert wait_for_state(batchai_client, "done").execution_state == "succeeded"
    submit(batchai_client, "busy", job_parameters(cluster.id, "echo $$; exec sleep 60"))
    pid = running_pid(batchai_client, "busy")
    submit(batchai_client, "waiting", job_parameters(cluster.id, "true"))  # the only node is busy
    assert batchai_client.jobs.get(RG, WS, EXP, "waiting").execution_state == "queued"
    assert batchai_client.jobs.get(RG, WS, EXP, "waiting").execution_info is None

    batchai_client.jobs.begin_terminate(RG, WS, EXP, "waiting").result()
    queued = batchai_client.jobs.get(RG, WS, EXP, "waiting")
    assert (queued.execution_state, error_codes(queued)) == ("failed", ["JobTerminated"])
    assert queued.execution_info.exit_code is None
    assert queued.execution_info.start_time == queued.execution_info.end_time

    start = time.monotonic()
    batchai_client.jobs.begin_terminate(RG, WS, EXP, "busy").result()
    assert time.monotonic() - start < 2  # sleep exits on SIGTERM, well before the SIGKILL grace period
    running = batchai_client.jobs.get(RG, WS, EXP, "busy")
    # As the service recorded it: JobTerminated and no exit code (the process did not choose one).
    assert (running.execution_state, running.execution_info.exit_code) == ("failed", None)
    assert [(e.code, e.message) for e in running.execution_info.errors] == [
        ("JobTerminated", "The specified job has been terminated by the user")]
    assert not pid_alive(pid)

    batchai_client.jobs.begin_terminate(RG, WS, EXP, "done").result()
    assert batchai_client.jobs.get(RG, WS, EXP, "done").execution_state == "succeeded"


def test_delete_running_job_stops_its_process(batchai_client, cluster):
    submit(batchai_client, "doomed", job_parameters(cluster.id, "echo $$; exec sleep 60"))
    pid = running_pid(batchai_client, "doomed")
    assert pid_alive(pid)
    batchai_client.jobs.begin_delete(RG, WS, EXP, "doomed").result()
    assert not pid_alive(pid)
    with pytest.raises(ResourceNotFoundError) as caught:
        batchai_client.jobs.get(RG, WS, EXP, "doomed")
    assert caught.value.error.code == "JobNotFound"
    assert caught.value.error.message == "The specified job doomed is not found"
    # Its node is free again.
    wait_for(lambda: batchai_client.clusters.get(RG, WS, "cluster").node_state_counts.idle_node_count == 1)


def test_terminate_escalates_to_sigkill(batchai_client, cluster, monkeypatch):
    from emulator.runner import processes
    monkeypatch.setattr(processes, "GRACE_SECONDS", 0.3)
    ignores_sigterm = "trap '' TERM; echo $$; while :; do sleep 0.05; done"
    submit(batchai_client, "stubborn", job_parameters(cluster.id, ignores_sigterm))
    pid = running_pid(batchai_client, "stubborn")
    batchai_client.jobs.begin_terminate(RG, WS, EXP, "stubborn").result()
    job = batchai_client.jobs.get(RG, WS, EXP, "stubborn")
    assert (job.execution_state, error_codes(job), job.execution_info.exit_code) == ("failed", ["JobTerminated"],
                                                                                     None)
    assert not pid_alive(pid)


def test_deleting_an_experiment_or_a_cluster_stops_their_jobs(batchai_client, workspace, share, emulator):
    cluster = make_cluster(batchai_client, emulator, nodes=2)
    batchai_client.experiments.begin_create(RG, WS, "other").result()
    submit(batchai_client, "kept", job_parameters(cluster.id, "echo $$; exec sleep 60"))
    submit(batchai_client, "dropped", job_parameters(cluster.id, "echo $$; exec sleep 60"), exp="other")
    kept, dropped = running_pid(batchai_client, "kept"), running_pid(batchai_client, "dropped", exp="other")

    batchai_client.experiments.begin_delete(RG, WS, "other").result()
    assert not pid_alive(dropped) and pid_alive(kept)
    assert batchai_client.jobs.get(RG, WS, EXP, "kept").execution_state == "running"

    batchai_client.clusters.begin_delete(RG, WS, "cluster").result()
    assert not pid_alive(kept)
    job = batchai_client.jobs.get(RG, WS, EXP, "kept")  # the job outlives its cluster, failed
    assert (job.execution_state, error_codes(job), job.execution_info.exit_code) == ("failed", ["ClusterDeleted"],
                                                                                     143)


# ---- scheduling -----------------------------------------------------------------------------------

def test_jobs_on_a_one_node_cluster_run_one_after_another(batchai_client, cluster):
    submit(batchai_client, "first", job_parameters(cluster.id, "sleep 0.4"))
    submit(batchai_client, "second", job_parameters(cluster.id, "sleep 0.1"))
    wait_for_state(batchai_client, "first", ("running",))
    assert batchai_client.jobs.get(RG, WS, EXP, "second").execution_state == "queued"
    first, second = wait_for_state(batchai_client, "first"), wait_for_state(batchai_client, "second")
    assert first.execution_state == second.execution_state == "succeeded"
    assert second.execution_info.start_time >= first.execution_info.end_time


def test_higher_priority_jobs_run_first(batchai_client, cluster):
    submit(batchai_client, "blocker", job_parameters(cluster.id, "sleep 0.3"))
    wait_for_state(batchai_client, "blocker", ("running",))
    submit(batchai_client, "normal", job_parameters(cluster.id, "true"))
    submit(batchai_client, "urgent", job_parameters(cluster.id, "true", scheduling_priority="high"))
    normal, urgent = wait_for_state(batchai_client, "normal"), wait_for_state(batchai_client, "urgent")
    assert urgent.execution_info.start_time < normal.execution_info.start_time


def test_jobs_wait_for_nodes_and_use_several(batchai_client, workspace, share, emulator):
    idle = make_cluster(batchai_client, emulator, "empty", nodes=0)
    submit(batchai_client, "starved", job_parameters(idle.id, "true"))
    time.sleep(0.3)
    assert batchai_client.jobs.get(RG, WS, EXP, "starved").execution_state == "queued"
    batchai_client.clusters.update(RG, WS, "empty", models.ClusterUpdateParameters(
        scale_settings=models.ScaleSettings(manual=models.ManualScaleSettings(target_node_count=2))))
    assert wait_for_state(batchai_client, "starved").execution_state == "succeeded"

    submit(batchai_client, "wide", job_parameters(idle.id, "echo $$; cat $AZ_BATCHAI_MPI_HOST_FILE; sleep 30",
                                                  node_count=2))
    running_pid(batchai_client, "wide")
    counts = batchai_client.clusters.get(RG, WS, "empty").node_state_counts
    assert (counts.running_node_count, counts.idle_node_count) == (2, 0)
    logins = list(batchai_client.jobs.list_remote_login_information(RG, WS, EXP, "wide"))
    assert len(logins) == 2 and {login.ip_address for login in logins} == {"127.0.0.1"}
    assert "10.0.0.4 slots=1\n10.0.0.5 slots=1\n" in read_output(batchai_client, "wide", "stdout.txt")
    batchai_client.jobs.begin_terminate(RG, WS, EXP, "wide").result()


# ---- the job's environment ------------------------------------------------------------------------

def test_environment_variables_paths_and_secrets(batchai_client, cluster, emulator, share, monkeypatch):
    # The submitter's environment is not the node's: its secrets never reach the job.
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "submitter-secret")
    monkeypatch.setenv("EMULATOR_TOKEN", "emulator-secret")
    share.get_directory_client("inputs").create_directory()
    command = ("echo $$; env | sort; echo ARGS $AZ_BATCHAI_INPUT_DATA; "
               "touch $AZ_BATCHAI_OUTPUT_RESULTS/made-by-job; ls -d $AZ_BATCHAI_INPUT_DATA")
    submit(batchai_client, "envjob", job_parameters(
        cluster.id, command,
        input_directories=[models.InputDirectory(id="DATA", path=MOUNT_ROOT + "/inputs")],
        output_directories=[models.OutputDirectory(id="RESULTS", path_prefix=MOUNT_ROOT)],
        environment_variables=[models.EnvironmentVariable(name="GREETING", value="hello $AZ_BATCHAI_NUM_GPUS")],
        secrets=[models.EnvironmentVariableWithSecretValue(name="TOKEN", value="s3cr3t-value")],
        job_preparation=models.JobPreparation(command_line="echo $GREETING $TOKEN")))
    job = wait_for_state(batchai_client, "envjob")
    assert job.execution_state == "succeeded", job.execution_info
    env = dict(line.split("=", 1) for line in read_output(batchai_client, "envjob", "stdout.txt").splitlines()
               if "=" in line)
    node_mounts = env["AZ_BATCHAI_MOUNT_ROOT"]
    assert node_mounts.endswith("/mounts") and os.path.islink(node_mounts + "/" + MOUNT)
    assert env["AZ_BATCHAI_INPUT_DATA"] == node_mounts + "/" + MOUNT + "/inputs"
    segment = job.job_output_directory_path_segment
    assert env["AZ_BATCHAI_OUTPUT_RESULTS"] == "{}/{}/{}/outputs".format(node_mounts, MOUNT, segment)
    assert env["AZ_BATCHAI_STDOUTERR_DIR"] == "{}/{}/{}/stdouterr".format(node_mounts, MOUNT, segment)
    for name in ("AZ_BATCHAI_JOB_MOUNT_ROOT", "AZ_BATCHAI_JOB_TEMP", "AZ_BATCHAI_JOB_TEMP_DIR",
                 "AZ_BATCHAI_SHARED_JOB_TEMP", "AZ_BATCHAI_MPI_HOST_FILE"):
        assert env[name].startswith(node_mounts[:-len("/mounts")]), name
    assert (env["AZ_BATCHAI_NUM_GPUS"], env["AZ_BATCHAI_TASK_INDEX"]) == ("0", "0")
    assert env["GREETING"] == "hello 0" and env["TOKEN"] == "s3cr3t-value"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert not [name for name in env if name.startswith(("EMULATOR_", "AZURE_"))]
    assert "PATH" in env and "HOME" in env
    assert read_output(batchai_client, "envjob", "stdout-job_prep.txt") == "hello 0 s3cr3t-value\n"
    assert list(output_files(batchai_client, "envjob", "RESULTS")) == ["made-by-job"]
    # The secret went to the job, never back to a client or into the execution log.
    assert [(s.name, s.value) for s in job.secrets] == [("TOKEN", None)]
    assert "s3cr3t-value" not in read_output(batchai_client, "envjob", "execution.log")


def test_job_level_mount_volumes(batchai_client, cluster, emulator, share_service):
    make_share(share_service, "jobshare")
    volumes = models.MountVolumes(azure_file_shares=[file_share_reference(emulator, "jobshare", "jobfiles")])
    submit(batchai_client, "mounted", job_parameters(
        cluster.id, "echo on-the-job-share > $AZ_BATCHAI_JOB_MOUNT_ROOT/jobfiles/note.txt; echo logged",
        mount_volumes=volumes, std_out_err_path_prefix="$AZ_BATCHAI_JOB_MOUNT_ROOT/jobfiles"))
    job = wait_for_state(batchai_client, "mounted")
    assert job.execution_state == "succeeded", job.execution_info
    assert job.mount_volumes.azure_file_shares[0].credentials.account_key is None
    assert read_output(batchai_client, "mounted", "stdout.txt") == "logged\n"
    note = share_service.get_share_client("jobshare").get_file_client("note.txt").download_file().readall()
    assert note == b"on-the-job-share\n"

    volumes = models.MountVolumes(azure_file_shares=[file_share_reference(emulator, "jobshare", "jobfiles",
                                                                          key="d3Jvbmcga2V5")])
    submit(batchai_client, "badkey", job_parameters(cluster.id, "true", mount_volumes=volumes))
    job = wait_for_state(batchai_client, "badkey")
    assert (job.execution_state, error_codes(job)) == ("failed", ["AZFMountError"])
    assert "Permission denied" in job.execution_info.errors[0].details[0].value


# ---- listOutputFiles ------------------------------------------------------------------------------

def test_list_output_files_paging_directories_and_errors(batchai_client, cluster):
    command = "cd $AZ_BATCHAI_OUTPUT_OUT && mkdir sub && touch a b c d sub/inner && echo $AZ_BATCHAI_OUTPUT_LOCAL"
    submit(batchai_client, "lister", job_parameters(
        cluster.id, command, output_directories=[
            models.OutputDirectory(id="OUT", path_prefix=MOUNT_ROOT, path_suffix="deep/er"),
            models.OutputDirectory(id="LOCAL", path_prefix="$AZ_BATCHAI_JOB_TEMP")]))
    assert wait_for_state(batchai_client, "lister").execution_state == "succeeded"

    pages = batchai_client.jobs.list_output_files(
        RG, WS, EXP, "lister", models.JobsListOutputFilesOptions(outputdirectoryid="OUT", max_results=2)).by_page()
    names = [[(f.name, f.file_type) for f in page] for page in pages]
    assert names == [[("a", "file"), ("b", "file")], [("c", "file"), ("d", "file")], [("sub", "directory")]]
    inner = output_files(batchai_client, "lister", "OUT", directory="sub")
    assert list(inner) == ["inner"] and inner["inner"].content_length == 0 and inner["inner"].last_modified

    def refused(directory_id: str, **options) -> HttpResponseError:
        with pytest.raises(HttpResponseError) as caught:
            output_files(batchai_client, "lister", directory_id, **options)
        assert caught.value.status_code == 400
        return caught.value

    assert "is not present on a mount root" in refused("LOCAL").message
    assert "has no output directory with id 'NOPE'" in refused("NOPE").message
    assert "relative path inside the output directory" in refused("OUT", directory="../../..").message
    assert "linkexpiryinminutes" in refused("OUT", linkexpiryinminutes=1).message
    assert "maxresults" in refused("OUT", max_results=1001).message


def test_follow_stderr_while_the_job_writes_it(batchai_client, cluster):
    """Tail stderr.txt with Range requests while the job runs, as BatchAI's utilities/job.py did."""
    script = "for i in $(seq 1 15); do echo line $i >&2; sleep 0.05; done"
    submit(batchai_client, "talker", job_parameters(cluster.id, script))
    wait_for_state(batchai_client, "talker", ("running", "succeeded"))
    url = wait_for(lambda: output_files(batchai_client, "talker").get("stderr.txt")).download_url
    followed, reads_while_running = b"", 0
    while True:
        state = batchai_client.jobs.get(RG, WS, EXP, "talker").execution_state
        response = requests.get(url, headers={"Range": "bytes={}-".format(len(followed))}, timeout=10)
        if response.status_code == 206:
            followed += response.content
            reads_while_running += state == "running"
        else:
            assert response.status_code == 416  # nothing new yet
        if state in ("succeeded", "failed"):
            break
        time.sleep(0.03)
    final = requests.get(url, timeout=10).content
    assert followed == final == "".join("line {}\n".format(i) for i in range(1, 16)).encode()
    assert reads_while_running >= 2


def test_job_json_has_the_fields_the_sdk_reads(batchai_client, cluster, emulator):
    submit(batchai_client, "shape", job_parameters(cluster.id, "true"))
    job = wait_for_state(batchai_client, "shape")
    raw = requests.get("{}{}?api-version=2018-05-01".format(emulator.arm_url, job.id), verify=emulator.ca_cert,
                       headers={"Authorization": "Bearer " + emulator.token}, timeout=10).json()
    assert raw["type"] == "Microsoft.BatchAI/workspaces/experiments/jobs"
    props = raw["properties"]
    assert props["experimentName"] == EXP and props["toolType"] == "custom" and props["nodeCount"] == 1
    assert props["schedulingPriority"] == "normal" and props["constraints"] == {"maxWallClockTime": "P7D"}
    assert job.constraints.max_wall_clock_time == datetime.timedelta(days=7)
    assert props["provisioningState"] == "succeeded" and props["executionState"] == "succeeded"
    assert set(props["executionInfo"]) == {"startTime", "endTime", "exitCode"}  # no "errors": null, as recorded
    assert json.dumps(props).count("stdOutErrPathPrefix") == 1
