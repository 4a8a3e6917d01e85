"""The emulator's JSON against what the real service sent for api-version 2018-05-01: for each
resource type, the same keys (no more, no fewer), enum values, error codes and messages. The
recorded bodies and their sources are in conformance/ (SOURCES.md)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import requests
from azure.mgmt.batchai import models

from emulator.runner import processes
from test_jobs import EXP, RG, WS, make_share, wait_for

CONFORMANCE = Path(__file__).with_name("conformance")
RECORDED_LENGTHS = {  # content-length of each recorded response
    "workspace.recorded-2018.json": 416, "cluster.recorded-2018.json": 1222, "operationresult.recorded-2018.json": 490,
    "experiment.recorded-2018.json": 424, "experiment-not-found.recorded-2018.json": 96,
    "job-running.recorded-2018.json": 1472, "job-terminated.recorded-2018.json": 1606,
    "listoutputfiles.recorded-2018.json": 2499, "ListUsages.recorded-2018.json": 2850,
    "fileserver.recorded-2018.json": 984, "operation-inprogress.recorded-2018.json": 299,
    "cluster-setuptask.recorded-2018.json": 1647,
}
API = "2018-05-01"


def recorded(name: str):
    return json.loads((CONFORMANCE / name).read_text())


def key_paths(value, prefix: str = "") -> set:
    """Every key path of a JSON value (``properties.nodeSetup.mountVolumes.azureFileShares[].fileMode``)."""
    paths = set()
    if isinstance(value, dict):
        for key, item in value.items():
            path = prefix + "." + key if prefix else key
            paths.add(path)
            paths |= key_paths(item, path)
    elif isinstance(value, list):
        for item in value:
            paths |= key_paths(item, prefix + "[]")
    return paths


def raw(emulator, method: str, path: str, api_version: str = API, **kwargs) -> requests.Response:
    url = path if path.startswith("https://") else emulator.arm_url + path
    separator = "&" if "?" in url else "?"
    return requests.request(method, "{}{}api-version={}".format(url, separator, api_version),
                            headers={"Authorization": "Bearer " + emulator.token}, verify=emulator.ca_cert,
                            timeout=10, **kwargs)


def arm_path(emulator, *parts: str) -> str:
    return "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.BatchAI/{}".format(
        emulator.subscription_id, RG, "/".join(parts))


def test_the_recorded_bodies_are_complete():
    for name, length in RECORDED_LENGTHS.items():
        assert len(json.dumps(recorded(name), separators=(",", ":"), ensure_ascii=False)) == length, name


@pytest.fixture
def recorded_cluster(resource_client, batchai_client, share_service, emulator):
    """The recordings' cluster: one low-priority STANDARD_D1 node, an Azure file share at azfiles."""
    resource_client.resource_groups.create_or_update(RG, {"location": "northeurope"})
    batchai_client.workspaces.begin_create(RG, WS, models.WorkspaceCreateParameters(location="northeurope")).result()
    batchai_client.experiments.begin_create(RG, WS, EXP).result()
    make_share(share_service)
    body = {"properties": {
        "vmSize": "STANDARD_D1", "vmPriority": "lowpriority",
        "scaleSettings": {"manual": {"targetNodeCount": 1, "nodeDeallocationOption": "requeue"}},
        "nodeSetup": {"mountVolumes": {"azureFileShares": [{  # no fileMode/directoryMode: the service fills them in
            "accountName": emulator.account_name, "azureFileUrl": emulator.files_url + "/batchaiquickstart",
            "credentials": {"accountKey": emulator.account_key}, "relativeMountPath": "azfiles"}]}},
        "userAccountSettings": {"adminUserName": "demoUser", "adminUserPassword": "Dem0Pa$$w0rd"}}}
    response = raw(emulator, "PUT", arm_path(emulator, "workspaces", WS, "clusters", "cluster"), json=body)
    assert response.status_code == 202
    return response


def test_workspace_and_experiment(recorded_cluster, emulator):
    workspace = raw(emulator, "GET", arm_path(emulator, "workspaces", WS)).json()
    assert key_paths(workspace) == key_paths(recorded("workspace.recorded-2018.json"))  # no "tags": {} either
    assert workspace["type"] == "Microsoft.BatchAI/workspaces" and workspace["location"] == "northeurope"
    experiment = raw(emulator, "GET", arm_path(emulator, "workspaces", WS, "experiments", EXP)).json()
    assert key_paths(experiment) == key_paths(recorded("experiment.recorded-2018.json"))
    assert experiment["properties"]["provisioningState"] == "succeeded"

    missing = raw(emulator, "GET", arm_path(emulator, "workspaces", WS, "experiments", "testee"))
    assert missing.status_code == 404 and missing.json() == recorded("experiment-not-found.recorded-2018.json")


def test_cluster_and_its_operation(recorded_cluster, emulator):
    operation = requests.get(recorded_cluster.headers["Azure-AsyncOperation"], verify=emulator.ca_cert, timeout=10,
                             headers={"Authorization": "Bearer " + emulator.token}).json()
    expected = recorded("operationresult.recorded-2018.json")
    assert key_paths(operation) == key_paths(expected)
    assert operation["status"] in ("InProgress", "Succeeded") and operation["id"].endswith("/" + operation["name"])
    assert operation["properties"]["resourceId"] == "{}${}${}$cluster".format(emulator.subscription_id, RG, WS)

    cluster = raw(emulator, "GET", arm_path(emulator, "workspaces", WS, "clusters", "cluster")).json()
    expected = recorded("cluster.recorded-2018.json")
    assert key_paths(cluster) == key_paths(expected)  # no location, no errors: null
    props, recorded_props = cluster["properties"], expected["properties"]
    assert cluster["type"] == expected["type"]
    for key in ("provisioningState", "vmSize", "vmPriority", "scaleSettings", "userAccountSettings"):
        assert props[key] == recorded_props[key], key
    assert props["allocationState"] in ("resizing", "steady")
    share, recorded_share = (p["nodeSetup"]["mountVolumes"]["azureFileShares"][0] for p in (props, recorded_props))
    assert (share["credentials"], share["fileMode"], share["directoryMode"]) == ({}, "0777", "0777")
    assert share.keys() == recorded_share.keys()

    listed = raw(emulator, "GET", arm_path(emulator, "workspaces", WS, "clusters")).json()
    assert key_paths(listed) == {"value"} | {"value[]." + p for p in key_paths(expected)}


def test_cluster_with_a_setup_task(recorded_cluster, emulator):
    """The recording's setup task: a variable, a secret (reported by name only) and the output path
    suffix the service chose."""
    body = {"properties": {
        "vmSize": "STANDARD_D1", "vmPriority": "lowpriority",
        "scaleSettings": {"manual": {"targetNodeCount": 1, "nodeDeallocationOption": "requeue"}},
        "nodeSetup": {
            "setupTask": {"commandLine": "echo $GREETING $SECRET_GREETING",
                          "environmentVariables": [{"name": "GREETING", "value": "setup task"}],
                          "secrets": [{"name": "SECRET_GREETING", "value": "has a secret"}],
                          "stdOutErrPathPrefix": "$AZ_BATCHAI_MOUNT_ROOT/azfiles"},
            "mountVolumes": {"azureFileShares": [{
                "accountName": emulator.account_name, "azureFileUrl": emulator.files_url + "/batchaiquickstart",
                "credentials": {"accountKey": emulator.account_key}, "relativeMountPath": "azfiles"}]}},
        "userAccountSettings": {"adminUserName": "demoUser", "adminUserPassword": "Dem0Pa$$w0rd"}}}
    path = arm_path(emulator, "workspaces", WS, "clusters", "setup")
    assert raw(emulator, "PUT", path, json=body).status_code == 202
    cluster = raw(emulator, "GET", path).json()
    expected = recorded("cluster-setuptask.recorded-2018.json")
    assert key_paths(cluster) == key_paths(expected)
    task, recorded_task = (c["properties"]["nodeSetup"]["setupTask"] for c in (cluster, expected))
    assert task["secrets"] == recorded_task["secrets"] and "has a secret" not in json.dumps(cluster)
    assert task["environmentVariables"] == recorded_task["environmentVariables"]
    assert re.fullmatch(r"{}/{}/workspaces/{}/clusters/setup/[0-9a-f-]{{36}}".format(
        emulator.subscription_id, RG, WS), task["stdOutErrPathSuffix"])


def test_usages_match_the_recording(recorded_cluster, batchai_client, emulator):
    """The recording's subscription held exactly this: one cluster with one low-priority D1 node."""
    wait_for(lambda: batchai_client.clusters.get(RG, WS, "cluster").current_node_count == 1)
    assert raw(emulator, "GET", "/subscriptions/{}/providers/Microsoft.BatchAI/locations/northeurope/usages".format(
        emulator.subscription_id)).json() == recorded("ListUsages.recorded-2018.json")


def test_operations_list_matches_the_specification(emulator):
    body = raw(emulator, "GET", "/providers/Microsoft.BatchAI/operations").json()
    assert body == recorded("ListOperation.example.json")["responses"]["200"]["body"]


def _recorded_job(emulator) -> dict:
    return {"properties": {
        "cluster": {"id": arm_path(emulator, "workspaces", WS, "clusters", "cluster")}, "nodeCount": 1,
        "customToolkitSettings": {"commandLine": "sleep 600"}, "stdOutErrPathPrefix": "$AZ_BATCHAI_MOUNT_ROOT/azfiles",
        "inputDirectories": [{"id": "INPUT", "path": "$AZ_BATCHAI_MOUNT_ROOT/azfiles/input"}],
        "outputDirectories": [{"id": "OUTPUTS", "pathPrefix": "$AZ_BATCHAI_MOUNT_ROOT/azfiles/", "pathSuffix": "files"}]}}


def test_running_and_terminated_job(recorded_cluster, batchai_client, emulator):
    path = arm_path(emulator, "workspaces", WS, "experiments", EXP, "jobs", "longrunning")
    assert raw(emulator, "PUT", path, json=_recorded_job(emulator)).status_code == 202
    running = wait_for(lambda: (lambda body: body if body["properties"]["executionState"] == "running" else None)(
        raw(emulator, "GET", path).json()), timeout=20)
    expected = recorded("job-running.recorded-2018.json")
    assert key_paths(running) == key_paths(expected)  # no "errors": null while it runs
    for key in ("schedulingPriority", "toolType", "nodeCount", "constraints", "customToolkitSettings",
                "inputDirectories", "outputDirectories", "stdOutErrPathPrefix", "provisioningState"):
        assert running["properties"][key] == expected["properties"][key], key

    terminate = raw(emulator, "POST", path + "/terminate")
    assert terminate.status_code == 202
    batchai_client.jobs.begin_terminate(RG, WS, EXP, "longrunning").result()
    terminated = raw(emulator, "GET", path).json()
    expected = recorded("job-terminated.recorded-2018.json")
    assert key_paths(terminated) == key_paths(expected)  # JobTerminated and no exitCode
    assert terminated["properties"]["executionState"] == "failed"
    assert terminated["properties"]["executionInfo"]["errors"] == expected["properties"]["executionInfo"]["errors"]


def test_output_files_of_a_job_with_preparation(recorded_cluster, batchai_client, emulator):
    path = arm_path(emulator, "workspaces", WS, "experiments", EXP, "jobs", "job")
    body = _recorded_job(emulator)
    body["properties"]["customToolkitSettings"] = {"commandLine": "cat $AZ_BATCHAI_INPUT_INPUT/hi.txt"}
    body["properties"]["jobPreparation"] = {
        "commandLine": "mkdir -p $AZ_BATCHAI_INPUT_INPUT && echo hello | tee $AZ_BATCHAI_INPUT_INPUT/hi.txt"}
    assert raw(emulator, "PUT", path, json=body).status_code == 202
    wait_for(lambda: raw(emulator, "GET", path).json()["properties"]["executionState"] == "succeeded", timeout=20)
    listing = raw(emulator, "POST", path + "/listOutputFiles?outputdirectoryid=stdouterr&directory=.&"
                  "linkexpiryinminutes=60&maxresults=1000").json()
    expected = recorded("listoutputfiles.recorded-2018.json")
    assert key_paths(listing) == key_paths(expected)
    assert [f["name"] for f in listing["value"]] == [f["name"] for f in expected["value"]]
    sizes = {f["name"]: f["properties"]["contentLength"] for f in listing["value"]}
    assert sizes["stdout.txt"] == sizes["stdout-job_prep.txt"] == 6  # "hello\n", as recorded
    for entry in listing["value"]:
        assert entry["fileType"] == "file" and re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$",
                                                        entry["properties"]["lastModified"])
        assert "sr=f" in entry["downloadUrl"] and "sp=rl" in entry["downloadUrl"]


def test_unknown_api_versions_get_resource_managers_error(recorded_cluster, emulator):
    response = raw(emulator, "GET", arm_path(emulator, "workspaces", WS, "clusters", "cluster"),
                   api_version="2019-01-01")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "NoRegisteredProviderFound"
    assert error["message"].startswith("No registered resource provider found for location 'northeurope' and API "
                                       "version '2019-01-01' for type 'workspaces/clusters'. The supported "
                                       "api-versions are '2018-05-01'. The supported locations are '")
    usages = raw(emulator, "GET", "/subscriptions/{}/providers/Microsoft.BatchAI/locations/westus2/usages".format(
        emulator.subscription_id), api_version="2017-09-01-preview").json()["error"]
    assert "for location 'westus2' and API version '2017-09-01-preview' for type 'locations/usages'" in \
        usages["message"]
    assert raw(emulator, "GET", "/providers/Microsoft.BatchAI/operations", api_version="2099-01-01").status_code == 400


def test_long_running_operations_report_in_progress_while_they_work(recorded_cluster, batchai_client, emulator,
                                                                    monkeypatch):
    """A terminate reports InProgress until the job's process has ended (here it holds on SIGTERM until
    the test lets it go, within a grace period long enough for a busy machine), then Succeeded."""
    monkeypatch.setattr(processes, "GRACE_SECONDS", 60.0)
    path = arm_path(emulator, "workspaces", WS, "experiments", EXP, "jobs", "stubborn")
    body = _recorded_job(emulator)
    body["properties"]["customToolkitSettings"] = {
        "commandLine": "trap 'until [ -e $AZ_BATCHAI_MOUNT_ROOT/azfiles/go ]; do sleep 0.05; done; exit 1' TERM; "
                       "touch $AZ_BATCHAI_MOUNT_ROOT/azfiles/trapped; sleep 600 & wait"}
    assert raw(emulator, "PUT", path, json=body).status_code == 202
    share = emulator.services["files"].backend.share_path("batchaiquickstart")
    wait_for((share / "trapped").exists, timeout=20)  # the shell has its trap
    terminate = raw(emulator, "POST", path + "/terminate")
    first = requests.get(terminate.headers["Azure-AsyncOperation"], verify=emulator.ca_cert, timeout=10,
                         headers={"Authorization": "Bearer " + emulator.token}).json()
    assert first["status"] == "InProgress" and "endTime" not in first
    (share / "go").touch()
    wait_for(lambda: requests.get(terminate.headers["Azure-AsyncOperation"], verify=emulator.ca_cert, timeout=10,
                                  headers={"Authorization": "Bearer " + emulator.token}).json()["status"]
             == "Succeeded", timeout=30)
