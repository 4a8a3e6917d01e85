"""Auto-scale clusters through azure-mgmt-batchai 7.0.0: grow for queued jobs up to the maximum,
back to the minimum when idle, through resizing to steady; switching between manual and auto-scale
with clusters.update (the service's own test_auto_scaling scenario)."""
from __future__ import annotations


import pytest
import requests
from azure.mgmt.batchai import models

from test_jobs import (EXP, RG, WS, file_share_reference, job_parameters, make_cluster, make_share, make_workspace,
                       submit, wait_for, wait_for_state)


@pytest.fixture
def workspace(resource_client, batchai_client, share_service, monkeypatch):
    from emulator.batchai import autoscale
    monkeypatch.setattr(autoscale, "IDLE_SECONDS", 0.5)
    make_workspace(resource_client, batchai_client)
    make_share(share_service)


def auto_cluster(batchai_client, emulator, name: str, low: int, high: int, initial: int = 0):
    parameters = models.ClusterCreateParameters(
        vm_size="STANDARD_NC6",
        scale_settings=models.ScaleSettings(auto_scale=models.AutoScaleSettings(
            minimum_node_count=low, maximum_node_count=high, initial_node_count=initial)),
        user_account_settings=models.UserAccountSettings(admin_user_name="demo", admin_user_password="Pa55word!x"),
        node_setup=models.NodeSetup(mount_volumes=models.MountVolumes(azure_file_shares=[file_share_reference(emulator)])))
    return batchai_client.clusters.begin_create(RG, WS, name, parameters).result()


def nodes_of(batchai_client, name: str):
    def check(count):
        cluster = batchai_client.clusters.get(RG, WS, name)
        return cluster if cluster.allocation_state == "steady" and cluster.current_node_count == count else None
    return check


def test_grows_for_queued_jobs_and_shrinks_when_idle(batchai_client, workspace, emulator):
    cluster = auto_cluster(batchai_client, emulator, "auto", 0, 2)
    wait_for(lambda: nodes_of(batchai_client, "auto")(0), timeout=20)
    submit(batchai_client, "one", job_parameters(cluster.id, "sleep 1"))
    submit(batchai_client, "two", job_parameters(cluster.id, "sleep 1"))
    submit(batchai_client, "three", job_parameters(cluster.id, "sleep 1"))
    seen = set()

    def grown():
        current = batchai_client.clusters.get(RG, WS, "auto")
        seen.add(current.allocation_state)
        return current.current_node_count == 2
    wait_for(grown, timeout=20)  # three jobs, at most two nodes
    assert "resizing" in seen
    for name in ("one", "two", "three"):
        assert wait_for_state(batchai_client, name, timeout=30).execution_state == "succeeded"
    idle = wait_for(lambda: nodes_of(batchai_client, "auto")(0), timeout=30)  # back to the minimum
    assert idle.scale_settings.auto_scale.maximum_node_count == 2
    assert idle.node_state_counts.idle_node_count == 0

    raw = requests.get("{}{}?api-version=2018-05-01".format(emulator.arm_url, cluster.id), verify=emulator.ca_cert,
                       headers={"Authorization": "Bearer " + emulator.token}, timeout=10).json()
    assert raw["properties"]["scaleSettings"] == {"autoScale": {
        "minimumNodeCount": 0, "maximumNodeCount": 2, "initialNodeCount": 0}}  # as submitted, nothing added


def test_minimum_nodes_stay(batchai_client, workspace, emulator):
    auto_cluster(batchai_client, emulator, "floor", 1, 2, initial=2)
    wait_for(lambda: nodes_of(batchai_client, "floor")(2), timeout=20)
    wait_for(lambda: nodes_of(batchai_client, "floor")(1), timeout=30)  # idle: down to the minimum, not below


def test_switching_between_manual_and_auto_scale(batchai_client, workspace, emulator):
    cluster = make_cluster(batchai_client, emulator, "switch", nodes=0)
    batchai_client.clusters.update(RG, WS, "switch", models.ClusterUpdateParameters(scale_settings=models.ScaleSettings(
        auto_scale=models.AutoScaleSettings(minimum_node_count=0, maximum_node_count=1))))
    submit(batchai_client, "hosted", job_parameters(cluster.id, "echo hello"))
    assert wait_for_state(batchai_client, "hosted", timeout=30).execution_state == "succeeded"
    wait_for(lambda: nodes_of(batchai_client, "switch")(0), timeout=30)

    batchai_client.clusters.update(RG, WS, "switch", models.ClusterUpdateParameters(scale_settings=models.ScaleSettings(
        manual=models.ManualScaleSettings(target_node_count=1))))
    manual = wait_for(lambda: nodes_of(batchai_client, "switch")(1), timeout=20)
    assert manual.scale_settings.manual.target_node_count == 1 and manual.scale_settings.auto_scale is None


def test_growth_stops_at_the_quota(batchai_client, workspace, emulator):
    emulator.set_batchai_quota("Standard NC Family Cluster Dedicated vCPUs", 12)  # two NC6 nodes
    cluster = auto_cluster(batchai_client, emulator, "capped", 0, 4)
    for index in range(3):
        submit(batchai_client, "job{}".format(index), job_parameters(cluster.id, "sleep 2"))
    most = []

    def all_done():
        most.append(batchai_client.clusters.get(RG, WS, "capped").current_node_count)
        states = [batchai_client.jobs.get(RG, WS, EXP, "job{}".format(i)).execution_state for i in range(3)]
        return all(state in ("succeeded", "failed") for state in states) and states
    states = wait_for(all_done, timeout=60)
    assert states == ["succeeded"] * 3  # the third job waited for a node, then ran
    assert max(most) == 2  # four wanted, two allowed
