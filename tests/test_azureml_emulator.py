"""The emulator's Azure ML service through the real azure-ai-ml 1.35.2 (and plain HTTP where the SDK cannot
show a refusal): workspaces, datastores, assets, computes, jobs, the data plane, and what they refuse."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import requests


from azure.ai.ml import MLClient, command
from azure.ai.ml.constants import AssetTypes
from azure.ai.ml.entities import AmlCompute, Data, Workspace
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.resource.resources import ResourceManagementClient

from batchai_quickstart.azureml_clients import emulator_cloud, emulator_cloud_name
from batchai_quickstart.localhost_names import resolve_localhost_names

RG, WS = "rg", "ws"
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def ml(emulator, monkeypatch):
    resolve_localhost_names()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", emulator.ca_cert)
    monkeypatch.setenv("AZUREML_CURRENT_CLOUD", "AzureCloud")  # MLClient sets it; restored afterwards
    resources = ResourceManagementClient(emulator.credential(), emulator.subscription_id, base_url=emulator.arm_url,
                                         connection_verify=emulator.ca_cert, polling_interval=0.05)
    resources.resource_groups.create_or_update(RG, {"location": "eastus"})
    client = MLClient(emulator.credential(), emulator.subscription_id, RG, WS,
                      cloud=emulator_cloud_name(emulator_cloud(emulator), "AzureMLEmulatorTest"),
                      cloud_metadata=emulator_cloud(emulator), enable_telemetry=False, show_progress=False,
                      connection_verify=emulator.ca_cert, polling_interval=0.05)
    client.workspaces.begin_create(Workspace(name=WS, location="eastus")).result()
    return client


def ws_url(emulator, path=""):
    return "{}/subscriptions/{}/resourceGroups/{}/providers/Microsoft.MachineLearningServices/workspaces/{}{}".format(
        emulator.arm_url, emulator.subscription_id, RG, WS, path)


def auth(emulator):
    return {"Authorization": "Bearer " + emulator.token}


def wait_for(predicate, timeout=60):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_workspace_has_what_the_sdk_reads(ml, emulator):
    workspace = ml.workspaces.get(WS)
    assert workspace.location == "eastus"
    assert workspace.discovery_url == emulator.arm_url + "/azureml-api/discovery"
    assert workspace.mlflow_tracking_uri.startswith("azureml://127.0.0.1:")
    default = ml.datastores.get_default()
    assert default.name == "workspaceblobstore" and default.container_name.startswith("azureml-blobstore-")
    assert ml.datastores.get("workspaceartifactstore").container_name == "azureml"


def test_missing_workspace_is_404(ml):
    with pytest.raises(ResourceNotFoundError):
        ml.workspaces.get("nope")


def test_discovery_needs_no_token_but_run_history_does(ml, emulator):
    discovery = requests.get(emulator.arm_url + "/azureml-api/discovery", verify=emulator.ca_cert, timeout=10)
    assert discovery.status_code == 200 and discovery.json()["api"] == emulator.arm_url + "/azureml-api"
    details = "{}/azureml-api/history/v1.0/subscriptions/{}/resourceGroups/{}/providers/" \
              "Microsoft.MachineLearningServices/workspaces/{}/runs/x/details".format(
                  emulator.arm_url, emulator.subscription_id, RG, WS)
    refused = requests.get(details, verify=emulator.ca_cert, timeout=10)
    assert refused.status_code == 401
    missing = requests.get(details, headers=auth(emulator), verify=emulator.ca_cert, timeout=10)
    assert missing.status_code == 404


def test_datastore_secrets_are_the_account_key_and_need_a_token(ml, emulator):
    url = ws_url(emulator, "/datastores/workspaceblobstore/listSecrets?api-version=2024-10-01")
    assert requests.post(url, json={}, verify=emulator.ca_cert, timeout=10).status_code == 401
    answer = requests.post(url, json={}, headers=auth(emulator), verify=emulator.ca_cert, timeout=10)
    assert answer.json() == {"secretsType": "AccountKey", "key": emulator.account_key}


def test_data_asset_upload_lands_in_the_default_container(ml, emulator, tmp_path):
    folder = tmp_path / "digits"
    folder.mkdir()
    (folder / "a.txt").write_text("one")
    data = ml.data.create_or_update(Data(name="digits", version="1", type=AssetTypes.URI_FOLDER, path=str(folder)))
    assert data.path.startswith("azureml://datastores/workspaceblobstore/paths/LocalUpload/")
    assert ml.data.get("digits", version="1").path == data.path
    blob = emulator.services["blob"].backend
    container = ml.datastores.get_default().container_name
    names = [item.name for item in blob.list_blobs(container, "LocalUpload/", "", "", None)[0]]
    assert data.path.endswith("/")  # a folder, as the service answers it
    assert names == [data.path.split("/paths/")[1] + "a.txt"]
    # A version points at one place for good.
    other = tmp_path / "other"
    other.mkdir()
    (other / "b.txt").write_text("two")
    with pytest.raises(Exception):
        ml.data.create_or_update(Data(name="digits", version="1", type=AssetTypes.URI_FOLDER, path=str(other)))


def test_compute_is_created_and_deleted_with_its_scale_settings(ml, emulator):
    created = ml.compute.begin_create_or_update(AmlCompute(name="gpu", size="Standard_NC4as_T4_v3", min_instances=0,
                                                           max_instances=3, idle_time_before_scale_down=300)).result()
    assert (created.size, created.min_instances, created.max_instances) == ("Standard_NC4as_T4_v3", 0, 3)
    assert created.idle_time_before_scale_down == 300
    assert [c.name for c in ml.compute.list()] == ["gpu"]
    ml.compute.begin_delete("gpu").result()
    with pytest.raises(ResourceNotFoundError):
        ml.compute.get("gpu")


def test_compute_with_min_above_max_is_refused(ml, emulator):
    body = {"location": "eastus", "properties": {"computeType": "AmlCompute", "properties": {
        "vmSize": "Standard_NC4as_T4_v3", "scaleSettings": {"minNodeCount": 3, "maxNodeCount": 1}}}}
    answer = requests.put(ws_url(emulator, "/computes/bad?api-version=2023-08-01-preview"), json=body,
                          headers=auth(emulator), verify=emulator.ca_cert, timeout=10)
    assert answer.status_code == 400 and "minNodeCount" in answer.json()["error"]["message"]


def _job(tmp_path, script, compute="cpu", **kwargs):
    code = tmp_path / "code"
    code.mkdir(exist_ok=True)
    (code / "job.py").write_text(script)
    return command(code=str(code), command="python job.py", environment="AzureML-acpt-pytorch-2.8-cuda12.6@latest",
                   compute=compute, experiment_name="tests", **kwargs)


def test_a_job_sees_azureml_variables_and_its_outputs_are_kept(ml, emulator, tmp_path):
    ml.compute.begin_create_or_update(AmlCompute(name="cpu", size="Standard_D2_v3", max_instances=1)).result()
    script = ("import os\nos.makedirs('outputs', exist_ok=True)\n"
              "open('outputs/env.txt', 'w').write(' '.join(os.environ[k] for k in ('AZUREML_RUN_ID', "
              "'AZUREML_ARM_WORKSPACE_NAME', 'AZUREML_ARM_PROJECT_NAME')))\n"
              "print('secret' in os.environ.get('EMULATOR_TOKEN', ''), 'AZURE_CLIENT_SECRET' in os.environ)\n")
    job = ml.jobs.create_or_update(_job(tmp_path, script))
    wait_for(lambda: ml.jobs.get(job.name).status == "Completed")
    ml.jobs.download(job.name, download_path=str(tmp_path / "dl"))
    assert (tmp_path / "dl" / "artifacts" / "outputs" / "env.txt").read_text() == "{} {} tests".format(job.name, WS)
    assert (tmp_path / "dl" / "artifacts" / "user_logs" / "std_log.txt").read_text() == "False False\n"


def test_pytorch_distribution_sets_the_rendezvous_variables(ml, emulator, tmp_path):
    from azure.ai.ml import PyTorchDistribution

    ml.compute.begin_create_or_update(AmlCompute(name="cpu", size="Standard_D2_v3", max_instances=2)).result()
    script = "import os\nprint(*(os.environ[k] for k in ('MASTER_ADDR', 'WORLD_SIZE', 'NODE_RANK', 'RANK', " \
             "'LOCAL_RANK')), os.environ['MASTER_PORT'].isdigit())\n"
    job = ml.jobs.create_or_update(_job(tmp_path, script, instance_count=2,
                                        distribution=PyTorchDistribution(process_count_per_instance=1)))
    wait_for(lambda: ml.jobs.get(job.name).status == "Completed")
    ml.jobs.download(job.name, download_path=str(tmp_path / "dl"))
    logs = tmp_path / "dl" / "artifacts" / "user_logs"
    assert (logs / "std_log_process_0.txt").read_text() == "127.0.0.1 2 0 0 0 True\n"
    assert (logs / "std_log_process_1.txt").read_text() == "127.0.0.1 2 1 1 0 True\n"


def test_a_job_asking_for_more_nodes_than_the_compute_has_fails(ml, emulator, tmp_path):
    ml.compute.begin_create_or_update(AmlCompute(name="cpu", size="Standard_D2_v3", max_instances=1)).result()
    job = ml.jobs.create_or_update(_job(tmp_path, "print('never')\n", instance_count=3))
    wait_for(lambda: ml.jobs.get(job.name).status == "Failed")
    details = emulator.services["azureml"].backend.run_details(RG, WS, job.name)
    assert "requests 3 nodes" in details["error"]["error"]["message"]


def test_cancel_stops_a_running_job(ml, emulator, tmp_path):
    ml.compute.begin_create_or_update(AmlCompute(name="cpu", size="Standard_D2_v3", max_instances=1,
                                                 idle_time_before_scale_down=1)).result()
    job = ml.jobs.create_or_update(_job(tmp_path, "import time\nprint('started', flush=True)\ntime.sleep(300)\n"))
    wait_for(lambda: ml.jobs.get(job.name).status == "Running")
    # The cluster scaled from 0 to the one node the job asked for.
    nodes = emulator.services["azureml"].backend.get_compute(RG, WS, "cpu")["properties"]["properties"]
    assert (nodes["currentNodeCount"], nodes["nodeStateCounts"]["runningNodeCount"]) == (1, 1)
    ml.jobs.begin_cancel(job.name).result()
    assert ml.jobs.get(job.name).status == "Canceled"
    # ... and back to 0 once it has been idle for its idle time.
    backend = emulator.services["azureml"].backend
    wait_for(lambda: backend.get_compute(RG, WS, "cpu")["properties"]["properties"]["currentNodeCount"] == 0)


def test_a_job_on_a_missing_compute_is_refused(ml, emulator, tmp_path):
    with pytest.raises(HttpResponseError) as info:
        ml.jobs.create_or_update(_job(tmp_path, "print(1)\n", compute="nowhere"))
    assert "nowhere" in str(info.value)


def test_deleting_the_resource_group_stops_jobs_and_removes_the_workspace(ml, emulator, tmp_path):
    ml.compute.begin_create_or_update(AmlCompute(name="cpu", size="Standard_D2_v3", max_instances=1)).result()
    job = ml.jobs.create_or_update(_job(tmp_path, "import time\ntime.sleep(300)\n"))
    wait_for(lambda: ml.jobs.get(job.name).status == "Running")
    container = ml.datastores.get_default().container_name
    resources = ResourceManagementClient(emulator.credential(), emulator.subscription_id, base_url=emulator.arm_url,
                                         connection_verify=emulator.ca_cert, polling_interval=0.05)
    resources.resource_groups.begin_delete(RG).result()
    assert emulator.services["azureml"].backend.list_workspaces() == []
    with pytest.raises(LookupError):
        emulator.services["blob"].backend.get_container(container)
    jobs_dir = str(Path(emulator.data_dir) / "azureml" / "jobs")
    running = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.readlink("/proc/{}/cwd".format(pid)).startswith(jobs_dir):
                running.append(pid)
        except OSError:
            continue
    assert running == []


def test_a_job_running_when_the_emulator_stops_is_failed_after_a_restart(ml, emulator, tmp_path):
    import emulator as emulator_package

    ml.compute.begin_create_or_update(AmlCompute(name="cpu", size="Standard_D2_v3", max_instances=1)).result()
    job = ml.jobs.create_or_update(_job(tmp_path, "import time\nprint('started', flush=True)\ntime.sleep(300)\n"))
    wait_for(lambda: ml.jobs.get(job.name).status == "Running")
    emulator.stop()
    with emulator_package.start(emulator.data_dir) as again:
        backend = again.services["azureml"].backend
        assert backend.get_job(RG, WS, job.name)["properties"]["status"] == "Failed"
        assert backend.run_details(RG, WS, job.name)["error"]["error"]["code"] == "SystemError"
        assert backend.get_compute(RG, WS, "cpu")["properties"]["properties"]["currentNodeCount"] == 0
