"""Batch AI usages, quotas and the provider's operations list, through azure-mgmt-batchai 7.0.0."""
from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.batchai import models

from test_jobs import RG, WS, make_cluster, make_share, make_workspace, wait_for

NC_DEDICATED = "Standard NC Family Cluster Dedicated vCPUs"
TOTAL_DEDICATED = "Total Cluster Dedicated Regional vCPUs"


def usages(batchai_client, location: str = "eastus") -> dict:
    return {u.name.value: u for u in batchai_client.usages.list(location)}


def resize(batchai_client, cluster: str, nodes: int):
    return batchai_client.clusters.update(RG, WS, cluster, models.ClusterUpdateParameters(
        scale_settings=models.ScaleSettings(manual=models.ManualScaleSettings(target_node_count=nodes))))


@pytest.fixture
def workspace(resource_client, batchai_client, share_service):
    make_workspace(resource_client, batchai_client)
    make_share(share_service)


def test_usages_follow_allocated_nodes(batchai_client, workspace, emulator):
    before = usages(batchai_client)
    # The service's names, units and order (spec example ListUsages.json).
    assert list(before)[:3] == ["Clusters", TOTAL_DEDICATED, "Standard D Family Cluster Dedicated vCPUs"]
    assert "Total Cluster LowPriority Regional vCPUs" in before
    low = before["Total Cluster LowPriority Regional vCPUs"]
    assert low.name.localized_value == "Total Cluster Low Priority Regional vCPUs" and low.unit == "Count"
    assert before["Clusters"].limit == 20 and before[TOTAL_DEDICATED].limit == 24
    assert before["Standard NCv3 Family Cluster Dedicated vCPUs"].limit == 0
    assert all(u.current_value == 0 for u in before.values())

    make_cluster(batchai_client, emulator, nodes=2)  # STANDARD_NC6: 6 vCPUs a node
    after = usages(batchai_client, "East US")
    assert after["Clusters"].current_value == 1
    assert after[NC_DEDICATED].current_value == 12 and after[TOTAL_DEDICATED].current_value == 12
    assert after["Standard NC Family Cluster LowPriority vCPUs"].current_value == 0
    assert usages(batchai_client, "westus2")[NC_DEDICATED].current_value == 0  # per region

    resize(batchai_client, "cluster", 1)
    wait_for(lambda: usages(batchai_client)[NC_DEDICATED].current_value == 6)


def test_cluster_and_resize_past_the_quota_fail_early(batchai_client, workspace, emulator):
    with pytest.raises(HttpResponseError) as caught:
        make_cluster(batchai_client, emulator, "big", nodes=5)  # 30 vCPUs > 24
    error = caught.value.error
    assert caught.value.status_code == 400 and error.code == "AccountVMSeriesCoreQuotaReached"
    assert error.message.startswith("Operation results in exceeding quota limits of " + NC_DEDICATED +
                                    ". Maximum allowed: 24, Current in use: 0, Additional requested: 30.")
    with pytest.raises(HttpResponseError):
        batchai_client.clusters.get(RG, WS, "big")  # nothing was created

    make_cluster(batchai_client, emulator, "one", nodes=3)
    with pytest.raises(HttpResponseError) as caught:
        resize(batchai_client, "one", 5)
    assert caught.value.error.code == "AccountVMSeriesCoreQuotaReached"
    assert batchai_client.clusters.get(RG, WS, "one").scale_settings.manual.target_node_count == 3
    with pytest.raises(HttpResponseError) as caught:  # another cluster: 18 in use + 12 > 24
        make_cluster(batchai_client, emulator, "two", nodes=2)
    assert "Current in use: 18, Additional requested: 12" in caught.value.error.message

    emulator.set_batchai_quota(NC_DEDICATED, 60)
    emulator.set_batchai_quota(TOTAL_DEDICATED, 60)
    make_cluster(batchai_client, emulator, "two", nodes=2)
    assert usages(batchai_client)[NC_DEDICATED].limit == 60

    emulator.set_batchai_quota("Clusters", 2)
    with pytest.raises(HttpResponseError) as caught:
        make_cluster(batchai_client, emulator, "three", nodes=0)
    assert caught.value.error.code == "ClusterQuotaReached"
    assert caught.value.error.message == (
        "Operation results in exceeding quota limits of Microsoft.BatchAI/clusters. Maximum allowed: 2, Current in "
        "use: 2. Please contact support to increase the quota for resource type Microsoft.BatchAI/clusters")


def test_low_priority_and_unknown_sizes(batchai_client, workspace, emulator):
    parameters = models.ClusterCreateParameters(
        vm_size="STANDARD_NC6", vm_priority="lowpriority",
        scale_settings=models.ScaleSettings(manual=models.ManualScaleSettings(target_node_count=1)),
        user_account_settings=models.UserAccountSettings(admin_user_name="demo", admin_user_password="Pa55word!x"))
    batchai_client.clusters.begin_create(RG, WS, "low", parameters).result()
    wait_for(lambda: usages(batchai_client)["Standard NC Family Cluster LowPriority vCPUs"].current_value == 6)
    assert usages(batchai_client)[NC_DEDICATED].current_value == 0

    parameters.vm_size = "STANDARD_NC6s_v3"  # NCv3 starts with no quota, as on the service
    with pytest.raises(HttpResponseError) as caught:
        batchai_client.clusters.begin_create(RG, WS, "v3", parameters).result()
    assert "Standard NCv3 Family Cluster LowPriority vCPUs. Maximum allowed: 0" in caught.value.error.message
    parameters.vm_size = "STANDARD_WEIRD9"
    with pytest.raises(HttpResponseError) as caught:
        batchai_client.clusters.begin_create(RG, WS, "odd", parameters).result()
    assert caught.value.error.code == "InvalidParameter" and "STANDARD_WEIRD9" in caught.value.error.message


def test_quota_settings_are_checked_and_kept(tmp_path):
    import emulator as emulator_package

    emu = emulator_package.start(tmp_path / "emu")
    try:
        with pytest.raises(ValueError):
            emu.set_batchai_quota("Standard Q Family Cluster Dedicated vCPUs", 10)
        with pytest.raises(ValueError):
            emu.set_batchai_quota(NC_DEDICATED, -2)
        emu.set_batchai_quota(NC_DEDICATED, 0, location="westus2")
    finally:
        emu.stop()
    emu = emulator_package.start(tmp_path / "emu")
    try:
        from test_jobs import sdk_clients
        batchai_client = sdk_clients(emu)[0]
        assert usages(batchai_client, "westus2")[NC_DEDICATED].limit == 0
        assert usages(batchai_client, "eastus")[NC_DEDICATED].limit == 24
    finally:
        emu.stop()


def test_operations_list(batchai_client):
    operations = list(batchai_client.operations.list())
    names = [o.name for o in operations]
    assert "Microsoft.BatchAI/workspaces/experiments/jobs/write" in names
    assert "Microsoft.BatchAI/locations/usages/read" in names
    job_write = operations[names.index("Microsoft.BatchAI/workspaces/experiments/jobs/write")]
    assert job_write.display.provider == "Microsoft Batch AI" and job_write.display.resource == "Batch AI Jobs"
    assert job_write.origin == "user,system"


def test_cli_quota_option(tmp_path, capsys):
    from emulator.__main__ import main

    assert main(["--data-dir", str(tmp_path / "emu"), "--quota", "Clusters=lots"]) == 2
    assert main(["--data-dir", str(tmp_path / "emu"), "--quota", "No Such Quota=3"]) == 2
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == 2 and "NAME=LIMIT" in errors[0] and "unknown Batch AI quota" in errors[1]
