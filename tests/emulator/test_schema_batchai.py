"""Issue 16: Batch AI requests are checked against the 2018-05-01 schema at submit. A property of the wrong
JSON type, out of range or outside its enum is refused with 400 naming the property, and nothing is created.

Probes go through real HTTP against one emulator shared by the module (each probe is refused, so they
cannot disturb each other). The object-valued properties are listed here from the REST spec
(BatchAI.json), independently of emulator/batchai/schemas.py.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import requests
from azure.mgmt.batchai import BatchAI
from azure.mgmt.resource.resources import ResourceManagementClient
from azure.storage.fileshare import ShareServiceClient

import emulator as emulator_package
from test_jobs import MOUNT_ROOT, make_cluster, make_share, make_workspace

RG, WS, EXP = "rg", "ws", "exp"
WRONG_FOR_OBJECT = ["a string", 5, ["a list"], True]
WRONG_FOR_LIST = ["a string", {"an": "object"}, 5]


@pytest.fixture(scope="module")
def emu(tmp_path_factory):
    emu = emulator_package.start(tmp_path_factory.mktemp("schema") / "emulator-data")
    try:
        batchai = BatchAI(emu.credential(), emu.subscription_id, base_url=emu.arm_url,
                          connection_verify=emu.ca_cert, polling_interval=0.05)
        resources = ResourceManagementClient(emu.credential(), emu.subscription_id, base_url=emu.arm_url,
                                             connection_verify=emu.ca_cert, polling_interval=0.05)
        make_share(ShareServiceClient.from_connection_string(emu.files_connection_string))
        make_workspace(resources, batchai)
        emu.cluster_id = make_cluster(batchai, emu, nodes=0, wait=False).id
        yield emu
    finally:
        emu.stop()


def url(emu, *path: str) -> str:
    return "{}/subscriptions/{}/resourceGroups/{}/providers/Microsoft.BatchAI/workspaces/{}{}?api-version=2018-05-01" \
        .format(emu.arm_url, emu.subscription_id, RG, WS, "".join("/" + part for part in path))


def call(emu, method: str, target: str, body) -> requests.Response:
    return requests.request(method, target, data=json.dumps(body), timeout=60, verify=emu.ca_cert,
                            headers={"Authorization": "Bearer " + emu.token, "Content-Type": "application/json"})


def with_value(body: dict, path: str, value) -> dict:
    """``body`` with the property at ``path`` ('properties.nodeSetup.setupTask', 'a.b[0].c') set to ``value``."""
    body = copy.deepcopy(body)
    parts = path.replace("[", ".[").split(".")
    target = body
    for part, following in zip(parts, parts[1:]):
        key = int(part[1:-1]) if part.startswith("[") else part
        if not isinstance(key, int) and key not in target:
            target[key] = [{}] if following.startswith("[") else {}
        target = target[key]
    last = parts[-1]
    target[int(last[1:-1]) if last.startswith("[") else last] = value
    return body


def documented_answers() -> list:
    """The JSON error bodies shown in docs/validation.md, in order."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "validation.md").read_text()
    return [json.loads(block.split("```", 1)[0]) for block in text.split("```json\n")[1:]]


def assert_refused(response: requests.Response, path: str, code: str = "InvalidParameter") -> None:
    assert response.status_code == 400, (path, response.status_code, response.text)
    error = response.json()["error"]
    assert error["code"] == code, (path, error)
    assert "'{}'".format(path) in error["message"], (path, error["message"])


# ---- jobs -------------------------------------------------------------------------------------------------

def job_body(emu) -> dict:
    """A job as the API allows it, with every optional object filled in, so that each probe is the one fault."""
    vault = {"sourceVault": {"id": "/subscriptions/s/vaults/v"}, "secretUrl": "https://v/secrets/s"}
    return {"properties": {
        "cluster": {"id": emu.cluster_id}, "nodeCount": 1, "stdOutErrPathPrefix": MOUNT_ROOT,
        "schedulingPriority": "normal", "constraints": {"maxWallClockTime": "PT1H"},
        "customToolkitSettings": {"commandLine": "echo hi"}, "cntkSettings": {"processCount": 1},
        "pyTorchSettings": {"pythonScriptFilePath": "x.py"}, "tensorFlowSettings": {"pythonScriptFilePath": "x.py"},
        "containerSettings": {"imageSourceRegistry": {"image": "ubuntu", "credentials": {"username": "u"}}},
        "jobPreparation": {"commandLine": "true"},
        "inputDirectories": [{"id": "IN", "path": MOUNT_ROOT}],
        "outputDirectories": [{"id": "OUT", "pathPrefix": MOUNT_ROOT}],
        "environmentVariables": [{"name": "A", "value": "1"}],
        "secrets": [{"name": "S", "value": "2", "valueSecretReference": vault}],
        "mountVolumes": {"azureFileShares": [{"accountName": "a", "azureFileUrl": "https://a/b",
                                              "credentials": {"accountKey": "k", "accountKeySecretReference": vault},
                                              "relativeMountPath": "m"}]}}}


def minimal_job_body(emu) -> dict:
    return {"properties": {"cluster": {"id": emu.cluster_id}, "nodeCount": 1, "stdOutErrPathPrefix": MOUNT_ROOT,
                           "customToolkitSettings": {"commandLine": "echo hi"}}}


# JobBaseProperties' object-valued properties and the objects inside them (BatchAI.json definitions).
JOB_OBJECTS = [
    "properties", "properties.cluster", "properties.mountVolumes", "properties.containerSettings",
    "properties.containerSettings.imageSourceRegistry", "properties.containerSettings.imageSourceRegistry.credentials",
    "properties.cntkSettings", "properties.pyTorchSettings", "properties.tensorFlowSettings",
    "properties.caffeSettings", "properties.caffe2Settings", "properties.chainerSettings",
    "properties.customToolkitSettings", "properties.customMpiSettings", "properties.horovodSettings",
    "properties.jobPreparation", "properties.constraints",
    "properties.inputDirectories[0]", "properties.outputDirectories[0]", "properties.environmentVariables[0]",
    "properties.secrets[0]", "properties.secrets[0].valueSecretReference",
    "properties.secrets[0].valueSecretReference.sourceVault",
    "properties.mountVolumes.azureFileShares[0]", "properties.mountVolumes.azureFileShares[0].credentials",
    "properties.mountVolumes.azureFileShares[0].credentials.accountKeySecretReference",
]
JOB_LISTS = ["properties.inputDirectories", "properties.outputDirectories", "properties.environmentVariables",
             "properties.secrets", "properties.mountVolumes.azureFileShares",
             "properties.mountVolumes.azureBlobFileSystems", "properties.mountVolumes.fileServers",
             "properties.mountVolumes.unmanagedFileSystems"]


@pytest.mark.parametrize("path", JOB_OBJECTS)
@pytest.mark.parametrize("wrong", WRONG_FOR_OBJECT, ids=lambda value: type(value).__name__)
def test_a_job_with_an_object_of_the_wrong_type_is_refused_at_submit(emu, path, wrong):
    name = "probe"
    assert_refused(call(emu, "PUT", url(emu, "experiments", EXP, "jobs", name), with_value(job_body(emu), path,
                                                                                           wrong)), path)
    assert call(emu, "GET", url(emu, "experiments", EXP, "jobs", name), None).status_code == 404


@pytest.mark.parametrize("path", JOB_LISTS)
@pytest.mark.parametrize("wrong", WRONG_FOR_LIST, ids=lambda value: type(value).__name__)
def test_a_job_with_a_list_of_the_wrong_type_is_refused_at_submit(emu, path, wrong):
    assert_refused(call(emu, "PUT", url(emu, "experiments", EXP, "jobs", "probe"),
                        with_value(job_body(emu), path, wrong)), path)


@pytest.mark.parametrize("path, value", [
    ("properties.nodeCount", "1"), ("properties.nodeCount", 0), ("properties.nodeCount", 101),
    ("properties.nodeCount", 1.5), ("properties.nodeCount", True),
    ("properties.schedulingPriority", "urgent"), ("properties.schedulingPriority", 1),
    ("properties.stdOutErrPathPrefix", 5), ("properties.cluster.id", ["x"]),
    ("properties.customToolkitSettings.commandLine", {"x": 1}),
    ("properties.pyTorchSettings.processCount", 0), ("properties.cntkSettings.processCount", "2"),
    ("properties.tensorFlowSettings.workerCount", -1), ("properties.constraints.maxWallClockTime", 5),
    ("properties.containerSettings.shmSize", 64), ("properties.inputDirectories[0].path", 7),
    ("properties.environmentVariables[0].value", 1), ("properties.secrets[0].value", False),
    ("properties.mountVolumes.azureFileShares[0].fileMode", 777),
])
def test_a_job_with_a_wrong_value_is_refused_at_submit(emu, path, value):
    assert_refused(call(emu, "PUT", url(emu, "experiments", EXP, "jobs", "probe"),
                        with_value(job_body(emu), path, value)), path)


@pytest.mark.parametrize("path", ["properties.cluster", "properties.stdOutErrPathPrefix",
                                  "properties.inputDirectories[0].id", "properties.environmentVariables[0].value",
                                  "properties.mountVolumes.azureFileShares[0].credentials",
                                  "properties.containerSettings.imageSourceRegistry"])
def test_a_job_without_a_required_property_is_refused_naming_it(emu, path):
    body = job_body(emu)
    parent, _, key = path.rpartition(".")
    target = body
    for part in parent.replace("[", ".[").split("."):
        target = target[int(part[1:-1])] if part.startswith("[") else target[part]
    del target[key]
    assert_refused(call(emu, "PUT", url(emu, "experiments", EXP, "jobs", "probe"), body), path,
                   "MissingRequiredProperty")


def test_a_containerSettings_string_is_refused_at_submit_not_at_run_time(emu):
    body = with_value(job_body(emu), "properties.containerSettings", "ubuntu")
    response = call(emu, "PUT", url(emu, "experiments", EXP, "jobs", "container"), body)
    assert response.status_code == 400
    assert response.json() == documented_answers()[0]  # docs/validation.md shows this answer


def test_null_is_the_same_as_leaving_a_property_out(emu):
    body = minimal_job_body(emu)
    body["properties"].update({"containerSettings": None, "jobPreparation": None, "constraints": None})
    assert call(emu, "PUT", url(emu, "experiments", EXP, "jobs", "nulls"), body).status_code == 202


# ---- clusters, workspaces, experiments, file servers -------------------------------------------------------

def cluster_body() -> dict:
    return {"properties": {
        "vmSize": "STANDARD_NC6", "vmPriority": "dedicated",
        "scaleSettings": {"manual": {"targetNodeCount": 0, "nodeDeallocationOption": "requeue"}},
        "userAccountSettings": {"adminUserName": "demo", "adminUserPassword": "Pa55word!x"},
        "virtualMachineConfiguration": {"imageReference": {"publisher": "p", "offer": "o", "sku": "s"}},
        "nodeSetup": {"setupTask": {"commandLine": "true", "stdOutErrPathPrefix": MOUNT_ROOT,
                                    "environmentVariables": [{"name": "A", "value": "1"}]},
                      "mountVolumes": {}},
        "subnet": {"id": "/subscriptions/s/x"}}}


CLUSTER_OBJECTS = [
    "properties", "properties.scaleSettings", "properties.scaleSettings.manual",
    "properties.virtualMachineConfiguration", "properties.virtualMachineConfiguration.imageReference",
    "properties.nodeSetup", "properties.nodeSetup.setupTask", "properties.nodeSetup.mountVolumes",
    "properties.nodeSetup.performanceCountersSettings", "properties.nodeSetup.setupTask.environmentVariables[0]",
    "properties.userAccountSettings", "properties.subnet",
]


@pytest.mark.parametrize("path", CLUSTER_OBJECTS)
@pytest.mark.parametrize("wrong", WRONG_FOR_OBJECT, ids=lambda value: type(value).__name__)
def test_a_cluster_with_an_object_of_the_wrong_type_is_refused_at_submit(emu, path, wrong):
    assert_refused(call(emu, "PUT", url(emu, "clusters", "probe"), with_value(cluster_body(), path, wrong)), path)
    assert call(emu, "GET", url(emu, "clusters", "probe"), None).status_code == 404


@pytest.mark.parametrize("path, value", [
    ("properties.vmSize", ["STANDARD_NC6"]), ("properties.vmPriority", "spot"),
    ("properties.scaleSettings.manual.targetNodeCount", -1),
    ("properties.scaleSettings.manual.targetNodeCount", "1"),
    ("properties.scaleSettings.manual.nodeDeallocationOption", "later"),
    ("properties.scaleSettings.autoScale", {"minimumNodeCount": 0, "maximumNodeCount": 0}),
    ("properties.userAccountSettings.adminUserName", 5),
    ("properties.nodeSetup.setupTask.commandLine", ["true"]),
])
def test_a_cluster_with_a_wrong_value_is_refused(emu, path, value):
    body = with_value(cluster_body(), path, value)
    if path.endswith("autoScale"):
        del body["properties"]["scaleSettings"]["manual"]
        path += ".maximumNodeCount"
    assert_refused(call(emu, "PUT", url(emu, "clusters", "probe"), body), path)


@pytest.mark.parametrize("path, value", [
    ("properties", "x"), ("properties.scaleSettings", ["x"]), ("properties.scaleSettings.manual", 3),
    ("properties.scaleSettings.manual.targetNodeCount", "2"), ("properties.scaleSettings.autoScale", "x"),
])
def test_a_cluster_update_of_the_wrong_type_is_refused(emu, path, value):
    response = call(emu, "PATCH", url(emu, "clusters", "cluster"), with_value(
        {"properties": {"scaleSettings": {"manual": {"targetNodeCount": 0}}}}, path, value))
    assert_refused(response, path)


def test_enums_match_in_any_case_as_before(emu):
    body = with_value(cluster_body(), "properties.vmPriority", "Dedicated")
    assert call(emu, "PUT", url(emu, "clusters", "anycase"), body).status_code == 202


@pytest.mark.parametrize("method, path, body, named", [
    ("PUT", (), {"location": "eastus", "tags": "x"}, "tags"),
    ("PUT", (), {"location": "eastus", "tags": {"a": 1}}, "tags.a"),
    ("PUT", (), {"location": ["eastus"]}, "location"),
    ("PATCH", (), {"tags": ["x"]}, "tags"),
    ("PUT", ("fileservers", "nfs"), {"properties": "x"}, "properties"),
    ("PUT", ("fileservers", "nfs"), {"properties": {
        "vmSize": "D1", "sshConfiguration": "x",
        "dataDisks": {"diskSizeInGB": 10, "diskCount": 1, "storageAccountType": "Standard_LRS"}}},
     "properties.sshConfiguration"),
    ("PUT", ("fileservers", "nfs"), {"properties": {
        "vmSize": "D1", "sshConfiguration": {"userAccountSettings": {"adminUserName": "a", "adminUserPassword": "p"}},
        "dataDisks": {"diskSizeInGB": "10", "diskCount": 1, "storageAccountType": "Standard_LRS"}}},
     "properties.dataDisks.diskSizeInGB"),
    ("PUT", ("fileservers", "nfs"), {"properties": {
        "vmSize": "D1", "sshConfiguration": {"userAccountSettings": {"adminUserName": "a", "adminUserPassword": "p"},
                                             "publicIPsToAllow": "*"},
        "dataDisks": {"diskSizeInGB": 10, "diskCount": 1, "storageAccountType": "Standard_LRS"}}},
     "properties.sshConfiguration.publicIPsToAllow"),
    ("PUT", ("fileservers", "nfs"), {"properties": {
        "vmSize": "D1", "sshConfiguration": {"userAccountSettings": {"adminUserName": "a", "adminUserPassword": "p"}},
        "dataDisks": {"diskSizeInGB": 10, "diskCount": 1, "storageAccountType": "Standard_LRS",
                      "cachingType": "sometimes"}}},
     "properties.dataDisks.cachingType"),
])
def test_workspace_and_file_server_bodies_of_the_wrong_type_are_refused(emu, method, path, body, named):
    assert_refused(call(emu, method, url(emu, *path), body), named)


def test_an_experiment_body_must_be_an_object(emu):
    response = call(emu, "PUT", url(emu, "experiments", "other"), ["x"])
    assert response.status_code == 400 and response.json()["error"]["code"] == "InvalidRequestContent"
    assert call(emu, "PUT", url(emu, "experiments", "other"), {}).status_code == 200
