"""Issue 10, Batch AI: request validation, secrets in launch errors, output listings that survive
what jobs really write, and processes a job leaves behind."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import types

import pytest
import requests
from azure.core.exceptions import HttpResponseError
from azure.mgmt.batchai import models

import emulator as emulator_package
from test_jobs import (EXP, MOUNT_ROOT, RG, WS, error_codes, job_parameters, make_cluster, make_share,
                       host_pid, make_workspace, output_files, pid_alive, running_pid, sdk_clients, submit, wait_for,
                       wait_for_state)


@pytest.fixture
def cluster(resource_client, batchai_client, share_service, emulator) -> models.Cluster:
    make_share(share_service)
    make_workspace(resource_client, batchai_client)
    return make_cluster(batchai_client, emulator)


def job_url(emu, name: str) -> str:
    return "{}/subscriptions/{}/resourceGroups/{}/providers/Microsoft.BatchAI/workspaces/{}/experiments/{}/jobs/{}" \
           "?api-version=2018-05-01".format(emu.arm_url, emu.subscription_id, RG, WS, EXP, name)


def put_job(emu, name: str, body) -> requests.Response:
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return requests.put(job_url(emu, name), data=data, timeout=60, verify=emu.ca_cert,
                        headers={"Authorization": "Bearer " + emu.token, "Content-Type": "application/json"})


def job_body(cluster_id: str, **properties) -> dict:
    props = {"cluster": {"id": cluster_id}, "nodeCount": 1, "stdOutErrPathPrefix": MOUNT_ROOT,
             "customToolkitSettings": {"commandLine": "echo hi"}}
    props.update(properties)
    return {"properties": props}


def assert_refused(response: requests.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code, response.text


# ---- validation --------------------------------------------------------------------------------------

def test_bad_job_requests_get_400_or_413_never_500(emulator, cluster, batchai_client):
    refused = {
        "job%0A": job_body(cluster.id),
        "wallclock": job_body(cluster.id, constraints={"maxWallClockTime": 5}),
        "wallclock2": job_body(cluster.id, constraints={"maxWallClockTime": "P99999999999D"}),
        "scripttype": job_body(cluster.id, customToolkitSettings=None,
                               pyTorchSettings={"pythonScriptFilePath": 5}),
        "argstype": job_body(cluster.id, customToolkitSettings=None,
                             pyTorchSettings={"pythonScriptFilePath": "x.py", "commandLineArgs": ["a"]}),
        "cmdtype": job_body(cluster.id, customToolkitSettings={"commandLine": {"x": 1}}),
        "suffix1": job_body(cluster.id, outputDirectories=[{"id": "OUT", "pathPrefix": MOUNT_ROOT,
                                                            "pathSuffix": "../.."}]),
        "suffix2": job_body(cluster.id, outputDirectories=[{"id": "OUT", "pathPrefix": MOUNT_ROOT,
                                                            "pathSuffix": "sub/.."}]),
        "suffix3": job_body(cluster.id, outputDirectories=[{"id": "OUT", "pathPrefix": MOUNT_ROOT,
                                                            "pathSuffix": "$UP/x"}],
                            environmentVariables=[{"name": "UP", "value": "../../.."}]),
        "envname": job_body(cluster.id, environmentVariables=[{"name": "A\n", "value": "x"}]),
    }
    for name, body in refused.items():
        response = put_job(emulator, name, body)
        assert response.status_code == 400, (name, response.status_code, response.text)
        assert response.json()["error"]["code"] in ("InvalidParameter", "MissingRequiredProperty"), name
    deep = '{"properties": ' + "[" * 100000 + "]" * 100000 + "}"
    assert_refused(put_job(emulator, "deep", deep), 400, "InvalidRequestContent")
    deep_objects = '{"properties": ' + '{"a": ' * 200 + "1" + "}" * 200 + "}"
    assert_refused(put_job(emulator, "deep2", deep_objects), 400, "InvalidRequestContent")
    huge = job_body(cluster.id, environmentVariables=[{"name": "BIG", "value": "x" * (5 * 1024 * 1024)}])
    assert_refused(put_job(emulator, "huge", huge), 413, "RequestContentTooLarge")
    assert [job.name for job in batchai_client.jobs.list_by_experiment(RG, WS, EXP)] == []
    for bad_name in ("ws\n", "ws%0A"):
        response = requests.put("{}/subscriptions/{}/resourceGroups/{}/providers/Microsoft.BatchAI/workspaces/{}"
                                "?api-version=2018-05-01".format(emulator.arm_url, emulator.subscription_id, RG,
                                                                 bad_name.replace("\n", "%0A")),
                                json={"location": "eastus"}, timeout=30, verify=emulator.ca_cert,
                                headers={"Authorization": "Bearer " + emulator.token})
        assert response.status_code == 400, bad_name
    response = requests.put("{}/subscriptions/{}/resourcegroups/rg2%0A?api-version=2021-04-01".format(
        emulator.arm_url, emulator.subscription_id), json={"location": "eastus"}, timeout=30,
        verify=emulator.ca_cert, headers={"Authorization": "Bearer " + emulator.token})
    assert response.status_code == 400
    # a good job still goes through
    assert put_job(emulator, "good", job_body(cluster.id)).status_code in (200, 201, 202)


# ---- secrets ---------------------------------------------------------------------------------------------

def test_a_secret_in_a_failed_launch_is_redacted(emulator, cluster, batchai_client):
    secret = "s3cr3t-launch-value"
    parameters = job_parameters(
        cluster.id, secrets=[models.EnvironmentVariableWithSecretValue(name="TOKEN", value=secret)],
        py_torch_settings=models.PyTorchSettings(python_script_file_path="train.py",
                                                 python_interpreter_path="/nonexistent/$TOKEN/python"))
    submit(batchai_client, "leaky", parameters)
    job = wait_for_state(batchai_client, "leaky")
    assert error_codes(job) == ["JobLaunchFailed"]
    message = json.dumps([e.as_dict() for e in job.execution_info.errors])
    assert secret not in message and "***" in message
    url = output_files(batchai_client, "leaky")["execution.log"].download_url
    log = requests.get(url, timeout=10).text
    assert "could not start" in log and secret not in log


# ---- output listings ----------------------------------------------------------------------------------------

WRITER = r"""
out=$AZ_BATCHAI_OUTPUT_MODEL
echo model > "$out/model.pt"
ln -s model.pt "$out/latest.pt"
ln -s gone.pt "$out/dangling.pt"
ln -s /etc/hostname "$out/outside"
ln -s /etc "$out/etc"
printf x > "$out/bad$(printf '\377').pt"
mkdir "$out/sub"
"""


def test_list_output_files_survives_links_and_names_jobs_write(emulator, cluster, batchai_client):
    parameters = job_parameters(cluster.id, WRITER, output_directories=[
        models.OutputDirectory(id="MODEL", path_prefix=MOUNT_ROOT, path_suffix="Models")])
    submit(batchai_client, "writer", parameters)
    assert wait_for_state(batchai_client, "writer").execution_state == "succeeded"
    listed = output_files(batchai_client, "writer", "MODEL")
    assert sorted(listed) == ["latest.pt", "model.pt", "sub"]
    assert listed["latest.pt"].content_length == len("model\n")
    assert requests.get(listed["latest.pt"].download_url, timeout=10).text == "model\n"
    assert listed["sub"].file_type == "directory"
    log = requests.get(output_files(batchai_client, "writer")["execution.log"].download_url, timeout=10).text
    assert "not UTF-8" in log and "bad\\xff.pt" in log
    assert sorted(output_files(batchai_client, "writer", "MODEL", directory="sub/..")) == sorted(listed)
    for directory in ("sub/../..", "../..", "etc"):
        with pytest.raises(HttpResponseError) as caught:
            output_files(batchai_client, "writer", "MODEL", directory=directory)
        assert caught.value.status_code == 400, directory


# ---- processes ---------------------------------------------------------------------------------------------

def share_file(emu, name: str) -> str:
    return str(emu.data_dir / "files" / "batchaiquickstart" / name)


def read_pid(path: str) -> int:
    return int(wait_for(lambda: os.path.exists(path) and open(path).read().strip()))


def test_processes_a_job_leaves_behind_are_killed_when_it_ends(emulator, cluster, batchai_client):
    command = ("setsid sh -c 'echo $$ > $AZ_BATCHAI_MOUNT_ROOT/azurefileshare/escaped.pid; exec sleep 300' & "
               "nohup sh -c 'sleep 300' >/dev/null 2>&1 & "
               "while [ ! -s $AZ_BATCHAI_MOUNT_ROOT/azurefileshare/escaped.pid ]; do sleep 0.05; done; exit 0")
    submit(batchai_client, "daemon", job_parameters(cluster.id, command))
    assert wait_for_state(batchai_client, "daemon", timeout=30).execution_state == "succeeded"
    pid = host_pid(read_pid(share_file(emulator, "escaped.pid")), "daemon")
    try:
        wait_for(lambda: not pid_alive(pid), timeout=10)
    finally:
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_after_a_restart_the_children_of_an_exited_leader_are_killed(tmp_path):
    data_dir = tmp_path / "data"
    server = subprocess.Popen([sys.executable, "-m", "emulator", "--data-dir", str(data_dir)],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    leader = child = None
    try:
        info = types.SimpleNamespace(**json.loads(server.stdout.readline()))
        batchai_client, resource_client, share_service = sdk_clients(info)
        make_share(share_service)
        make_workspace(resource_client, batchai_client)
        cluster = make_cluster(batchai_client, info)
        command = ("setsid sh -c 'echo $$ > $AZ_BATCHAI_MOUNT_ROOT/azurefileshare/child.pid; exec sleep 300' & "
                   "echo $$; exec sleep 300")
        submit(batchai_client, "orphaned", job_parameters(cluster.id, command))
        leader = running_pid(batchai_client, "orphaned")
        child = host_pid(read_pid(str(data_dir / "files" / "batchaiquickstart" / "child.pid")), "orphaned")
        server.kill()
        server.wait(10)
        os.kill(leader, signal.SIGKILL)  # the leader ends while the emulator is down
        wait_for(lambda: not pid_alive(leader))
        # The job's sandbox process (a subreaper, or the init of the job's PID namespace) ends the child with the
        # leader, emulator or not; recovery by marker alone is test_hardening_processes' concern.
        wait_for(lambda: not pid_alive(child), timeout=10)

        emu = emulator_package.start(data_dir)
        try:
            batchai_client, _, _ = sdk_clients(emu)
            assert error_codes(batchai_client.jobs.get(RG, WS, EXP, "orphaned")) == ["JobInterrupted"]
            wait_for(lambda: not pid_alive(child), timeout=10)
        finally:
            emu.stop()
    finally:
        if server.poll() is None:
            server.kill()
        for pid in (leader, child):
            if pid and pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
