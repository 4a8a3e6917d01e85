"""Issue 15: every request value that becomes a path, in Batch AI and Azure ML, tried with '..', '%2E%2E',
absolute paths and links through real HTTP (the real SDK where it can send the value, else ``requests``
with the emulator's token and CA). Regression tests of findings 1 (input and output names with '../'),
2 (a job named '..') and 8 (output uploads follow an ``outputs`` link) are marked with their number.

Where a request value reaches the file system (each is tried below):
- Batch AI URL names: workspace, experiment, cluster, job, file server (node, job and export directories);
- Batch AI bodies: relativeMountPath of azureFileShares, azureBlobFileSystems and fileServers, on clusters and
  jobs (mount points); fileServers sourceDirectory (the mounted export directory); outputDirectories id and
  pathSuffix (output directories); listOutputFiles ``directory`` and ``outputdirectoryid`` (listed directory);
- Batch AI links: a blob mount directory a job replaced by a link is not written back;
- Azure ML URL names: workspace (also as the deployment's workspaceName), compute (node directories), job
  (job directory), asset name and version;
- Azure ML bodies: input and output names (input and output directories), experimentName;
- Azure ML links: ``outputs`` and named output directories a job replaced by links are not uploaded.
"""
from __future__ import annotations

import json
import os

import pytest
import requests
from azure.mgmt.batchai import models

from test_jobs import (EXP, MOUNT_ROOT, RG, WS, file_share_reference, job_parameters, make_cluster, make_share,
                       make_workspace, read_output, submit, wait_for, wait_for_state)

ESCAPES = ["..", "../../escaped", "/tmp/escaped", "."]
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def send(emu, method: str, path: str, body=None) -> requests.Response:
    """``path`` is sent as written (``%2E%2E`` stays encoded on the wire)."""
    return requests.request(method, emu.arm_url + path, data=None if body is None else json.dumps(body), timeout=60,
                            verify=emu.ca_cert, headers={"Authorization": "Bearer " + emu.token,
                                                         "Content-Type": "application/json"})


def assert_400(response: requests.Response, code: str, mentions: str = "") -> None:
    assert response.status_code == 400, (response.request.url, response.status_code, response.text)
    error = response.json()["error"]
    assert error["code"] == code and mentions in error["message"], response.text


# ---- Batch AI ------------------------------------------------------------------------------------------

BAI = "/subscriptions/{sub}/resourceGroups/" + RG + "/providers/Microsoft.BatchAI"
API = "?api-version=2018-05-01"


@pytest.fixture
def cluster(resource_client, batchai_client, share_service, emulator) -> models.Cluster:
    make_share(share_service)
    make_workspace(resource_client, batchai_client)
    return make_cluster(batchai_client, emulator)


def test_batchai_names_in_urls_are_refused(emulator, cluster):
    base = BAI.format(sub=emulator.subscription_id)
    ws = base + "/workspaces/" + WS
    for bad in ("%2E%2E", "%2E", "a.b", "..%2Fx"):
        urls = {"workspace": (base + "/workspaces/" + bad, {"location": "eastus"}),
                "experiment": (ws + "/experiments/" + bad, {}),
                "cluster": (ws + "/clusters/" + bad, {"properties": {}}),
                "file server": (ws + "/fileServers/" + bad, {"location": "eastus", "properties": {}}),
                "job": (ws + "/experiments/" + EXP + "/jobs/" + bad, {"properties": {}})}
        for kind, (url, body) in urls.items():
            response = send(emulator, "PUT", url + API, body)
            if "%2F" in bad:  # a '/' in a name matches no route
                assert response.status_code in (400, 404), (kind, bad, response.text)
                continue
            assert_400(response, "InvalidParameter", "The {} name".format(kind))


def _cluster_body(emulator, **volumes) -> dict:
    return {"properties": {"vmSize": "STANDARD_NC6", "scaleSettings": {"manual": {"targetNodeCount": 0}},
                           "userAccountSettings": {"adminUserName": "demo", "adminUserPassword": "Pa55word!x"},
                           "nodeSetup": {"mountVolumes": volumes}}}


def test_batchai_mount_paths_output_paths_and_listed_directories_are_refused(emulator, cluster, batchai_client):
    base = BAI.format(sub=emulator.subscription_id) + "/workspaces/" + WS
    share = file_share_reference(emulator).serialize()
    blob = {"accountName": emulator.account_name, "containerName": "data",
            "credentials": {"accountKey": emulator.account_key}}
    server = {"fileServer": {"id": base + "/fileServers/nfs"}}
    for bad in ESCAPES + ["a/../../b", "a//b"]:
        for kind, entry in (("azureFileShares", share), ("azureBlobFileSystems", blob), ("fileServers", server)):
            body = _cluster_body(emulator, **{kind: [dict(entry, relativeMountPath=bad)]})
            assert_400(send(emulator, "PUT", base + "/clusters/c1" + API, body), "InvalidParameter",
                       "relativeMountPath")
            if kind != "fileServers":
                job = job_parameters(cluster.id, "true").serialize()
                job["properties"]["mountVolumes"] = {kind: [dict(entry, relativeMountPath=bad)]}
                assert_400(send(emulator, "PUT", base + "/experiments/{}/jobs/j1{}".format(EXP, API), job),
                           "InvalidParameter", "relativeMountPath")
    for bad in ("../..", "../../../etc", "/data/../.."):
        body = _cluster_body(emulator, fileServers=[dict(server, relativeMountPath="nfs", sourceDirectory=bad)])
        assert_400(send(emulator, "PUT", base + "/clusters/c1" + API, body), "InvalidParameter", "sourceDirectory")
    for key, value in (("id", "../OUT"), ("id", "."), ("pathSuffix", ".."), ("pathSuffix", "../../x"),
                       ("pathSuffix", "/tmp/escaped")):
        job = job_parameters(cluster.id, "true").serialize()
        job["properties"]["outputDirectories"] = [dict({"id": "OUT", "pathPrefix": MOUNT_ROOT}, **{key: value})]
        assert_400(send(emulator, "PUT", base + "/experiments/{}/jobs/j1{}".format(EXP, API), job),
                   "InvalidParameter", key)
    assert [c.name for c in batchai_client.clusters.list_by_workspace(RG, WS)] == [cluster.name]
    assert list(batchai_client.jobs.list_by_experiment(RG, WS, EXP)) == []

    submit(batchai_client, "lister", job_parameters(cluster.id, "echo hi", output_directories=[
        models.OutputDirectory(id="OUT", path_prefix=MOUNT_ROOT)]))
    assert wait_for_state(batchai_client, "lister").execution_state == "succeeded"
    listing = base + "/experiments/{}/jobs/lister/listOutputFiles{}&outputdirectoryid=".format(EXP, API)
    for directory in ("..", "%2E%2E", "%2E%2E%2F%2E%2E", "/etc", "%2Fetc", "a/../.."):
        assert_400(send(emulator, "POST", listing + "OUT&directory=" + directory), "InvalidParameter", "directory")
    for directory_id in ("%2E%2E", "..%2FOUT", "%2Fetc"):
        assert_400(send(emulator, "POST", listing + directory_id), "InvalidParameter", "output directory")
    assert send(emulator, "POST", listing + "OUT").status_code == 200


def test_a_blob_mount_a_job_replaced_by_a_link_is_not_written_back(emulator, cluster, batchai_client, tmp_path):
    from azure.storage.blob import BlobServiceClient

    secret = tmp_path / "not-the-jobs"
    secret.mkdir()
    (secret / "secret.txt").write_text("emulator secrets\n")
    container = BlobServiceClient.from_connection_string(
        emulator.blob_connection_string, connection_verify=emulator.ca_cert).create_container("data")
    container.upload_blob("in.txt", b"input\n")
    mount = models.AzureBlobFileSystemReference(
        account_name=emulator.account_name, container_name="data", relative_mount_path="blobs",
        credentials=models.AzureStorageCredentialsInfo(account_key=emulator.account_key))
    command = "cd $AZ_BATCHAI_JOB_MOUNT_ROOT && rm -rf blobs && ln -s {} blobs".format(secret)
    submit(batchai_client, "linker", job_parameters(
        cluster.id, command, mount_volumes=models.MountVolumes(azure_blob_file_systems=[mount])))
    assert wait_for_state(batchai_client, "linker", timeout=30).execution_state == "succeeded"
    assert sorted(blob.name for blob in container.list_blobs()) == ["in.txt"]
    assert "replaced by a link" in read_output(batchai_client, "linker", "execution.log")


# ---- Azure ML --------------------------------------------------------------------------------------------

AML_WS = "ws"


@pytest.fixture
def ml(emulator, monkeypatch):
    from azure.ai.ml import MLClient
    from azure.ai.ml.entities import AmlCompute, Workspace
    from azure.mgmt.resource.resources import ResourceManagementClient

    from batchai_quickstart.azureml_clients import emulator_cloud, emulator_cloud_name
    from batchai_quickstart.localhost_names import resolve_localhost_names

    resolve_localhost_names()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", emulator.ca_cert)
    monkeypatch.setenv("AZUREML_CURRENT_CLOUD", "AzureCloud")
    ResourceManagementClient(emulator.credential(), emulator.subscription_id, base_url=emulator.arm_url,
                             connection_verify=emulator.ca_cert).resource_groups.create_or_update(
        RG, {"location": "eastus"})
    client = MLClient(emulator.credential(), emulator.subscription_id, RG, AML_WS,
                      cloud=emulator_cloud_name(emulator_cloud(emulator), "AzureMLEmulatorTest"),
                      cloud_metadata=emulator_cloud(emulator), enable_telemetry=False, show_progress=False,
                      connection_verify=emulator.ca_cert, polling_interval=0.05)
    client.workspaces.begin_create(Workspace(name=AML_WS, location="eastus")).result()
    client.compute.begin_create_or_update(AmlCompute(name="cpu", size="Standard_D2_v3", max_instances=1)).result()
    return client


def aml_path(emu, path: str = "", api: str = "?api-version=2024-04-01") -> str:
    return "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.MachineLearningServices/workspaces/{}{}{}".format(
        emu.subscription_id, RG, AML_WS, path, api)


def command_job(emu, **properties) -> dict:
    """A command job body as azure-ai-ml sends it, on compute 'cpu'."""
    props = {"jobType": "Command", "command": "echo hi", "experimentName": "tests",
             "environmentId": "azureml://registries/azureml/environments/AzureML-acpt-pytorch-2.8-cuda12.6/labels/"
                              "latest",
             "computeId": aml_path(emu, "/computes/cpu", api="")}
    props.update(properties)
    return {"properties": props}


def test_finding_2_a_job_named_dot_dot_is_refused(ml, emulator):
    for name in ("%2E%2E", "%2E", "..%2E", "a.b"):
        assert_400(send(emulator, "PUT", aml_path(emulator, "/jobs/" + name), command_job(emulator)),
                   "UserError", "The job name")
        assert_400(send(emulator, "POST", aml_path(emulator, "/jobs/{}/cancel".format(name))), "UserError",
                   "The job name")
    assert send(emulator, "GET", aml_path(emulator, "/jobs")).json()["value"] == []
    assert send(emulator, "PUT", aml_path(emulator, "/jobs/fine_name-1"), command_job(emulator)).status_code == 201


def test_azure_ml_names_in_urls_and_the_deployment_are_refused(ml, emulator):
    compute = {"location": "eastus", "properties": {"computeType": "AmlCompute", "properties": {
        "vmSize": "Standard_D2_v3", "scaleSettings": {"maxNodeCount": 1}}}}
    for bad in ("%2E%2E", "%2E", "..%2E"):
        assert_400(send(emulator, "PUT", aml_path(emulator, "/computes/" + bad), compute), "UserError",
                   "The compute name")
        for kind in ("codes", "data", "environments", "models"):
            assert_400(send(emulator, "PUT", aml_path(emulator, "/{}/{}/versions/1".format(kind, bad)),
                            {"properties": {}}), "UserError", "The asset name")
            version = {"..%2E": "a%5Cb"}.get(bad, bad)  # '...' is a version like any other
            assert_400(send(emulator, "PUT", aml_path(emulator, "/{}/fine/versions/{}".format(kind, version)),
                            {"properties": {}}), "UserError", "The version name")
        assert_400(send(emulator, "POST", aml_path(emulator, "/codes/{}/versions/1/startPendingUpload".format(bad)),
                        {}), "UserError", "The asset name")
        workspace = aml_path(emulator).replace("/workspaces/" + AML_WS, "/workspaces/" + bad)
        assert_400(send(emulator, "PUT", workspace.replace("?", "/computes/cpu?"), compute), "UserError",
                   "The workspace name")
    deployment = "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Resources/deployments/d1" \
                 "?api-version=2020-06-01".format(emulator.subscription_id, RG)
    for bad in ESCAPES:
        body = {"properties": {"mode": "Incremental", "parameters": {"workspaceName": {"value": bad}}}}
        assert_400(send(emulator, "PUT", deployment, body), "UserError", "workspaceName")
    assert [w.name for w in ml.workspaces.list()] == [AML_WS]


def test_finding_1_input_and_output_names_that_leave_the_job_are_refused(ml, emulator, tmp_path):
    datastore = "azureml://datastores/workspaceblobstore/paths/"
    blob = emulator.services["blob"].backend
    container = ml.datastores.get_default().container_name
    emulator.services["azureml"].backend.storage.write_bytes(container, "data/file.txt", b"written by the job\n")
    assert blob.list_blobs(container, "data/", "", "", None)[0]
    escape = tmp_path / "escaped"
    for bad in ESCAPES + ["../../../../../../../../" + str(escape).lstrip("/"), "a/b", "a.b", "1st"]:
        inputs = {bad: {"jobInputType": "uri_folder", "uri": datastore + "data/", "mode": "ReadOnlyMount"}}
        assert_400(send(emulator, "PUT", aml_path(emulator, "/jobs/in1"), command_job(emulator, inputs=inputs)),
                   "UserError", "properties.inputs")
        outputs = {bad: {"jobOutputType": "uri_folder", "mode": "ReadWriteMount"}}
        assert_400(send(emulator, "PUT", aml_path(emulator, "/jobs/out1"), command_job(emulator, outputs=outputs)),
                   "UserError", "properties.outputs")
        if bad not in ("a.b", "1st"):  # good experiment names
            assert_400(send(emulator, "PUT", aml_path(emulator, "/jobs/exp1"),
                            command_job(emulator, experimentName=bad)), "UserError", "properties.experimentName")
    assert send(emulator, "GET", aml_path(emulator, "/jobs")).json()["value"] == []
    assert not escape.exists()
    # the same job with proper names runs and reads its input
    fine = command_job(emulator, command="cat ${{inputs.data}}/file.txt",
                       inputs={"data": {"jobInputType": "uri_folder", "uri": datastore + "data/"}},
                       outputs={"model": {"jobOutputType": "uri_folder"}})
    assert send(emulator, "PUT", aml_path(emulator, "/jobs/fine1"), fine).status_code == 201
    wait_for(lambda: ml.jobs.get("fine1").status in ("Completed", "Failed"), timeout=60)
    assert ml.jobs.get("fine1").status == "Completed"


def test_finding_8_outputs_a_job_replaced_by_links_are_not_uploaded(ml, emulator, tmp_path):
    from azure.ai.ml import Output, command

    secret = tmp_path / "not-the-jobs"
    secret.mkdir()
    (secret / "secret.txt").write_text("emulator secrets\n")
    code = tmp_path / "code"
    code.mkdir()
    (code / "job.py").write_text(
        "import os, shutil, sys, time\n"
        "shutil.rmtree('outputs', ignore_errors=True)\n"
        "os.symlink({0!r}, 'outputs')\n"
        "os.rmdir(sys.argv[1])\n"
        "os.symlink({0!r}, sys.argv[1])\n"
        "print('linked', flush=True)\n"
        "os.remove('../logs/std_log.txt')\n"  # the log the emulator copies while the job runs
        "os.symlink({1!r}, '../logs/std_log.txt')\n"
        "time.sleep(1.5)\n".format(str(secret), str(secret / "secret.txt")))
    job = ml.jobs.create_or_update(command(
        code=str(code), command="python job.py ${{outputs.model}}", outputs={"model": Output(type="uri_folder")},
        environment="AzureML-acpt-pytorch-2.8-cuda12.6@latest", compute="cpu", experiment_name="tests"))
    wait_for(lambda: ml.jobs.get(job.name).status in ("Completed", "Failed"), timeout=60)
    assert ml.jobs.get(job.name).status == "Completed"
    blob = emulator.services["blob"].backend
    backend = emulator.services["azureml"].backend

    def names(container: str, prefix: str) -> list:
        return [item.name for item in blob.list_blobs(container, prefix, "", "", None)[0]]

    artifacts = backend.artifact_prefix(job.name)
    assert names("azureml", artifacts + "outputs/") == []
    assert names(ml.datastores.get_default().container_name, backend.output_prefix(job.name, "model")) == []
    for name in names("azureml", artifacts):  # the logs: never the file the job linked them to
        fd, _ = blob.open_blob("azureml", name)
        with os.fdopen(fd, "rb") as uploaded:
            assert b"emulator secrets" not in uploaded.read(), name
