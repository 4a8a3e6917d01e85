"""Batch AI workspaces, experiments and clusters on the emulator, through azure-mgmt-batchai 7.0.0:
CRUD and the fields the SDK deserializes, cluster allocation states, scaling, errors, secrets
never echoed, LRO headers and timing."""
from __future__ import annotations

import json
import time

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.batchai import models

from test_jobs import (EXP, MOUNT, RG, WS, file_share_reference, job_parameters, make_cluster, make_share,
                       make_workspace, submit, wait_for)

PASSWORD, SSH_KEY, SECRET = "Adm1n-Pa55word!", "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC0 test@example", "setup-s3cret"


def raw(emulator, method: str, path: str, api_version: str = "2018-05-01", **kwargs) -> requests.Response:
    """A request as any HTTP client would send it, to see status, headers and the JSON as sent."""
    headers = {"Authorization": "Bearer " + emulator.token, **kwargs.pop("headers", {})}
    return requests.request(method, "{}{}?api-version={}".format(emulator.arm_url, path, api_version),
                            headers=headers, verify=emulator.ca_cert, timeout=10, **kwargs)


def provider_path(emulator, *parts: str) -> str:
    return "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.BatchAI/{}".format(
        emulator.subscription_id, RG, "/".join(parts))


@pytest.fixture
def workspace(resource_client, batchai_client):
    make_workspace(resource_client, batchai_client)


# ---- workspaces and experiments -----------------------------------------------------------------

def test_workspace_crud(resource_client, batchai_client, emulator):
    resource_client.resource_groups.create_or_update(RG, {"location": "eastus"})
    start = time.monotonic()
    workspace = batchai_client.workspaces.begin_create(
        RG, WS, models.WorkspaceCreateParameters(location="East US", tags={"team": "ml"})).result()
    assert time.monotonic() - start < 1
    assert workspace.id == provider_path(emulator, "workspaces", WS)
    assert (workspace.name, workspace.type, workspace.location) == (WS, "Microsoft.BatchAI/workspaces", "eastus")
    assert workspace.provisioning_state == "succeeded" and workspace.tags == {"team": "ml"}
    assert workspace.creation_time and workspace.provisioning_state_transition_time
    assert raw(emulator, "PUT", workspace.id, json={"location": "eastus"}).status_code == 200  # synchronous

    assert batchai_client.workspaces.get(RG, WS).id == workspace.id
    assert [w.name for w in batchai_client.workspaces.list()] == [WS]
    assert [w.name for w in batchai_client.workspaces.list_by_resource_group(RG)] == [WS]
    updated = batchai_client.workspaces.update(RG, WS, models.WorkspaceUpdateParameters(tags={"team": "ai"}))
    assert updated.tags == {"team": "ai"}

    response = raw(emulator, "DELETE", workspace.id)
    assert response.status_code == 202 and not response.content
    batchai_client.workspaces.begin_delete(RG, WS).result()  # 202 while it is deleting, then 204: gone
    assert raw(emulator, "DELETE", workspace.id).status_code == 204
    with pytest.raises(ResourceNotFoundError) as caught:
        batchai_client.workspaces.get(RG, WS)
    assert caught.value.error.code == "WorkspaceNotFound"


def test_experiment_crud(batchai_client, workspace, emulator):
    experiment = batchai_client.experiments.get(RG, WS, EXP)
    assert experiment.id == provider_path(emulator, "workspaces", WS, "experiments", EXP)
    assert experiment.type == "Microsoft.BatchAI/workspaces/experiments"
    assert experiment.provisioning_state == "succeeded" and experiment.creation_time
    batchai_client.experiments.begin_create(RG, WS, "second").result()
    assert batchai_client.experiments.begin_create(RG, WS, EXP).result().id == experiment.id  # idempotent
    assert [e.name for e in batchai_client.experiments.list_by_workspace(RG, WS)] == [EXP, "second"]
    batchai_client.experiments.begin_delete(RG, WS, "second").result()
    with pytest.raises(ResourceNotFoundError) as caught:
        batchai_client.experiments.get(RG, WS, "second")
    assert caught.value.error.code == "ExperimentNotFound"
    with pytest.raises(ResourceNotFoundError) as caught:
        batchai_client.experiments.begin_create(RG, "nows", EXP).result()
    assert caught.value.error.code == "WorkspaceNotFound"


def test_list_paging(batchai_client, workspace):
    for index in range(5):
        batchai_client.experiments.begin_create(RG, WS, "e{}".format(index)).result()
    pages = batchai_client.experiments.list_by_workspace(
        RG, WS, models.ExperimentsListByWorkspaceOptions(max_results=2)).by_page()
    assert [[e.name for e in page] for page in pages] == [["e0", "e1"], ["e2", "e3"], ["e4", EXP]]


# ---- clusters -----------------------------------------------------------------------------------

def test_cluster_allocation_scaling_and_fields(batchai_client, workspace, share_service, emulator):
    make_share(share_service)
    start = time.monotonic()
    cluster = make_cluster(batchai_client, emulator, nodes=2, wait=False)
    assert time.monotonic() - start < 1  # the operation is done once the cluster is recorded
    assert cluster.provisioning_state == "succeeded"
    seen = []

    def observe(current):
        counts = current.node_state_counts
        seen.append((current.allocation_state, current.current_node_count, counts.preparing_node_count,
                     counts.idle_node_count))
        return current if current.allocation_state == "steady" else None

    def watch():
        return observe(batchai_client.clusters.get(RG, WS, "cluster"))

    observe(cluster)  # the LRO's final GET: allocation has just begun

    cluster = wait_for(watch, timeout=5, interval=0.005)
    assert ("resizing", 0, 0, 0) in seen and ("resizing", 2, 2, 0) in seen, seen
    assert seen[-1] == ("steady", 2, 0, 2)
    assert cluster.id == provider_path(emulator, "workspaces", WS, "clusters", "cluster")
    assert cluster.type == "Microsoft.BatchAI/workspaces/clusters"
    assert (cluster.vm_size, cluster.vm_priority) == ("STANDARD_NC6", "dedicated")
    assert cluster.scale_settings.manual.target_node_count == 2
    assert cluster.scale_settings.manual.node_deallocation_option == "requeue"
    assert cluster.virtual_machine_configuration.image_reference.publisher
    assert cluster.user_account_settings.admin_user_name == "demo"
    assert cluster.user_account_settings.admin_user_password is None
    share = cluster.node_setup.mount_volumes.azure_file_shares[0]
    assert (share.relative_mount_path, share.credentials.account_key) == (MOUNT, None)
    assert cluster.errors is None and cluster.creation_time and cluster.allocation_state_transition_time
    counts = cluster.node_state_counts
    assert (counts.running_node_count, counts.unusable_node_count, counts.leaving_node_count) == (0, 0, 0)

    logins = list(batchai_client.clusters.list_remote_login_information(RG, WS, "cluster"))
    assert [(login.ip_address, login.port) for login in logins] == [("127.0.0.1", 50000), ("127.0.0.1", 50001)]
    assert len({login.node_id for login in logins}) == 2 and logins[0].node_id.startswith("tvm-")

    shrunk = batchai_client.clusters.update(RG, WS, "cluster", models.ClusterUpdateParameters(
        scale_settings=models.ScaleSettings(manual=models.ManualScaleSettings(target_node_count=1))))
    assert shrunk.allocation_state == "resizing" and shrunk.scale_settings.manual.target_node_count == 1
    cluster = wait_for(lambda: watch() and batchai_client.clusters.get(RG, WS, "cluster"))
    assert (cluster.current_node_count, cluster.node_state_counts.idle_node_count) == (1, 1)
    batchai_client.clusters.update(RG, WS, "cluster", models.ClusterUpdateParameters(
        scale_settings=models.ScaleSettings(auto_scale=models.AutoScaleSettings(
            minimum_node_count=0, maximum_node_count=4, initial_node_count=3))))
    cluster = wait_for(lambda: watch() and batchai_client.clusters.get(RG, WS, "cluster"))
    assert cluster.current_node_count == 3 and cluster.scale_settings.auto_scale.maximum_node_count == 4
    assert [c.name for c in batchai_client.clusters.list_by_workspace(RG, WS)] == ["cluster"]

    batchai_client.clusters.begin_delete(RG, WS, "cluster").result()
    with pytest.raises(ResourceNotFoundError) as caught:
        batchai_client.clusters.get(RG, WS, "cluster")
    assert caught.value.error.code == "ClusterNotFound"


def test_mount_failure_makes_nodes_unusable(batchai_client, workspace, share_service, emulator):
    make_share(share_service)
    volumes = models.MountVolumes(azure_file_shares=[
        file_share_reference(emulator, key="d3Jvbmcta2V5LXdyb25nLWtleQ==")])
    cluster = make_cluster(batchai_client, emulator, "badkey", mount_volumes=volumes)
    assert (cluster.current_node_count, cluster.node_state_counts.unusable_node_count) == (1, 1)
    assert [error.code for error in cluster.errors] == ["AZFMountError"]
    assert "Permission denied" in cluster.errors[0].details[0].value

    volumes = models.MountVolumes(azure_file_shares=[file_share_reference(emulator, share="missing")])
    cluster = make_cluster(batchai_client, emulator, "noshare", mount_volumes=volumes)
    assert cluster.node_state_counts.unusable_node_count == 1
    assert "there is no share 'missing'" in cluster.errors[0].details[0].value
    # A job on an unusable cluster waits; it does not fail.
    submit(batchai_client, "waits", job_parameters(cluster.id, "true"))
    time.sleep(0.2)
    assert batchai_client.jobs.get(RG, WS, EXP, "waits").execution_state == "queued"


def test_setup_task_runs_with_variables_and_secrets(batchai_client, workspace, share_service, emulator):
    share = make_share(share_service)
    setup = models.SetupTask(
        command_line="echo $GREETING $TOKEN > $AZ_BATCHAI_MOUNT_ROOT/{}/setup-ran.txt".format(MOUNT),
        environment_variables=[models.EnvironmentVariable(name="GREETING", value="hi")],
        secrets=[models.EnvironmentVariableWithSecretValue(name="TOKEN", value=SECRET)],
        std_out_err_path_prefix="$AZ_BATCHAI_MOUNT_ROOT/" + MOUNT)
    cluster = make_cluster(batchai_client, emulator, setup_task=setup)
    assert cluster.node_state_counts.idle_node_count == 1
    assert share.get_file_client("setup-ran.txt").download_file().readall() == "hi {}\n".format(SECRET).encode()
    task = cluster.node_setup.setup_task
    assert task.std_out_err_path_suffix.startswith("{}/{}/workspaces/{}/clusters/cluster/".format(
        emulator.subscription_id, RG, WS))
    assert [(s.name, s.value) for s in task.secrets] == [("TOKEN", None)]
    node_id = next(iter(batchai_client.clusters.list_remote_login_information(RG, WS, "cluster"))).node_id
    node_logs = {f["name"] for f in share.get_directory_client(task.std_out_err_path_suffix)
                 .list_directories_and_files()}
    assert {"stdout-{}.txt".format(node_id), "stderr-{}.txt".format(node_id)} <= node_logs  # as the service wrote

    failing = models.SetupTask(command_line="exit 7", std_out_err_path_prefix="$AZ_BATCHAI_MOUNT_ROOT/" + MOUNT)
    cluster = make_cluster(batchai_client, emulator, "broken", setup_task=failing)
    assert cluster.node_state_counts.unusable_node_count == 1
    assert cluster.errors[0].code == "SetupTaskFailed" and "exited with code 7" in cluster.errors[0].message


# ---- errors -------------------------------------------------------------------------------------

@pytest.mark.parametrize("call, kind, bad", [
    (lambda c: c.workspaces.begin_create(RG, "bad name!", models.WorkspaceCreateParameters(location="eastus")),
     "workspace", "bad name!"),
    (lambda c: c.experiments.begin_create(RG, WS, "x" * 65), "experiment", "x" * 65),
    (lambda c: c.clusters.get(RG, WS, "dots.not.allowed"), "cluster", "dots.not.allowed"),
    (lambda c: c.jobs.get(RG, WS, EXP, "a/b"), "job", "a/b"),
])
def test_invalid_names_are_refused_clearly(batchai_client, workspace, call, kind, bad):
    with pytest.raises(HttpResponseError) as caught:
        result = call(batchai_client)
        getattr(result, "result", lambda: None)()
    if kind == "job":  # '/' splits the path: no route matches, as with the real service
        assert caught.value.status_code == 404
        return
    assert caught.value.status_code == 400
    assert caught.value.error.code == "InvalidParameter"
    assert caught.value.error.message == \
        "The {} name '{}' is invalid: use 1-64 letters, digits, '-' or '_'.".format(kind, bad)


def test_not_found_errors(batchai_client, resource_client, workspace):
    cases = [
        (lambda: batchai_client.workspaces.get("nosuchgroup", WS), "ResourceGroupNotFound",
         "Resource group 'nosuchgroup' could not be found."),
        (lambda: batchai_client.workspaces.get(RG, "nows"), "WorkspaceNotFound",
         "The specified workspace nows is not found"),
        (lambda: batchai_client.clusters.get(RG, WS, "nocluster"), "ClusterNotFound",
         "The specified managed compute cluster nocluster is not found"),
        (lambda: batchai_client.jobs.get(RG, WS, EXP, "myjob"), "JobNotFound", "The specified job myjob is not found"),
        (lambda: batchai_client.jobs.begin_terminate(RG, WS, EXP, "myjob").result(), "JobNotFound",
         "The specified job myjob is not found"),
    ]
    for call, code, message in cases:
        with pytest.raises(ResourceNotFoundError) as caught:
            call()
        assert (caught.value.error.code, caught.value.error.message) == (code, message)


def test_other_api_versions_are_refused(workspace, emulator):
    response = raw(emulator, "GET", provider_path(emulator, "workspaces", WS), api_version="2017-09-01-preview")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "NoRegisteredProviderFound" and "'2018-05-01'" in error["message"]


def test_job_bodies_are_validated(batchai_client, workspace, share_service, emulator, resource_client):
    make_share(share_service)
    cluster = make_cluster(batchai_client, emulator, nodes=1)
    batchai_client.workspaces.begin_create(RG, "other", models.WorkspaceCreateParameters(location="eastus")).result()
    foreign = make_cluster(batchai_client, emulator, "foreign", ws="other", wait=False)
    cases = [
        (job_parameters(cluster.id), "exactly one toolkit"),
        (job_parameters(cluster.id, "true", cntk_settings=models.CNTKsettings(python_script_file_path="x.py")),
         "exactly one toolkit"),
        (job_parameters(provider_path(emulator, "workspaces", WS, "clusters", "ghost"), "true"), "does not exist"),
        (job_parameters(foreign.id, "true"), "is not a cluster of workspace ws"),
        (job_parameters(cluster.id, "true", node_count=2), "asks for 2 node(s)"),
        (job_parameters(cluster.id, "true", std_out_err_path_prefix=None), "stdOutErrPathPrefix"),
        (job_parameters(cluster.id, "true", input_directories=[models.InputDirectory(id="bad id", path="/x")]),
         "letters, digits and '_'"),
        (job_parameters(cluster.id, "true", mount_volumes=models.MountVolumes(azure_blob_file_systems=[
            models.AzureBlobFileSystemReference(account_name="a", container_name="c", relative_mount_path="b",
                                                credentials=models.AzureStorageCredentialsInfo())])),
         "accountKey"),
        (job_parameters(cluster.id, "true", mount_volumes=models.MountVolumes(file_servers=[
            models.FileServerReference(file_server=models.ResourceId(id="x"), relative_mount_path="b")])),
         "file servers on clusters only"),
    ]
    for parameters, message in cases:
        with pytest.raises(HttpResponseError) as caught:
            submit(batchai_client, "invalid", parameters)
        assert caught.value.status_code == 400, message
        assert message in caught.value.error.message
    body = {"properties": {"cluster": {"id": cluster.id}, "nodeCount": 1,
                           "stdOutErrPathPrefix": "$AZ_BATCHAI_MOUNT_ROOT",
                           "customToolkitSettings": {"commandLine": "true"}}}
    path = provider_path(emulator, "workspaces", WS, "experiments", EXP, "jobs", "raw")
    assert raw(emulator, "PUT", path, json=body).status_code == 202
    assert raw(emulator, "PUT", path, json=body).status_code == 202  # the same PUT again is fine
    for change, message in (({"nodeCount": 0}, "nodeCount"),
                            ({"constraints": {"maxWallClockTime": "soon"}}, "ISO-8601"),
                            ({"schedulingPriority": "urgent"}, "schedulingPriority")):
        response = raw(emulator, "PUT", path, json={"properties": {**body["properties"], **change}})
        assert response.status_code == 400 and message in response.json()["error"]["message"]
    body["properties"]["nodeCount"] = 1
    body["properties"]["customToolkitSettings"]["commandLine"] = "false"
    assert raw(emulator, "PUT", path, json=body).status_code == 409  # jobs cannot be changed


def test_responses_never_contain_secrets(batchai_client, workspace, share_service, emulator):
    make_share(share_service)
    setup = models.SetupTask(command_line="true", std_out_err_path_prefix="$AZ_BATCHAI_MOUNT_ROOT/" + MOUNT,
                             secrets=[models.EnvironmentVariableWithSecretValue(name="SETUP_SECRET", value=SECRET)])
    cluster = make_cluster(batchai_client, emulator, setup_task=setup, wait=False)
    batchai_client.clusters.begin_create(RG, WS, "withkey", models.ClusterCreateParameters(
        vm_size="STANDARD_NC6", scale_settings=models.ScaleSettings(manual=models.ManualScaleSettings(
            target_node_count=0)),
        user_account_settings=models.UserAccountSettings(admin_user_name="demo", admin_user_password=PASSWORD,
                                                         admin_user_ssh_public_key=SSH_KEY))).result()
    job = job_parameters(
        cluster.id, "true",
        secrets=[models.EnvironmentVariableWithSecretValue(name="JOB_SECRET", value="job-" + SECRET)],
        mount_volumes=models.MountVolumes(azure_file_shares=[file_share_reference(emulator, mount="again")]),
        container_settings=models.ContainerSettings(image_source_registry=models.ImageSourceRegistry(
            image="private/image", server_url="registry.example", credentials=models.PrivateRegistryCredentials(
                username="registry-user", password="registry-" + SECRET))))
    submit(batchai_client, "secretive", job)
    jobs_path = provider_path(emulator, "workspaces", WS, "experiments", EXP, "jobs")
    clusters_path = provider_path(emulator, "workspaces", WS, "clusters")
    paths = [clusters_path, clusters_path + "/cluster", jobs_path, jobs_path + "/secretive"]
    for path in paths:
        text = raw(emulator, "GET", path).text
        for secret in (PASSWORD, SECRET, emulator.account_key, "adminUserPassword"):
            assert secret not in text, (path, secret)
    withkey = batchai_client.clusters.get(RG, WS, "withkey")
    assert withkey.user_account_settings.admin_user_ssh_public_key == SSH_KEY  # public: returned
    returned = json.loads(raw(emulator, "GET", jobs_path + "/secretive").text)["properties"]
    assert returned["secrets"] == [{"name": "JOB_SECRET"}]
    assert returned["mountVolumes"]["azureFileShares"][0]["credentials"] == {}
    assert returned["containerSettings"]["imageSourceRegistry"]["credentials"] == {"username": "registry-user"}


# ---- long-running operations --------------------------------------------------------------------

def test_lro_headers_and_timing(batchai_client, workspace, share_service, emulator):
    make_share(share_service)
    body = {"properties": {"vmSize": "STANDARD_NC6", "userAccountSettings": {"adminUserName": "demo"},
                           "scaleSettings": {"manual": {"targetNodeCount": 0}}}}
    response = raw(emulator, "PUT", provider_path(emulator, "workspaces", WS, "clusters", "rawcluster"), json=body)
    assert response.status_code == 202 and not response.content
    assert response.headers["Retry-After"] == "0"  # old clients poll at once; azure-core keeps polling_interval
    operation_base = "{}/subscriptions/{}/providers/Microsoft.BatchAI/locations/eastus/".format(
        emulator.arm_url, emulator.subscription_id)
    assert response.headers["Azure-AsyncOperation"].startswith(operation_base + "operationresults/")
    assert response.headers["Location"].startswith(operation_base + "operationstatuses/")
    for header in ("Azure-AsyncOperation", "Location"):
        status = requests.get(response.headers[header], headers={"Authorization": "Bearer " + emulator.token},
                              verify=emulator.ca_cert, timeout=10)
        assert status.status_code == 200 and status.json()["status"] == "Succeeded"
        assert status.json()["properties"]["resourceId"] == "{}$rg$ws$rawcluster".format(emulator.subscription_id)

    timings = {}
    start = time.monotonic()
    cluster = make_cluster(batchai_client, emulator, wait=False)
    timings["cluster"] = time.monotonic() - start
    start = time.monotonic()
    submit(batchai_client, "quick", job_parameters(cluster.id, "true"))
    timings["job"] = time.monotonic() - start
    start = time.monotonic()
    batchai_client.jobs.begin_terminate(RG, WS, EXP, "quick").result()
    batchai_client.jobs.begin_delete(RG, WS, EXP, "quick").result()
    batchai_client.clusters.begin_delete(RG, WS, "cluster").result()
    timings["terminate+delete"] = time.monotonic() - start
    assert max(timings.values()) < 1, timings
