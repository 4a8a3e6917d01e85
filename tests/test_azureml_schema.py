"""Issue 15, finding 4 and 10: every malformed Azure ML body is a 400 in Azure ML's error shape, never a 500,
and never accepted: the workspace deployment, computes, asset versions, pending uploads, command jobs and
the data plane's rundata and batchGetResolvedUris. Raw HTTP with the bearer token against one emulator
shared by the module (every probe is refused, so probes cannot disturb each other); each valid baseline
body is shown to pass first.
"""
from __future__ import annotations

import copy
import json

import pytest
import requests

import emulator as emulator_package

RG, WS = "rg", "ws"
DEPLOYMENTS_API, API = "2020-06-01", "2025-01-01-preview"


@pytest.fixture(scope="module")
def emu(tmp_path_factory):
    emu = emulator_package.start(tmp_path_factory.mktemp("amlschema") / "emulator-data")
    try:
        group = "{}/subscriptions/{}/resourcegroups/{}?api-version=2025-04-01".format(
            emu.arm_url, emu.subscription_id, RG)
        assert call(emu, "PUT", group, {"location": "eastus"}).status_code in (200, 201)
        assert call(emu, "PUT", deployment_url(emu, "ws-1"), deployment_body()).status_code == 201
        assert call(emu, "PUT", ws_url(emu, "/computes/cpu"), compute_body()).status_code in (200, 201)
        yield emu
    finally:
        emu.stop()


def call(emu, method: str, url: str, body) -> requests.Response:
    return requests.request(method, url, data=json.dumps(body), timeout=60, verify=emu.ca_cert,
                            headers={"Authorization": "Bearer " + emu.token, "Content-Type": "application/json"})


def ws_url(emu, path: str, api: str = API) -> str:
    return "{}/subscriptions/{}/resourceGroups/{}/providers/Microsoft.MachineLearningServices/workspaces/{}{}" \
           "?api-version={}".format(emu.arm_url, emu.subscription_id, RG, WS, path, api)


def deployment_url(emu, name: str) -> str:
    return "{}/subscriptions/{}/resourcegroups/{}/providers/Microsoft.Resources/deployments/{}?api-version={}".format(
        emu.arm_url, emu.subscription_id, RG, name, DEPLOYMENTS_API)


def dataplane_url(emu, service: str, tail: str) -> str:
    return "{}/azureml-api/{}/subscriptions/{}/resourceGroups/{}/providers/Microsoft.MachineLearningServices/" \
           "workspaces/{}/{}".format(emu.arm_url, service, emu.subscription_id, RG, WS, tail)


def with_value(body: dict, path: str, value) -> dict:
    """``body`` with the property at ``path`` ('properties.inputs.data') set to ``value``."""
    body = copy.deepcopy(body)
    *parents, last = path.split(".")
    target = body
    for part in parents:
        target = target.setdefault(part, {})
    target[last] = value
    return body


def without(body: dict, path: str) -> dict:
    body = copy.deepcopy(body)
    *parents, last = path.split(".")
    target = body
    for part in parents:
        target = target[part]
    del target[last]
    return body


def assert_refused(response: requests.Response, path: str) -> None:
    """Azure ML's 400: ``{"error": {"code": "UserError", "message": ...}}``, the message naming the property."""
    assert response.status_code == 400, (path, response.status_code, response.text)
    error = response.json()["error"]
    assert error["code"] == "UserError", (path, error)
    assert "'{}'".format(path) in error["message"], (path, error["message"])


# ---- the workspace deployment (workspaces.begin_create) ------------------------------------------------------

def deployment_body() -> dict:
    return {"properties": {"template": {"resources": []}, "mode": "incremental", "parameters": {
        "workspaceName": {"value": WS}, "location": {"value": "eastus"}, "friendlyName": {"value": WS},
        "description": {"value": WS}, "tagValues": {"value": {"createdByToolkit": "sdk-v2-1.35.2"}},
        "kind": {"value": "default"}}}}


@pytest.mark.parametrize("path, value", [
    ("properties", "x"), ("properties.parameters", ["x"]), ("properties.parameters.workspaceName", "ws2"),
    ("properties.parameters.workspaceName.value", 5), ("properties.parameters.location.value", ["eastus"]),
    ("properties.parameters.tagValues.value", "x"), ("properties.parameters.friendlyName.value", {"a": 1}),
    ("properties.mode", "sometimes"), ("properties.template", "x"), ("properties.parameters.kind", 3),
])
def test_a_workspace_deployment_of_the_wrong_type_is_refused(emu, path, value):
    assert_refused(call(emu, "PUT", deployment_url(emu, "probe"), with_value(deployment_body(), path, value)), path)
    assert call(emu, "GET", deployment_url(emu, "probe"), None).status_code == 404


def test_a_workspace_deployment_without_a_workspace_name_says_so(emu):
    response = call(emu, "PUT", deployment_url(emu, "probe"), without(deployment_body(),
                                                                      "properties.parameters.workspaceName"))
    assert_refused(response, "properties.parameters.workspaceName")
    assert "only Azure ML workspace templates" in response.json()["error"]["message"]


# ---- computes ------------------------------------------------------------------------------------------------

def compute_body() -> dict:
    return {"location": "eastus", "properties": {
        "computeType": "AmlCompute", "disableLocalAuth": True, "properties": {
            "vmSize": "Standard_D2_v3", "osType": "Linux", "remoteLoginPortPublicAccess": "NotSpecified",
            "enableNodePublicIp": True,
            "scaleSettings": {"minNodeCount": 0, "maxNodeCount": 0, "nodeIdleTimeBeforeScaleDown": "PT2M"}}}}


@pytest.mark.parametrize("path, value", [
    ("properties", "x"), ("properties.computeType", 5), ("properties.computeType", "Mainframe"),
    ("properties.properties", "x"), ("properties.properties.vmSize", ["Standard_D2_v3"]),
    ("properties.properties.scaleSettings", ["x"]), ("properties.properties.scaleSettings.maxNodeCount", "3"),
    ("properties.properties.scaleSettings.minNodeCount", -1),
    ("properties.properties.scaleSettings.maxNodeCount", 10 ** 30), ("properties.properties.osType", "Solaris"),
    ("properties.properties.enableNodePublicIp", "yes"), ("properties.disableLocalAuth", "true"),
    ("location", 5), ("tags", ["x"]),
])
def test_a_compute_of_the_wrong_type_is_refused(emu, path, value):
    assert_refused(call(emu, "PUT", ws_url(emu, "/computes/probe"), with_value(compute_body(), path, value)), path)
    assert call(emu, "GET", ws_url(emu, "/computes/probe"), None).status_code == 404


# ---- asset versions and pending uploads ------------------------------------------------------------------------

ASSETS = {
    "data": {"properties": {"dataType": "uri_folder", "dataUri": "azureml://datastores/workspaceblobstore/paths/x",
                            "isAnonymous": False, "isArchived": False, "tags": {}, "properties": {}}},
    "codes": {"properties": {"codeUri": "https://acct.blob.core.localhost/c/code", "isAnonymous": True,
                             "properties": {"hash_sha256": "ab", "hash_version": 202208}}},
    "environments": {"properties": {"image": "python:3.11", "condaFile": "name: x", "isAnonymous": False}},
    "models": {"properties": {"modelUri": "azureml://datastores/workspaceblobstore/paths/m",
                              "modelType": "custom_model"}},
}


@pytest.mark.parametrize("kind, path, value", [
    ("data", "properties", "x"), ("data", "properties.dataUri", 5), ("data", "properties.dataType", "folder"),
    ("data", "properties.tags", ["x"]), ("data", "properties.isArchived", "no"),
    ("data", "properties.properties", "x"), ("codes", "properties.codeUri", 5),
    ("codes", "properties.properties", ["x"]), ("environments", "properties.image", ["python"]),
    ("environments", "properties.condaFile", {"name": "x"}), ("environments", "properties.build", "."),
    ("models", "properties.modelUri", 5),
])
def test_an_asset_version_of_the_wrong_type_is_refused(emu, kind, path, value):
    url = ws_url(emu, "/{}/probe/versions/1".format(kind))
    assert_refused(call(emu, "PUT", url, with_value(ASSETS[kind], path, value)), path)
    assert call(emu, "GET", url, None).status_code == 404


def test_valid_asset_versions_still_pass(emu):
    for kind, body in ASSETS.items():
        assert call(emu, "PUT", ws_url(emu, "/{}/fine/versions/1".format(kind)), body).status_code == 201, kind


@pytest.mark.parametrize("path, value", [("pendingUploadType", 5), ("pendingUploadType", "Later"),
                                         ("pendingUploadId", {"id": 1})])
def test_a_pending_upload_of_the_wrong_type_is_refused(emu, path, value):
    url = ws_url(emu, "/codes/probe/versions/1/startPendingUpload")
    assert call(emu, "POST", url, {"pendingUploadType": "TemporaryBlobReference"}).status_code == 200
    assert_refused(call(emu, "POST", url, with_value({"pendingUploadType": "TemporaryBlobReference"}, path, value)),
                   path)


# ---- command jobs ----------------------------------------------------------------------------------------------

def job_body(emu) -> dict:
    workspace = ws_url(emu, "").split("?")[0].split(emu.arm_url, 1)[1]
    return {"properties": {
        "jobType": "Command", "displayName": "probe", "experimentName": "tests", "command": "python job.py",
        "computeId": workspace + "/computes/cpu", "environmentId": "azureml:AzureML-acpt-pytorch-2.8-cuda12.6@latest",
        "inputs": {"data": {"jobInputType": "uri_folder", "uri": "azureml://datastores/workspaceblobstore/paths/x"},
                   "lr": {"jobInputType": "literal", "value": "0.1"}},
        "outputs": {"model": {"jobOutputType": "uri_folder", "mode": "ReadWriteMount"}},
        "distribution": {"distributionType": "PyTorch", "processCountPerInstance": 1},
        "resources": {"instanceCount": 1, "properties": {}}, "environmentVariables": {"A": "1"},
        "tags": {}, "properties": {}, "isArchived": False}}


@pytest.mark.parametrize("path, value", [
    # the findings: 500 today ...
    ("properties", "x"), ("properties.computeId", 5), ("properties.resources", ["x"]),
    ("properties.outputs", ["x"]), ("properties.outputs.model", "x"),
    # ... and accepted today
    ("properties.command", ["python", "job.py"]), ("properties.inputs", ["x"]), ("properties.inputs.data", "x"),
    ("properties.environmentVariables", ["A=1"]), ("properties.distribution", "PyTorch"),
    ("properties.distribution.processCountPerInstance", "1"), ("properties.resources.instanceCount", -1),
    # and their neighbours
    ("properties.resources.instanceCount", 0), ("properties.resources.instanceCount", "2"),
    ("properties.resources.instanceCount", 10 ** 30),
    ("properties.distribution.processCountPerInstance", 0), ("properties.distribution.distributionType", "Horovod"),
    ("properties.inputs.data.jobInputType", "folder"), ("properties.inputs.data.uri", 5),
    ("properties.outputs.model.mode", "Sometimes"), ("properties.environmentId", {"id": "x"}),
    ("properties.tags", ["x"]), ("properties.properties", "x"), ("properties.experimentName", 5),
    ("properties.codeId", 5), ("properties.command", ""), ("properties.jobType", 5),
    ("properties.environmentVariables.A", {"x": 1}),
])
def test_a_command_job_of_the_wrong_type_is_refused_at_submit(emu, path, value):
    url = ws_url(emu, "/jobs/probe")
    assert_refused(call(emu, "PUT", url, with_value(job_body(emu), path, value)), path)
    assert call(emu, "GET", url, None).status_code == 404


def test_a_command_job_input_needs_its_uri_and_a_literal_its_value(emu):
    url = ws_url(emu, "/jobs/probe")
    assert_refused(call(emu, "PUT", url, without(job_body(emu), "properties.inputs.data.uri")),
                   "properties.inputs.data.uri")
    assert_refused(call(emu, "PUT", url, without(job_body(emu), "properties.inputs.lr.value")),
                   "properties.inputs.lr.value")


def test_a_valid_command_job_still_passes(emu):
    response = call(emu, "PUT", ws_url(emu, "/jobs/fine"), job_body(emu))
    assert response.status_code == 201, response.text
    assert response.json()["properties"]["command"] == "python job.py"


# ---- the data plane --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("body, path", [
    ({"runId": 5}, "runId"), ({"runId": ["fine"]}, "runId"), ({}, "runId"),
    ({"runId": "fine", "selectRunMetadata": "yes"}, "selectRunMetadata"),
])
def test_rundata_of_the_wrong_type_is_refused(emu, body, path):
    url = dataplane_url(emu, "history/v1.0", "rundata")
    assert_refused(call(emu, "POST", url, body), path)


@pytest.mark.parametrize("body, path", [
    ({"values": "azureml://x"}, "values"), ({"values": [5]}, "values[0]"), ({"values": {"a": "b"}}, "values"),
    ({}, "values"),
])
def test_batch_get_resolved_uris_of_the_wrong_type_is_refused(emu, body, path):
    url = dataplane_url(emu, "data/v1.0", "dataversion/batchGetResolvedUris?api-version=1.5.0")
    assert call(emu, "POST", url, {"values": []}).status_code == 200
    assert_refused(call(emu, "POST", url, body), path)


def documented_answers() -> list:
    """The JSON error bodies shown in docs/validation.md, in order."""
    from pathlib import Path
    text = (Path(__file__).resolve().parents[1] / "docs" / "validation.md").read_text()
    return [json.loads(block.split("```", 1)[0]) for block in text.split("```json\n")[1:]]


def test_the_documented_azureml_answer_is_the_emulators(emu):
    response = call(emu, "PUT", ws_url(emu, "/jobs/probe"),
                    with_value(job_body(emu), "properties.resources.instanceCount", -1))
    assert response.json() == documented_answers()[1]
