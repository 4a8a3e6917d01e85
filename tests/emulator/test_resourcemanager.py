"""Resource groups on the emulator through azure-mgmt-resource 26, the cascade of a group delete
into Batch AI, and bearer-token authentication."""
from __future__ import annotations

import time

import pytest
import requests
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError
from azure.mgmt.batchai import BatchAI, models
from azure.mgmt.resource.resources import ResourceManagementClient

from conftest import POLL
from test_jobs import (EXP, RG, WS, job_parameters, make_cluster, make_share, make_workspace, pid_alive,
                       running_pid, submit)


def status_of(pipeline_response, deserialized, headers):
    """``cls`` hook: the HTTP status instead of the model."""
    return pipeline_response.http_response.status_code


def test_resource_group_crud(resource_client, emulator):
    groups = resource_client.resource_groups
    assert groups.create_or_update(RG, {"location": "eastus", "tags": {"a": "b"}}, cls=status_of) == 201
    assert groups.create_or_update(RG, {"location": "eastus", "tags": {"a": "c"}}, cls=status_of) == 200
    group = groups.get(RG)
    assert group.id == "/subscriptions/{}/resourceGroups/{}".format(emulator.subscription_id, RG)
    assert (group.name, group.type, group.location) == (RG, "Microsoft.Resources/resourceGroups", "eastus")
    assert group.tags == {"a": "c"} and group.properties.provisioning_state == "Succeeded"
    assert groups.check_existence(RG) and groups.check_existence(RG.upper())  # names are case-insensitive
    assert not groups.check_existence("missing")
    assert groups.update(RG, {"tags": {"x": "y"}}).tags == {"x": "y"}
    groups.create_or_update("second", {"location": "westeurope"})
    assert sorted(g.name for g in groups.list()) == [RG, "second"]

    with pytest.raises(HttpResponseError) as caught:
        groups.create_or_update(RG, {"location": "westus"})
    assert caught.value.status_code == 409 and caught.value.error.code == "InvalidResourceGroupLocation"
    with pytest.raises(ResourceNotFoundError) as caught:
        groups.get("missing")
    assert caught.value.error.message == "Resource group 'missing' could not be found."

    start = time.monotonic()
    groups.begin_delete("second").result()
    assert time.monotonic() - start < 1
    assert not groups.check_existence("second")
    with pytest.raises(ResourceNotFoundError):
        groups.begin_delete("second").result()


@pytest.mark.parametrize("name", ["bad name!", "x" * 91, "ends.with.dot.", "slash%2Fname"])
def test_invalid_group_names(resource_client, name):
    with pytest.raises(HttpResponseError) as caught:
        resource_client.resource_groups.create_or_update(name, {"location": "eastus"})
    assert caught.value.status_code in (400, 404)  # an encoded '/' splits the path: no such route
    if caught.value.status_code == 400:
        assert caught.value.error.code == "InvalidResourceGroupName"
        assert "'{}' is invalid".format(name) in caught.value.error.message


def test_group_needs_a_location(resource_client):
    with pytest.raises(HttpResponseError) as caught:
        resource_client.resource_groups.create_or_update(RG, {"tags": {}})
    assert (caught.value.status_code, caught.value.error.code) == (400, "LocationRequired")


def test_batch_ai_resources_need_their_group(batchai_client):
    with pytest.raises(ResourceNotFoundError) as caught:
        batchai_client.workspaces.begin_create("nogroup", WS, models.WorkspaceCreateParameters(location="eastus"))
    assert caught.value.error.code == "ResourceGroupNotFound"
    assert caught.value.error.message == "Resource group 'nogroup' could not be found."


def test_group_delete_cascades_and_stops_running_jobs(resource_client, batchai_client, share_service, emulator):
    make_share(share_service)
    make_workspace(resource_client, batchai_client)
    cluster = make_cluster(batchai_client, emulator)
    submit(batchai_client, "long", job_parameters(cluster.id, "echo $$; exec sleep 60"))
    pid = running_pid(batchai_client, "long")
    submit(batchai_client, "queued", job_parameters(cluster.id, "true"))

    start = time.monotonic()
    resource_client.resource_groups.begin_delete(RG).result()
    assert time.monotonic() - start < 3
    assert not pid_alive(pid)
    assert not resource_client.resource_groups.check_existence(RG)
    assert list(batchai_client.workspaces.list()) == []
    # Recreating the group gives an empty one: nothing of the old workspace is left.
    resource_client.resource_groups.create_or_update(RG, {"location": "eastus"})
    assert list(batchai_client.workspaces.list_by_resource_group(RG)) == []
    with pytest.raises(ResourceNotFoundError) as caught:
        batchai_client.jobs.get(RG, WS, EXP, "long")
    assert caught.value.error.code == "WorkspaceNotFound"
    assert not list((emulator.data_dir / "nodes").glob("*/*/*/tvm-*"))  # the nodes are gone


class WrongToken:
    def get_token(self, *scopes, **kwargs):
        return AccessToken("not-the-emulator-token", int(time.time()) + 3600)


def test_wrong_or_missing_token_is_refused(emulator, resource_client):
    rm = ResourceManagementClient(WrongToken(), emulator.subscription_id, base_url=emulator.arm_url,
                                  connection_verify=emulator.ca_cert, polling_interval=POLL)
    with pytest.raises(ClientAuthenticationError) as caught:
        rm.resource_groups.create_or_update(RG, {"location": "eastus"})
    assert caught.value.status_code == 401 and caught.value.error.code == "InvalidAuthenticationToken"
    bai = BatchAI(WrongToken(), emulator.subscription_id, base_url=emulator.arm_url,
                  connection_verify=emulator.ca_cert, polling_interval=POLL)
    resource_client.resource_groups.create_or_update(RG, {"location": "eastus"})
    with pytest.raises(ClientAuthenticationError):
        bai.workspaces.get(RG, WS)

    url = "{}/subscriptions/{}/resourcegroups?api-version=2025-04-01".format(emulator.arm_url, emulator.subscription_id)
    response = requests.get(url, verify=emulator.ca_cert, timeout=10)
    assert response.status_code == 401 and response.json()["error"]["code"] == "AuthenticationFailed"
    assert "Bearer" in response.headers["WWW-Authenticate"]
    response = requests.get(url, verify=emulator.ca_cert, headers={"Authorization": "Bearer " + emulator.token},
                            timeout=10)
    assert response.status_code == 200 and [g["name"] for g in response.json()["value"]] == [RG]


def test_unknown_subscription(emulator):
    url = "{}/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/{}?api-version=2025-04-01".format(
        emulator.arm_url, RG)
    response = requests.get(url, verify=emulator.ca_cert, headers={"Authorization": "Bearer " + emulator.token},
                            timeout=10)
    assert response.status_code == 404 and response.json()["error"]["code"] == "SubscriptionNotFound"
