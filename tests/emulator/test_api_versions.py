"""Batch AI API versions 2017-09-01-preview and 2018-03-01 next to 2018-05-01 (docs/api-versions.md).

Raw HTTP for the shape differences, then the old SDKs themselves (azure-mgmt-batchai 0.2.0 and 1.0.1,
each in a venv of its own, tests/legacy_sdks.py) against the emulator directly on loopback."""
from __future__ import annotations

import json
import textwrap
import time

import pytest
import requests

from legacy_sdks import legacy_python, run_client

RG = "legacyrg"
PREVIEW, V2018_03, CURRENT = "2017-09-01-preview", "2018-03-01", "2018-05-01"
SHARE = "legacyshare"


def call(emu, method: str, path: str, api_version: str, **kwargs) -> requests.Response:
    headers = {"Authorization": "Bearer " + emu.token}
    return requests.request(method, "{}{}?api-version={}".format(emu.arm_url, path, api_version), headers=headers,
                            verify=emu.ca_cert, timeout=30, **kwargs)


def group_path(emu, *parts: str) -> str:
    return "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.BatchAI/{}".format(
        emu.subscription_id, RG, "/".join(parts))


@pytest.fixture
def group(emulator):
    response = call(emulator, "PUT", "/subscriptions/{}/resourcegroups/{}".format(emulator.subscription_id, RG),
                    "2017-05-10", json={"location": "eastus"})
    assert response.status_code in (200, 201), response.text
    return RG


@pytest.fixture
def share(emulator, share_service):
    share_service.create_share(SHARE)
    return "{}/{}".format(emulator.files_url, SHARE)


def cluster_body(emu, share_url: str, **props) -> dict:
    body = {"location": "eastus", "tags": {"team": "ml"}, "properties": {
        "vmSize": "STANDARD_NC6", "vmPriority": "dedicated",
        "scaleSettings": {"manual": {"targetNodeCount": 1, "nodeDeallocationOption": "requeue"}},
        "userAccountSettings": {"adminUserName": "admin", "adminUserPassword": "Pa55word!"},
        "nodeSetup": {"mountVolumes": {"azureFileShares": [{
            "accountName": emu.account_name, "azureFileUrl": share_url, "credentials": {"accountKey": emu.account_key},
            "relativeMountPath": "afs", "fileMode": "0777", "directoryMode": "0777"}]}}}}
    body["properties"].update(props)
    return body


def job_body(emu, command: str = "echo hello from an old client", **props) -> dict:
    body = {"location": "eastus", "tags": {"run": "1"}, "properties": {
        "priority": 500, "cluster": {"id": group_path(emu, "clusters", "c1")}, "nodeCount": 1,
        "customToolkitSettings": {"commandLine": command},
        "stdOutErrPathPrefix": "$AZ_BATCHAI_MOUNT_ROOT/afs",
        "outputDirectories": [{"id": "MODEL", "pathPrefix": "$AZ_BATCHAI_MOUNT_ROOT/afs", "pathSuffix": "Models",
                               "type": "model", "createNew": False}],
        "constraints": {"maxWallClockTime": "PT1H"}}}
    body["properties"].update(props)
    return body


def wait_job(emu, version: str, name: str = "j1") -> dict:
    for _ in range(1200):
        job = call(emu, "GET", group_path(emu, "jobs", name), version).json()
        if job["properties"]["executionState"] in ("succeeded", "failed"):
            return job
        time.sleep(0.1)
    raise AssertionError("job {} did not finish: {}".format(name, job))


# ---- raw HTTP: shapes per version -----------------------------------------------------------------

@pytest.mark.parametrize("version", [PREVIEW, V2018_03])
def test_cluster_and_job_shapes(emulator, group, share, version):
    emu = emulator
    response = call(emu, "PUT", group_path(emu, "clusters", "c1"), version, json=cluster_body(emu, share))
    assert response.status_code == 200, response.text  # done at once: old clients need no polling
    cluster = response.json()
    assert cluster["id"] == group_path(emu, "clusters", "c1")
    assert (cluster["type"], cluster["location"], cluster["tags"]) == ("Microsoft.BatchAI/Clusters", "eastus",
                                                                       {"team": "ml"})
    assert cluster["properties"]["provisioningState"] == "succeeded"
    assert cluster["properties"]["nodeSetup"]["mountVolumes"]["azureFileShares"][0]["credentials"] == {}
    assert "adminUserPassword" not in cluster["properties"]["userAccountSettings"]

    response = call(emu, "PUT", group_path(emu, "jobs", "j1"), version, json=job_body(emu))
    assert response.status_code == 200, response.text
    job = response.json()
    props = job["properties"]
    assert (job["id"], job["type"], job["location"], job["tags"]) == (
        group_path(emu, "jobs", "j1"), "Microsoft.BatchAI/Jobs", "eastus", {"run": "1"})
    assert props["priority"] == 500 and "schedulingPriority" not in props
    assert props["cluster"]["id"] == group_path(emu, "clusters", "c1")
    assert props["outputDirectories"] == [{"id": "MODEL", "pathPrefix": "$AZ_BATCHAI_MOUNT_ROOT/afs",
                                           "pathSuffix": "Models", "type": "model", "createNew": False}]
    assert props["constraints"] == {"maxWallClockTime": "PT1H"}
    assert ("jobOutputDirectoryPathSegment" in props) == (version == V2018_03)

    done = wait_job(emu, version)
    assert done["properties"]["executionState"] == "succeeded", done
    listed = call(emu, "POST", group_path(emu, "jobs", "j1", "listOutputFiles"), version,
                  params={"outputdirectoryid": "stdouterr", "directory": ".", "linkexpiryinminutes": 60}).json()
    names = sorted(f["name"] for f in listed["value"])
    assert "stdout.txt" in names and "stderr.txt" in names
    for entry in listed["value"]:
        assert "fileType" not in entry
        assert ("isDirectory" in entry) == (version == V2018_03)
    stdout = next(f for f in listed["value"] if f["name"] == "stdout.txt")
    assert requests.get(stdout["downloadUrl"], timeout=10).text.strip() == "hello from an old client"

    # the same resources as 2018-05-01 sees them: the reserved workspace of their location
    seen = call(emu, "GET", group_path(emu, "workspaces", "migrated-eastus", "experiments", "migrated", "jobs", "j1"),
                CURRENT).json()
    assert seen["properties"]["schedulingPriority"] == "high"
    assert [w["name"] for w in call(emu, "GET", group_path(emu, "workspaces"), CURRENT).json()["value"]] == \
        ["migrated-eastus"]

    assert [c["name"] for c in call(emu, "GET", group_path(emu, "clusters"), version).json()["value"]] == ["c1"]
    subscription_jobs = call(emu, "GET", "/subscriptions/{}/providers/Microsoft.BatchAI/jobs".format(
        emu.subscription_id), version).json()["value"]
    assert [j["id"] for j in subscription_jobs] == [group_path(emu, "jobs", "j1")]

    assert call(emu, "DELETE", group_path(emu, "jobs", "j1"), version).status_code == 200
    assert call(emu, "GET", group_path(emu, "jobs", "j1"), version).json()["error"]["code"] == "JobNotFound"
    assert call(emu, "DELETE", group_path(emu, "clusters", "c1"), version).status_code == 200
    assert call(emu, "DELETE", group_path(emu, "clusters", "c1"), version).status_code == 204


def test_versions_route_apart(emulator, group):
    emu = emulator
    response = call(emu, "GET", group_path(emu, "clusters"), CURRENT)
    assert response.status_code == 400 and response.json()["error"]["code"] == "NoRegisteredProviderFound"
    assert "'2017-09-01-preview, 2018-03-01'" in response.json()["error"]["message"]
    response = call(emu, "GET", group_path(emu, "workspaces"), PREVIEW)
    assert response.status_code == 400 and "'2018-05-01'" in response.json()["error"]["message"]
    usages = "/subscriptions/{}/providers/Microsoft.BatchAI/locations/eastus/usages".format(emu.subscription_id)
    assert call(emu, "GET", usages, PREVIEW).status_code == 400
    listed = call(emu, "GET", usages, V2018_03).json()["value"]
    assert listed and all(set(u) == {"unit", "currentValue", "limit", "name"} for u in listed)
    operations = call(emu, "GET", "/providers/Microsoft.BatchAI/operations", PREVIEW).json()["value"]
    names = {o["name"] for o in operations}
    assert "Microsoft.BatchAI/clusters/write" in names and "Microsoft.BatchAI/jobs/terminate/action" in names
    assert not any("workspaces" in name or "usages" in name for name in names)


def test_old_request_errors(emulator, group, share):
    emu = emulator
    no_location = cluster_body(emu, share)
    del no_location["location"]
    response = call(emu, "PUT", group_path(emu, "clusters", "c1"), PREVIEW, json=no_location)
    assert response.status_code == 400 and response.json()["error"]["code"] == "LocationRequired"
    # a 2018-05-01 check (here the missing vmSize) answers old versions alike
    response = call(emu, "PUT", group_path(emu, "clusters", "c1"), PREVIEW, json=cluster_body(emu, share, vmSize=None))
    assert response.status_code == 400 and "vmSize" in response.json()["error"]["message"]
    assert call(emu, "PUT", group_path(emu, "clusters", "c.1"), PREVIEW,
                json=cluster_body(emu, share)).status_code == 200  # old names may hold dots
    response = call(emu, "PUT", group_path(emu, "jobs", "j1"), PREVIEW, json=job_body(emu, priority=5000))
    assert response.status_code == 400 and "properties.priority" in response.json()["error"]["message"]
    response = call(emu, "PUT", group_path(emu, "jobs", "j1"), PREVIEW, json=job_body(emu))  # no cluster c1
    assert response.status_code == 400 and "c1" in response.json()["error"]["message"]
    response = call(emu, "GET", group_path(emu, "clusters", "nope"), V2018_03)
    assert response.status_code == 404 and response.json()["error"]["code"] == "ClusterNotFound"


def test_tags_patch_and_file_server(emulator, group, share):
    emu = emulator
    call(emu, "PUT", group_path(emu, "clusters", "c1"), V2018_03, json=cluster_body(emu, share))
    patched = call(emu, "PATCH", group_path(emu, "clusters", "c1"), V2018_03, json={"tags": {"team": "ai"}}).json()
    assert patched["tags"] == {"team": "ai"}
    patched = call(emu, "PATCH", group_path(emu, "clusters", "c1"), V2018_03,
                   json={"properties": {"scaleSettings": {"manual": {"targetNodeCount": 0}}}}).json()
    assert patched["tags"] == {"team": "ai"}
    assert patched["properties"]["scaleSettings"]["manual"]["targetNodeCount"] == 0

    server = {"location": "eastus", "properties": {
        "vmSize": "STANDARD_D1", "sshConfiguration": {"userAccountSettings": {"adminUserName": "admin",
                                                                              "adminUserPassword": "Pa55word!"}},
        "dataDisks": {"diskSizeInGB": 10, "diskCount": 2, "storageAccountType": "Standard_LRS"}}}
    response = call(emu, "PUT", group_path(emu, "fileServers", "fs1"), PREVIEW, json=server)
    assert response.status_code in (200, 202), response.text
    if response.status_code == 202:
        assert response.headers["Retry-After"] == "1"
        assert "api-version=" + PREVIEW in response.headers["Azure-AsyncOperation"]
    for _ in range(200):
        got = call(emu, "GET", group_path(emu, "fileServers", "fs1"), PREVIEW).json()
        if got["properties"]["provisioningState"] == "succeeded":
            break
        time.sleep(0.1)
    assert got["type"] == "Microsoft.BatchAI/FileServers" and got["location"] == "eastus"
    assert got["properties"]["mountSettings"]["fileServerType"] == "nfs"
    assert [s["name"] for s in call(emu, "GET", group_path(emu, "fileServers"), PREVIEW).json()["value"]] == ["fs1"]


# ---- the old SDKs, unmodified, in venvs of their own ------------------------------------------------

#: The 2017 tutorial's steps (docs quickstart-python.md, 2017-10) with azure-mgmt-batchai 0.2.0 or
#: 1.0.1, a tiny script in place of ConvNet_MNIST.py; prints one JSON line of what it saw.
CLIENT_FLOW = textwrap.dedent('''
    import json, os, sys, time
    import requests
    from msrest.authentication import BasicTokenAuthentication
    import azure.mgmt.batchai as batchai
    import azure.mgmt.batchai.models as models
    from azure.mgmt.resource import ResourceManagementClient

    emu = json.loads(os.environ["EMULATOR"])
    rg, share = os.environ["GROUP"], os.environ["SHARE"]
    credentials = BasicTokenAuthentication({"access_token": emu["token"]})
    seen, started = {}, time.monotonic()

    resources = ResourceManagementClient(credentials, emu["subscription_id"], base_url=emu["arm_url"])
    resources.config.connection.verify = emu["ca_cert"]
    resources.resource_groups.create_or_update(rg, {"location": "eastus"})

    client = batchai.BatchAIManagementClient(credentials=credentials, subscription_id=emu["subscription_id"],
                                             base_url=emu["arm_url"])
    client.config.connection.verify = emu["ca_cert"]
    seen["api_version"] = client.clusters.api_version

    if os.environ.get("FILES"):  # the tutorial's own storage client uploads the script
        from azure.storage.file import FileService
        files = FileService(connection_string=os.environ["FILES"])
        files.create_share(share)
        files.create_directory(share, "mnistcntksample")
        files.create_file_from_text(share, "mnistcntksample", "train.py", os.environ["TRAIN_SCRIPT"])

    parameters = models.ClusterCreateParameters(
        location="eastus",
        vm_size="STANDARD_NC6",
        user_account_settings=models.UserAccountSettings(admin_user_name="demoUser",
                                                         admin_user_password="Dem0Pa55word!"),
        scale_settings=models.ScaleSettings(manual=models.ManualScaleSettings(target_node_count=1)),
        node_setup=models.NodeSetup(mount_volumes=models.MountVolumes(azure_file_shares=[
            models.AzureFileShareReference(
                account_name=emu["account_name"],
                credentials=models.AzureStorageCredentialsInfo(account_key=emu["account_key"]),
                azure_file_url="{}/{}".format(emu["files_url"], share),
                relative_mount_path="azurefileshare")])))
    client.clusters.create(rg, "mycluster", parameters).result()
    while True:
        cluster = client.clusters.get(rg, "mycluster")
        if cluster.allocation_state == models.AllocationState.steady and cluster.node_state_counts.idle_node_count:
            break
        time.sleep(0.2)
    seen["cluster"] = "Cluster state: {0} Target: {1}; Allocated: {2}; Idle: {3}".format(
        cluster.allocation_state.name, cluster.scale_settings.manual.target_node_count, cluster.current_node_count,
        cluster.node_state_counts.idle_node_count)
    seen["cluster_location"] = cluster.location

    parameters = models.JobCreateParameters(
        location="eastus",
        cluster=models.ResourceId(id=cluster.id),
        node_count=1,
        input_directories=[models.InputDirectory(id="SAMPLE",
                                                 path="$AZ_BATCHAI_MOUNT_ROOT/azurefileshare/mnistcntksample")],
        std_out_err_path_prefix="$AZ_BATCHAI_MOUNT_ROOT/azurefileshare",
        output_directories=[models.OutputDirectory(id="MODEL", path_prefix="$AZ_BATCHAI_MOUNT_ROOT/azurefileshare",
                                                   path_suffix="Models")],
        container_settings=models.ContainerSettings(image_source_registry=models.ImageSourceRegistry(
            image="microsoft/cntk:2.1-gpu-python3.5-cuda8.0-cudnn6.0")),
        cntk_settings=models.CNTKsettings(python_script_file_path="$AZ_BATCHAI_INPUT_SAMPLE/train.py",
                                          command_line_args="$AZ_BATCHAI_INPUT_SAMPLE $AZ_BATCHAI_OUTPUT_MODEL"))
    job = client.jobs.create(rg, "myjob", parameters).result()
    seen["job_priority"] = job.priority
    while True:
        job = client.jobs.get(rg, "myjob")
        if job.execution_state in (models.ExecutionState.succeeded, models.ExecutionState.failed):
            break
        time.sleep(0.2)
    seen["execution_state"] = job.execution_state.name

    seen["outputs"] = {}
    for directory in ("stdouterr", "MODEL"):
        files = client.jobs.list_output_files(rg, "myjob", models.JobsListOutputFilesOptions(
            outputdirectoryid=directory))
        seen["outputs"][directory] = {f.name: requests.get(f.download_url, timeout=30).text
                                      for f in files if f.download_url}
    seen["clusters"] = [c.name for c in client.clusters.list()]
    seen["clusters_in_group"] = [c.name for c in client.clusters.list_by_resource_group(rg)]
    seen["jobs"] = [j.name for j in client.jobs.list()]
    seen["jobs_in_group"] = [j.name for j in client.jobs.list_by_resource_group(rg)]
    if hasattr(client, "usage"):
        seen["usages"] = {u.name.value: u.current_value for u in client.usage.list("eastus")}

    client.jobs.delete(rg, "myjob").result()
    client.clusters.delete(rg, "mycluster").result()
    seen["left"] = [c.name for c in client.clusters.list()] + [j.name for j in client.jobs.list()]
    seen["seconds"] = round(time.monotonic() - started, 2)
    print(json.dumps(seen))
''')

TRAIN_SCRIPT = textwrap.dedent('''
    import os, sys
    print("reading", sorted(os.listdir(sys.argv[1])))
    with open(os.path.join(sys.argv[2], "model.txt"), "w") as model:
        model.write("trained")
    print("Final Results: errs = 0.00%", file=sys.stderr)
''')


def run_tutorial_flow(emulator, share_service, stack: str) -> dict:
    """The flow with ``stack``'s SDKs; the 2017 stack uploads the script with its own azure-storage-file
    2.1.0, the 2018-03 stack (which has no File client) gets the share made here."""
    python = legacy_python(stack)
    env = {"GROUP": RG, "SHARE": SHARE, "TRAIN_SCRIPT": TRAIN_SCRIPT}
    if stack == "2017":
        env["FILES"] = emulator.files_connection_string
    else:
        share_service.create_share(SHARE)
        directory = share_service.get_share_client(SHARE).create_directory("mnistcntksample")
        directory.upload_file("train.py", TRAIN_SCRIPT.encode())
    env["EMULATOR"] = json.dumps({key: getattr(emulator, key) for key in (
        "token", "subscription_id", "arm_url", "ca_cert", "files_url", "account_name", "account_key")})
    result = run_client(python, CLIENT_FLOW, env)
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_azure_mgmt_batchai_0_2_0_runs_the_2017_tutorial(emulator, share_service):
    seen = run_tutorial_flow(emulator, share_service, "2017")
    assert seen["api_version"] == PREVIEW
    assert seen["cluster"] == "Cluster state: steady Target: 1; Allocated: 1; Idle: 1"
    assert seen["cluster_location"] == "eastus" and seen["job_priority"] == 0
    assert seen["execution_state"] == "succeeded"
    assert "Final Results" in seen["outputs"]["stdouterr"]["stderr.txt"]
    assert "train.py" in seen["outputs"]["stdouterr"]["stdout.txt"]
    assert seen["outputs"]["MODEL"] == {"model.txt": "trained"}
    assert (seen["clusters"], seen["clusters_in_group"]) == (["mycluster"], ["mycluster"])
    assert (seen["jobs"], seen["jobs_in_group"]) == (["myjob"], ["myjob"])
    assert seen["left"] == [] and "usages" not in seen


def test_azure_mgmt_batchai_1_0_1_speaks_2018_03_01(emulator, share_service):
    seen = run_tutorial_flow(emulator, share_service, "2018-03")
    assert seen["api_version"] == V2018_03
    assert seen["execution_state"] == "succeeded"
    assert seen["outputs"]["MODEL"] == {"model.txt": "trained"}
    assert "Final Results" in seen["outputs"]["stdouterr"]["stderr.txt"]
    assert (seen["jobs"], seen["clusters_in_group"]) == (["myjob"], ["mycluster"])
    assert seen["usages"] and all(isinstance(value, int) for value in seen["usages"].values())
    assert seen["left"] == []


def test_azure_storage_file_2_1_0_reaches_the_emulator(emulator):
    """The tutorial's own storage client (FileService of 2017) through the emulator's connection string."""
    python = legacy_python("2017")
    script = textwrap.dedent('''
        import os
        from azure.storage.file import FileService
        service = FileService(connection_string=os.environ["FILES"])
        service.create_share("batchaiquickstart")
        service.create_directory("batchaiquickstart", "mnistcntksample")
        service.create_file_from_text("batchaiquickstart", "mnistcntksample", "ConvNet_MNIST.py", "print(1)\\n")
        print([s.name for s in service.list_shares()],
              service.get_file_to_text("batchaiquickstart", "mnistcntksample", "ConvNet_MNIST.py").content)
    ''')
    result = run_client(python, script, {"FILES": emulator.files_connection_string})
    assert result.stdout.strip() == "['batchaiquickstart'] print(1)"


FILE_SERVER_FLOW = textwrap.dedent('''
    import json, os
    from msrest.authentication import BasicTokenAuthentication
    import azure.mgmt.batchai as batchai
    import azure.mgmt.batchai.models as models

    emu = json.loads(os.environ["EMULATOR"])
    client = batchai.BatchAIManagementClient(BasicTokenAuthentication({"access_token": emu["token"]}),
                                             emu["subscription_id"], base_url=emu["arm_url"])
    client.config.connection.verify = emu["ca_cert"]
    server = client.file_servers.create(os.environ["GROUP"], "myfs", models.FileServerCreateParameters(
        location="eastus", vm_size="STANDARD_D1",
        ssh_configuration=models.SshConfiguration(user_account_settings=models.UserAccountSettings(
            admin_user_name="demoUser", admin_user_password="Dem0Pa55word!")),
        data_disks=models.DataDisks(disk_size_in_gb=10, disk_count=2, storage_account_type="Standard_LRS"))).result()
    listed = [s.name for s in client.file_servers.list_by_resource_group(os.environ["GROUP"])]
    client.file_servers.delete(os.environ["GROUP"], "myfs").result()
    print(json.dumps({"state": server.provisioning_state.name, "type": server.mount_settings.file_server_type,
                      "listed": listed, "left": [s.name for s in client.file_servers.list()]}))
''')


def test_old_clients_poll_a_202(emulator, group, monkeypatch):
    """With no wait on the server, every old PUT and DELETE of a file server is a 202 that
    azure-mgmt-batchai 0.2.0 polls (Retry-After: 1, not its 30 s default)."""
    import emulator.batchai.legacy as legacy

    monkeypatch.setattr(legacy, "LRO_WAIT_SECONDS", 0)
    server = {"location": "eastus", "properties": {
        "vmSize": "STANDARD_D1", "sshConfiguration": {"userAccountSettings": {"adminUserName": "admin",
                                                                              "adminUserPassword": "Pa55word!"}},
        "dataDisks": {"diskSizeInGB": 10, "diskCount": 2, "storageAccountType": "Standard_LRS"}}}
    response = call(emulator, "PUT", group_path(emulator, "fileServers", "fs0"), PREVIEW, json=server)
    assert response.status_code == 202 and response.headers["Retry-After"] == "1"
    for header in ("Azure-AsyncOperation", "Location"):
        assert response.headers[header].startswith(emulator.arm_url)
        assert response.headers[header].endswith("?api-version=" + PREVIEW)
    status = requests.get(response.headers["Azure-AsyncOperation"], verify=emulator.ca_cert, timeout=10,
                          headers={"Authorization": "Bearer " + emulator.token})
    assert status.json()["status"] in ("InProgress", "Succeeded")
    assert (status.headers.get("Retry-After") == "1") == (status.json()["status"] == "InProgress")

    described = {key: getattr(emulator, key) for key in ("token", "subscription_id", "arm_url", "ca_cert")}
    result = run_client(legacy_python("2017"), FILE_SERVER_FLOW, {"EMULATOR": json.dumps(described), "GROUP": RG})
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen == {"state": "succeeded", "type": "nfs", "listed": ["fs0", "myfs"], "left": ["fs0"]}


def test_deleting_the_group_deletes_old_resources(emulator, group, share):
    emu = emulator
    assert call(emu, "PUT", group_path(emu, "clusters", "c1"), PREVIEW, json=cluster_body(emu, share)).ok
    response = call(emu, "DELETE", "/subscriptions/{}/resourcegroups/{}".format(emu.subscription_id, RG),
                    "2017-05-10")
    assert response.status_code in (200, 202), response.text
    for _ in range(300):
        if call(emu, "GET", "/subscriptions/{}/providers/Microsoft.BatchAI/clusters".format(emu.subscription_id),
                PREVIEW).json()["value"] == []:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the group's old clusters outlived it")


def test_every_old_operation_is_routed():
    from emulator import coverage

    for operation, method, path in coverage.OLD_API_OPERATIONS + coverage.OLD_2018_03_ONLY:
        assert coverage.supported(method, path), operation
    assert "21 of the 21 operations of 2017-09-01-preview and 22 of the 22 operations of 2018-03-01" in \
        coverage.table()


def test_paging_remote_logins_and_terminate(emulator, group, share):
    emu = emulator
    for name in ("c1", "c2"):
        assert call(emu, "PUT", group_path(emu, "clusters", name), V2018_03, json=cluster_body(emu, share)).ok
    first = call(emu, "GET", group_path(emu, "clusters"), V2018_03, params={"maxresults": 1}).json()
    assert [c["name"] for c in first["value"]] == ["c1"]
    assert first["nextLink"].startswith(emu.arm_url + group_path(emu, "clusters") + "?")
    second = requests.get(first["nextLink"], headers={"Authorization": "Bearer " + emu.token}, verify=emu.ca_cert,
                          timeout=10).json()
    assert [c["name"] for c in second["value"]] == ["c2"] and "nextLink" not in second

    for _ in range(300):
        logins = call(emu, "POST", group_path(emu, "clusters", "c1", "listRemoteLoginInformation"), PREVIEW).json()
        if logins["value"]:
            break
        time.sleep(0.1)
    assert set(logins["value"][0]) == {"nodeId", "ipAddress", "port"}

    command = "echo one > $AZ_BATCHAI_OUTPUT_MODEL/a.txt; echo two > $AZ_BATCHAI_OUTPUT_MODEL/b.txt; sleep 120"
    assert call(emu, "PUT", group_path(emu, "jobs", "j1"), V2018_03, json=job_body(emu, command)).ok
    for _ in range(600):
        job = call(emu, "GET", group_path(emu, "jobs", "j1"), V2018_03).json()
        page = call(emu, "POST", group_path(emu, "jobs", "j1", "listOutputFiles"), PREVIEW,
                    params={"outputdirectoryid": "MODEL", "maxresults": 1}).json()
        if job["properties"]["executionState"] == "running" and page["value"] and page.get("nextLink"):
            break
        time.sleep(0.1)
    assert [f["name"] for f in page["value"]] == ["a.txt"]
    assert "api-version=" + PREVIEW in page["nextLink"] and "/jobs/j1/listOutputFiles?" in page["nextLink"]
    rest = requests.post(page["nextLink"], headers={"Authorization": "Bearer " + emu.token}, verify=emu.ca_cert,
                         timeout=10).json()  # old clients POST the nextLink
    assert [f["name"] for f in rest["value"]] == ["b.txt"]
    logins = call(emu, "POST", group_path(emu, "jobs", "j1", "listRemoteLoginInformation"), V2018_03).json()
    assert len(logins["value"]) == 1

    response = call(emu, "POST", group_path(emu, "jobs", "j1", "terminate"), V2018_03)
    assert response.status_code in (200, 202)
    if response.status_code == 202:
        assert response.headers["Retry-After"] == "1"
    terminated = wait_job(emu, V2018_03)
    assert terminated["properties"]["executionState"] == "failed"
    assert terminated["properties"]["executionInfo"]["errors"][0]["code"] == "JobTerminated"


def test_a_cluster_mounts_an_old_file_server(emulator, group, share):
    emu = emulator
    server = {"location": "eastus", "properties": {
        "vmSize": "STANDARD_D1", "sshConfiguration": {"userAccountSettings": {"adminUserName": "admin",
                                                                              "adminUserPassword": "Pa55word!"}},
        "dataDisks": {"diskSizeInGB": 10, "diskCount": 2, "storageAccountType": "Standard_LRS"}}}
    assert call(emu, "PUT", group_path(emu, "fileServers", "fs1"), V2018_03, json=server).ok
    for _ in range(200):
        if call(emu, "GET", group_path(emu, "fileServers", "fs1"), V2018_03).json()["properties"][
                "provisioningState"] == "succeeded":
            break
        time.sleep(0.1)
    mount = {"fileServer": {"id": group_path(emu, "fileservers", "fs1")}, "relativeMountPath": "nfs"}
    body = cluster_body(emu, share)
    body["properties"]["nodeSetup"]["mountVolumes"]["fileServers"] = [mount]
    cluster = call(emu, "PUT", group_path(emu, "clusters", "c1"), V2018_03, json=body).json()
    assert cluster["properties"]["nodeSetup"]["mountVolumes"]["fileServers"][0]["fileServer"]["id"] == \
        group_path(emu, "fileservers", "fs1")
    command = "echo shared > $AZ_BATCHAI_MOUNT_ROOT/nfs/note.txt && cat $AZ_BATCHAI_MOUNT_ROOT/nfs/note.txt"
    assert call(emu, "PUT", group_path(emu, "jobs", "j1"), V2018_03, json=job_body(emu, command)).ok
    assert wait_job(emu, V2018_03)["properties"]["executionState"] == "succeeded"


# ---- the mapping itself (emulator/batchai/versions.py) ------------------------------------------------

def test_job_mapping_round_trips():
    from emulator.batchai import versions

    group = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.BatchAI"
    old = {"location": "East US", "tags": {"a": "b"}, "properties": {
        "priority": -7, "experimentName": "exp1", "cluster": {"id": group + "/clusters/c"}, "nodeCount": 1,
        "stdOutErrPathPrefix": "$AZ_BATCHAI_MOUNT_ROOT/afs", "environmentVariables": [{"name": "X"}],
        "outputDirectories": [{"id": "OUT", "pathPrefix": "$AZ_BATCHAI_MOUNT_ROOT/afs", "createNew": False}]}}
    current_cluster = group + "/workspaces/migrated-eastus/clusters/c"
    body, extras, location = versions.job_request(versions.PREVIEW, old, lambda kind, rg, name: current_cluster)
    assert location == "eastus"
    props = body["properties"]
    assert props["schedulingPriority"] == "low" and "priority" not in props and "experimentName" not in props
    assert props["cluster"]["id"] == current_cluster
    assert props["outputDirectories"] == [{"id": "OUT", "pathPrefix": "$AZ_BATCHAI_MOUNT_ROOT/afs"}]
    assert props["environmentVariables"] == [{"name": "X", "value": ""}]
    stored = {"id": group + "/workspaces/migrated-eastus/experiments/migrated/jobs/j", "name": "j",
              "type": "Microsoft.BatchAI/workspaces/experiments/jobs",
              "properties": dict(props, experimentName="migrated", jobOutputDirectoryPathSegment="s/rg/...",
                                 caffe2Settings=None, toolType="custom")}
    shown = versions.resource_response("jobs", versions.PREVIEW, stored, location, extras)
    assert (shown["id"], shown["type"], shown["location"], shown["tags"]) == (
        group + "/jobs/j", "Microsoft.BatchAI/Jobs", "eastus", {"a": "b"})
    assert shown["properties"]["priority"] == -7 and shown["properties"]["experimentName"] == "exp1"
    assert shown["properties"]["cluster"]["id"] == group + "/clusters/c"
    assert shown["properties"]["outputDirectories"][0]["type"] == "custom"
    assert shown["properties"]["outputDirectories"][0]["createNew"] is False
    for absent in ("schedulingPriority", "jobOutputDirectoryPathSegment", "caffe2Settings"):
        assert absent not in shown["properties"]
    assert "jobOutputDirectoryPathSegment" in versions.resource_response(
        "jobs", versions.V2018_03, stored, location, extras)["properties"]


def test_output_files_and_links_per_version():
    from emulator.batchai import versions

    entries = [{"name": "logs", "fileType": "directory"},
               {"name": "a.txt", "fileType": "file", "downloadUrl": "u", "properties": {"contentLength": 1}}]
    assert versions.output_files(versions.PREVIEW, entries) == [
        {"name": "a.txt", "downloadUrl": "u", "properties": {"contentLength": 1}}]
    assert versions.output_files(versions.V2018_03, entries) == [
        {"name": "logs", "isDirectory": True},
        {"name": "a.txt", "isDirectory": False, "downloadUrl": "u", "properties": {"contentLength": 1}}]
    link = "https://h:1/subscriptions/s/resourceGroups/rg/providers/Microsoft.BatchAI/workspaces/migrated-eastus/" \
           "experiments/migrated/jobs/j/listOutputFiles?outputdirectoryid=X&api-version=2018-05-01&%24skiptoken=a"
    assert versions.old_link(link, "/subscriptions/s/resourceGroups/rg/providers/Microsoft.BatchAI/jobs/j/"
                                   "listOutputFiles", versions.PREVIEW) == \
        "https://h:1/subscriptions/s/resourceGroups/rg/providers/Microsoft.BatchAI/jobs/j/listOutputFiles?" \
        "outputdirectoryid=X&%24skiptoken=a&api-version=2017-09-01-preview"
    assert versions.with_api_version("https://h/x?api-version=2018-05-01", versions.V2018_03) == \
        "https://h/x?api-version=2018-03-01"
