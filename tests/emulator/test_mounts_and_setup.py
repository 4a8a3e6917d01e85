"""Where node setup tasks write their output, and what clusters and jobs mount, through
azure-mgmt-batchai 7.0.0 against the emulator, as the service behaved (the Azure SDK's recorded
Batch AI scenarios)."""
from __future__ import annotations

import pytest
import requests
from azure.core.exceptions import HttpResponseError
from azure.mgmt.batchai import models

from test_jobs import (MOUNT, RG, WS, file_share_reference, job_parameters, make_cluster, make_share, make_workspace,
                       output_files, read_output, submit, wait_for_state)


@pytest.fixture
def workspace(resource_client, batchai_client):
    make_workspace(resource_client, batchai_client)


def node_ids(batchai_client, cluster: str = "cluster") -> list:
    return sorted(n.node_id for n in batchai_client.clusters.list_remote_login_information(RG, WS, cluster))


def test_setup_task_output_is_per_node_files_under_the_path_segment(batchai_client, workspace, share_service,
                                                                     emulator):
    """test_setup_task_execution: stdout-<nodeId>.txt and stderr-<nodeId>.txt directly in the folder the
    service reported as stdOutErrPathSuffix, below stdOutErrPathPrefix."""
    share = make_share(share_service)
    setup = models.SetupTask(command_line="echo setup task; echo oops >&2",
                             std_out_err_path_prefix="$AZ_BATCHAI_MOUNT_ROOT/" + MOUNT)
    cluster = make_cluster(batchai_client, emulator, nodes=2, setup_task=setup)
    assert cluster.node_state_counts.idle_node_count == 2
    folder = share.get_directory_client(cluster.node_setup.setup_task.std_out_err_path_suffix)
    names = {entry["name"]: entry["is_directory"] for entry in folder.list_directories_and_files()}
    assert not any(names.values())  # files only: no folder per node
    for node_id in node_ids(batchai_client):
        assert folder.get_file_client("stdout-{}.txt".format(node_id)).download_file().readall() == b"setup task\n"
        assert folder.get_file_client("stderr-{}.txt".format(node_id)).download_file().readall() == b"oops\n"


def test_failed_setup_task_error_names_the_output_folder(batchai_client, workspace, share_service, emulator):
    make_share(share_service)
    setup = models.SetupTask(command_line="exit 3", std_out_err_path_prefix="$AZ_BATCHAI_MOUNT_ROOT/" + MOUNT)
    cluster = make_cluster(batchai_client, emulator, setup_task=setup)
    assert cluster.node_state_counts.unusable_node_count == 1
    error = cluster.errors[0]
    assert error.code == "SetupTaskFailed" and "exited with code 3" in error.message
    folder = [d.value for d in error.details if d.name == "StdOutErrDir"][0]
    assert folder == "$AZ_BATCHAI_MOUNT_ROOT/{}/{}".format(MOUNT, cluster.node_setup.setup_task.std_out_err_path_suffix)


# ---- clusters mounting file servers -------------------------------------------------------------

def make_file_server(batchai_client, name: str = "nfs") -> models.FileServer:
    return batchai_client.file_servers.begin_create(RG, WS, name, models.FileServerCreateParameters(
        vm_size="STANDARD_D1",
        ssh_configuration=models.SshConfiguration(user_account_settings=models.UserAccountSettings(
            admin_user_name="demoUser", admin_user_password="Dem0Pa$$w0rd")),
        data_disks=models.DataDisks(disk_size_in_gb=10, disk_count=2, storage_account_type="Standard_LRS"))).result()


def file_server_mount(server_id: str, mount: str = "nfs", source: str = None) -> models.FileServerReference:
    return models.FileServerReference(file_server=models.ResourceId(id=server_id), relative_mount_path=mount,
                                      source_directory=source, mount_options="rw")


def test_cluster_nodes_share_a_file_servers_export(batchai_client, workspace, share_service, emulator):
    share = make_share(share_service)
    server = make_file_server(batchai_client)
    assert server.mount_settings.mount_point == "/data"
    volumes = models.MountVolumes(azure_file_shares=[file_share_reference(emulator)],
                                  file_servers=[file_server_mount(server.id)])
    # Each node's setup task leaves a file in the export; a job on one node then sees both.
    setup = models.SetupTask(command_line="mktemp $AZ_BATCHAI_MOUNT_ROOT/nfs/node.XXXXXX",
                             std_out_err_path_prefix="$AZ_BATCHAI_MOUNT_ROOT/" + MOUNT)
    cluster = make_cluster(batchai_client, emulator, nodes=2, mount_volumes=volumes, setup_task=setup)
    assert cluster.node_state_counts.idle_node_count == 2
    assert cluster.node_setup.mount_volumes.file_servers[0].file_server.id == server.id
    submit(batchai_client, "list", job_parameters(cluster.id, "ls $AZ_BATCHAI_MOUNT_ROOT/nfs", node_count=2))
    job = wait_for_state(batchai_client, "list", timeout=30)
    assert job.execution_state == "succeeded", job.execution_info
    listed = read_output(batchai_client, "list", "stdout.txt").split()
    assert len(listed) == 2 and all(name.startswith("node.") for name in listed)


def test_cluster_mounts_a_source_directory_of_the_export(batchai_client, workspace, share_service, emulator):
    make_share(share_service)
    server = make_file_server(batchai_client)
    setup = models.SetupTask(command_line="mkdir -p $AZ_BATCHAI_MOUNT_ROOT/whole/sub && echo in-sub > "
                                          "$AZ_BATCHAI_MOUNT_ROOT/whole/sub/f.txt",
                             std_out_err_path_prefix="$AZ_BATCHAI_MOUNT_ROOT/" + MOUNT)
    volumes = models.MountVolumes(azure_file_shares=[file_share_reference(emulator)],
                                  file_servers=[file_server_mount(server.id, "whole")])
    make_cluster(batchai_client, emulator, "first", mount_volumes=volumes, setup_task=setup)
    volumes = models.MountVolumes(azure_file_shares=[file_share_reference(emulator)],
                                  file_servers=[file_server_mount(server.id, "part", "/data/sub")])
    cluster = make_cluster(batchai_client, emulator, "second", mount_volumes=volumes)
    submit(batchai_client, "sub", job_parameters(cluster.id, "cat $AZ_BATCHAI_MOUNT_ROOT/part/f.txt"))
    assert wait_for_state(batchai_client, "sub", timeout=30).execution_state == "succeeded"
    assert read_output(batchai_client, "sub", "stdout.txt") == "in-sub\n"


def test_missing_file_server_makes_nodes_unusable(batchai_client, workspace, emulator):
    missing = "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.BatchAI/workspaces/{}/fileservers/gone".format(
        emulator.subscription_id, RG, WS)
    cluster = make_cluster(batchai_client, emulator, mount_volumes=models.MountVolumes(
        file_servers=[file_server_mount(missing)]))
    assert cluster.node_state_counts.unusable_node_count == 1
    error = cluster.errors[0]
    assert error.code == "NFSMountError" and missing in error.details[0].value


def test_file_server_mount_needs_an_id(batchai_client, workspace, emulator):
    with pytest.raises(HttpResponseError) as caught:
        make_cluster(batchai_client, emulator, mount_volumes=models.MountVolumes(
            file_servers=[models.FileServerReference(file_server=models.ResourceId(id=""), relative_mount_path="x")]))
    assert "fileServers[0].fileServer.id" in caught.value.message


# ---- job-level Azure file shares ----------------------------------------------------------------

def test_job_level_file_share_on_every_node_of_the_job(batchai_client, workspace, share_service, emulator):
    """mountVolumes.azureFileShares on the job: mounted under $AZ_BATCHAI_JOB_MOUNT_ROOT on each of its nodes
    (job preparation runs on every node), reported with the service's 0777 defaults, usable for outputs."""
    make_share(share_service)
    job_share = make_share(share_service, "jobshare")
    cluster = make_cluster(batchai_client, emulator, nodes=2)
    volumes = models.MountVolumes(azure_file_shares=[file_share_reference(emulator, "jobshare", "jobfiles")])
    submit(batchai_client, "jobmount", job_parameters(
        cluster.id, "ls $AZ_BATCHAI_JOB_MOUNT_ROOT/jobfiles/prep > $AZ_BATCHAI_OUTPUT_OUT/listing.txt",
        node_count=2, mount_volumes=volumes,
        job_preparation=models.JobPreparation(
            command_line="mkdir -p $AZ_BATCHAI_JOB_MOUNT_ROOT/jobfiles/prep && "
                         "mktemp $AZ_BATCHAI_JOB_MOUNT_ROOT/jobfiles/prep/node.XXXXXX"),
        output_directories=[models.OutputDirectory(id="OUT", path_prefix="$AZ_BATCHAI_JOB_MOUNT_ROOT/jobfiles")]))
    job = wait_for_state(batchai_client, "jobmount", timeout=30)
    assert job.execution_state == "succeeded", job.execution_info
    mounted = job.mount_volumes.azure_file_shares[0]
    assert (mounted.file_mode, mounted.directory_mode, mounted.credentials.account_key) == ("0777", "0777", None)
    listed = read_output(batchai_client, "jobmount", "listing.txt", "OUT").split()
    assert len(listed) == 2 and all(name.startswith("node.") for name in listed)
    assert len(list(job_share.get_directory_client("prep").list_directories_and_files())) == 2


# ---- job-level Blob container mounts (blobfuse, emulated as a copy in and out) ------------------

def blob_mount(emulator, container: str = "data", key: str = None) -> models.AzureBlobFileSystemReference:
    return models.AzureBlobFileSystemReference(
        account_name=emulator.account_name, container_name=container, relative_mount_path="blobs",
        credentials=models.AzureStorageCredentialsInfo(account_key=key or emulator.account_key))


def test_job_mounts_a_blob_container(batchai_client, workspace, share_service, blob_service, emulator):
    make_share(share_service)
    container = blob_service.create_container("data")
    container.upload_blob("in/a.txt", b"alpha\n")
    container.upload_blob("gone.txt", b"delete me\n")
    container.upload_blob("keep.txt", b"kept\n")
    cluster = make_cluster(batchai_client, emulator)
    command = ("cat $AZ_BATCHAI_JOB_MOUNT_ROOT/blobs/in/a.txt && cd $AZ_BATCHAI_JOB_MOUNT_ROOT/blobs && "
               "mkdir -p out && echo written > out/result.txt && rm gone.txt")
    submit(batchai_client, "blobjob", job_parameters(
        cluster.id, command, mount_volumes=models.MountVolumes(azure_blob_file_systems=[blob_mount(emulator)])))
    job = wait_for_state(batchai_client, "blobjob", timeout=30)
    assert job.execution_state == "succeeded", job.execution_info
    assert job.mount_volumes.azure_blob_file_systems[0].credentials.account_key is None
    assert read_output(batchai_client, "blobjob", "stdout.txt") == "alpha\n"
    assert sorted(b.name for b in container.list_blobs()) == ["in/a.txt", "keep.txt", "out/result.txt"]
    assert container.download_blob("out/result.txt").readall() == b"written\n"
    assert "1 file(s) uploaded, 1 deleted" in read_output(batchai_client, "blobjob", "execution.log")


def test_blob_mount_errors(batchai_client, workspace, share_service, blob_service, emulator):
    make_share(share_service)
    cluster = make_cluster(batchai_client, emulator)
    submit(batchai_client, "nocontainer", job_parameters(
        cluster.id, "true", mount_volumes=models.MountVolumes(azure_blob_file_systems=[blob_mount(emulator)])))
    job = wait_for_state(batchai_client, "nocontainer", timeout=30)
    assert job.execution_state == "failed" and job.execution_info.errors[0].code == "AZBlobMountError"
    assert "no container 'data'" in job.execution_info.errors[0].details[0].value

    blob_service.create_container("data")
    submit(batchai_client, "badkey", job_parameters(cluster.id, "true", mount_volumes=models.MountVolumes(
        azure_blob_file_systems=[blob_mount(emulator, key="d3Jvbmcga2V5")])))
    job = wait_for_state(batchai_client, "badkey", timeout=30)
    assert job.execution_state == "failed" and "permission denied" in job.execution_info.errors[0].details[0].value


def test_cluster_mounts_a_blob_container(batchai_client, workspace, share_service, blob_service, emulator):
    """Cluster level: the blobs are there when the node is prepared (its setup task sees them); what a job
    writes there becomes blobs when the job ends; a missing container makes the node unusable."""
    make_share(share_service)
    container = blob_service.create_container("data")
    etag = container.upload_blob("config.txt", b"cfg\n").get_blob_properties().etag
    setup = models.SetupTask(command_line="cat $AZ_BATCHAI_MOUNT_ROOT/blobs/config.txt",
                             std_out_err_path_prefix="$AZ_BATCHAI_MOUNT_ROOT/" + MOUNT)
    volumes = models.MountVolumes(azure_file_shares=[file_share_reference(emulator)],
                                  azure_blob_file_systems=[blob_mount(emulator)])
    cluster = make_cluster(batchai_client, emulator, mount_volumes=volumes, setup_task=setup)
    assert cluster.node_state_counts.idle_node_count == 1, cluster.errors
    submit(batchai_client, "clusterblob", job_parameters(
        cluster.id, "cat $AZ_BATCHAI_MOUNT_ROOT/blobs/config.txt > $AZ_BATCHAI_MOUNT_ROOT/blobs/copy.txt"))
    job = wait_for_state(batchai_client, "clusterblob", timeout=30)
    assert job.execution_state == "succeeded", job.execution_info
    assert container.download_blob("copy.txt").readall() == b"cfg\n"
    assert sorted(b.name for b in container.list_blobs()) == ["config.txt", "copy.txt"]
    assert container.get_blob_client("config.txt").get_blob_properties().etag == etag  # unchanged: not re-sent
    assert "1 file(s) uploaded, 0 deleted" in read_output(batchai_client, "clusterblob", "execution.log")

    volumes = models.MountVolumes(azure_blob_file_systems=[blob_mount(emulator, "missing")])
    broken = make_cluster(batchai_client, emulator, "broken", mount_volumes=volumes)
    assert broken.node_state_counts.unusable_node_count == 1
    assert broken.errors[0].code == "AZBlobMountError"


def download(url: str, emulator) -> bytes:
    response = requests.get(url, timeout=10, verify=emulator.ca_cert)  # the Blob endpoint is https
    response.raise_for_status()
    return response.content


def test_outputs_on_job_level_file_and_blob_mounts_are_listed(batchai_client, workspace, share_service, blob_service,
                                                              emulator):
    """The SDK's job-level mounting scenario: a job writes to output directories on a job-level Azure Files
    mount and a job-level blobfuse mount; both are listed, with download URLs on their own endpoints."""
    make_share(share_service)
    make_share(share_service, "jobshare")
    blob_service.create_container("data")
    cluster = make_cluster(batchai_client, emulator)
    volumes = models.MountVolumes(azure_file_shares=[file_share_reference(emulator, "jobshare", "afs")],
                                  azure_blob_file_systems=[blob_mount(emulator)])
    outputs = [models.OutputDirectory(id="OUTPUT1", path_prefix="$AZ_BATCHAI_JOB_MOUNT_ROOT/afs"),
               models.OutputDirectory(id="OUTPUT2", path_prefix="$AZ_BATCHAI_JOB_MOUNT_ROOT/blobs")]
    command = ("echo file1 > $AZ_BATCHAI_OUTPUT_OUTPUT1/file1.txt && echo file2 > $AZ_BATCHAI_OUTPUT_OUTPUT2/file2.txt"
               " && mkdir -p $AZ_BATCHAI_OUTPUT_OUTPUT2/sub && echo deep > $AZ_BATCHAI_OUTPUT_OUTPUT2/sub/deep.txt")
    submit(batchai_client, "mounted", job_parameters(cluster.id, command, mount_volumes=volumes,
                                                     output_directories=outputs))
    job = wait_for_state(batchai_client, "mounted", timeout=30)
    assert job.execution_state == "succeeded", job.execution_info

    on_files = output_files(batchai_client, "mounted", "OUTPUT1")
    assert list(on_files) == ["file1.txt"] and on_files["file1.txt"].download_url.startswith(emulator.files_url)
    assert requests.get(on_files["file1.txt"].download_url, timeout=10).content == b"file1\n"

    on_blob = output_files(batchai_client, "mounted", "OUTPUT2")
    assert {name: entry.file_type for name, entry in on_blob.items()} == {"file2.txt": "file", "sub": "directory"}
    entry = on_blob["file2.txt"]
    assert entry.download_url.startswith(emulator.blob_url) and "sp=r&" in entry.download_url + "&"
    assert entry.content_length == 6 and entry.last_modified is not None
    assert download(entry.download_url, emulator) == b"file2\n"
    nested = output_files(batchai_client, "mounted", "OUTPUT2", directory="sub")
    assert list(nested) == ["deep.txt"] and download(nested["deep.txt"].download_url, emulator) == b"deep\n"
    # the link is read-only
    assert requests.put(entry.download_url, data=b"x", headers={"x-ms-blob-type": "BlockBlob"}, timeout=10,
                        verify=emulator.ca_cert).status_code == 403


def test_blob_mount_outputs_page_and_stay_inside(batchai_client, workspace, share_service, blob_service, emulator):
    """Paging (maxresults + nextLink) and the directory parameter work as for Azure Files outputs; a cluster-level
    blobfuse mount is listed too; a directory outside the output directory is refused."""
    make_share(share_service)
    container = blob_service.create_container("data")
    container.upload_blob("secret.txt", b"not in the output directory")
    volumes = models.MountVolumes(azure_file_shares=[file_share_reference(emulator)],
                                  azure_blob_file_systems=[blob_mount(emulator)])
    cluster = make_cluster(batchai_client, emulator, mount_volumes=volumes)
    command = "for i in 0 1 2 3 4; do echo -n $i > $AZ_BATCHAI_OUTPUT_OUT/f$i.txt; done"
    submit(batchai_client, "paged", job_parameters(cluster.id, command, output_directories=[
        models.OutputDirectory(id="OUT", path_prefix="$AZ_BATCHAI_MOUNT_ROOT/blobs/out")]))
    assert wait_for_state(batchai_client, "paged", timeout=30).execution_state == "succeeded"

    listed = output_files(batchai_client, "paged", "OUT", max_results=2)  # the SDK follows nextLink
    assert sorted(listed) == ["f{}.txt".format(i) for i in range(5)]
    assert download(listed["f3.txt"].download_url, emulator) == b"3"
    with pytest.raises(HttpResponseError) as refused:
        output_files(batchai_client, "paged", "OUT", directory="..")
    assert refused.value.status_code == 400
