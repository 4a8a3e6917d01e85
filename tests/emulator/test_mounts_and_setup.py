"""Where node setup tasks write their output, and what clusters and jobs mount, through
azure-mgmt-batchai 7.0.0 against the emulator, as the service behaved (the Azure SDK's recorded
Batch AI scenarios)."""
from __future__ import annotations

import pytest
from azure.mgmt.batchai import models

from test_jobs import MOUNT, RG, WS, make_cluster, make_share, make_workspace


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
