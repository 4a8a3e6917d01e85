"""Batch AI file servers through azure-mgmt-batchai 7.0.0 (create, list) and plain REST (get and
delete, which the 2018 specification had and the SDK no longer calls), against the recording."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
from azure.core.exceptions import HttpResponseError
from azure.mgmt.batchai import models

from test_conformance import key_paths, raw, recorded
from test_jobs import RG, WS, make_workspace, wait_for


def parameters(**disks) -> models.FileServerCreateParameters:
    disks = dict(dict(disk_size_in_gb=10, disk_count=2, storage_account_type="Standard_LRS"), **disks)
    return models.FileServerCreateParameters(
        vm_size="STANDARD_D1",
        ssh_configuration=models.SshConfiguration(user_account_settings=models.UserAccountSettings(
            admin_user_name="demoUser", admin_user_password="Dem0Pa$$w0rd")),
        data_disks=models.DataDisks(**disks))


def server_path(emulator, name: str = "nfs") -> str:
    return "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.BatchAI/workspaces/{}/fileServers/{}".format(
        emulator.subscription_id, RG, WS, name)


@pytest.fixture
def workspace(resource_client, batchai_client):
    make_workspace(resource_client, batchai_client)


def test_create_list_get_delete(batchai_client, workspace, emulator, monkeypatch):
    from emulator.batchai import fileservers
    monkeypatch.setattr(fileservers, "PROVISIONING_SECONDS", 2.0)  # time to see it creating, even on a busy machine
    response = raw(emulator, "PUT", server_path(emulator), json=json.loads(json.dumps(
        parameters().serialize())))
    assert response.status_code == 202
    operation_url = response.headers["Azure-AsyncOperation"]
    first = requests.get(operation_url, headers={"Authorization": "Bearer " + emulator.token},
                         verify=emulator.ca_cert, timeout=10).json()
    assert first["status"] == "InProgress"
    assert key_paths(first) == key_paths(recorded("operation-inprogress.recorded-2018.json"))
    creating = raw(emulator, "GET", server_path(emulator)).json()
    assert creating["properties"]["provisioningState"] == "creating" and "mountSettings" not in creating["properties"]

    server = wait_for(lambda: (lambda s: s if s["properties"]["provisioningState"] == "succeeded" else None)(
        raw(emulator, "GET", server_path(emulator)).json()), timeout=20)
    expected = recorded("fileserver.recorded-2018.json")
    assert key_paths(server) == key_paths(expected)
    props = server["properties"]
    assert server["type"] == expected["type"] and "/fileservers/nfs" in server["id"]
    assert props["sshConfiguration"] == expected["properties"]["sshConfiguration"]  # no password
    assert props["dataDisks"] == expected["properties"]["dataDisks"]
    assert props["mountSettings"]["mountPoint"] == "/data"
    assert props["mountSettings"]["fileServerInternalIP"] == "10.0.0.4"
    assert "Dem0Pa$$w0rd" not in json.dumps(server)
    assert props["subnet"]["id"].startswith("/subscriptions/{}/resourceGroups/fileserverrg-".format(
        emulator.subscription_id))

    listed = list(batchai_client.file_servers.list_by_workspace(RG, WS))
    assert [(s.name, s.provisioning_state, s.mount_settings.mount_point) for s in listed] == [
        ("nfs", "succeeded", "/data")]
    export = Path(emulator.data_dir) / "fileservers" / RG / WS / "nfs" / "data"
    assert export.is_dir()

    again = batchai_client.file_servers.begin_create(RG, WS, "nfs", parameters()).result()  # same PUT: fine
    assert again.id == server["id"]
    with pytest.raises(HttpResponseError) as caught:
        batchai_client.file_servers.begin_create(RG, WS, "nfs", parameters(disk_count=3)).result()
    assert caught.value.status_code == 409

    assert raw(emulator, "DELETE", server_path(emulator)).status_code == 202
    wait_for(lambda: raw(emulator, "GET", server_path(emulator)).status_code == 404)
    assert raw(emulator, "GET", server_path(emulator)).json()["error"]["code"] == "FileServerNotFound"
    assert raw(emulator, "DELETE", server_path(emulator)).status_code == 204
    assert not export.exists()


def test_create_through_the_sdk_and_bad_bodies(batchai_client, workspace, emulator):
    server = batchai_client.file_servers.begin_create(RG, WS, "sdk", parameters()).result()
    assert server.provisioning_state == "succeeded" and server.mount_settings.file_server_internal_ip == "10.0.0.4"
    assert server.data_disks.caching_type == "none"
    bad = [({"properties": {"sshConfiguration": {"userAccountSettings": {"adminUserName": "a",
                                                                        "adminUserPassword": "p"}},
                            "dataDisks": {"diskSizeInGB": 10, "diskCount": 1, "storageAccountType": "Standard_LRS"}}},
            "properties.vmSize"),
           ({"properties": {"vmSize": "STANDARD_D1", "sshConfiguration": {"userAccountSettings": {"adminUserName": "a"}},
                            "dataDisks": {"diskSizeInGB": 10, "diskCount": 1, "storageAccountType": "Standard_LRS"}}},
            "adminUserPassword"),
           ({"properties": {"vmSize": "STANDARD_D1",
                            "sshConfiguration": {"userAccountSettings": {"adminUserName": "a", "adminUserPassword": "p"}},
                            "dataDisks": {"diskSizeInGB": 10, "diskCount": 1, "storageAccountType": "Ultra"}}},
            "storageAccountType")]
    for body, named in bad:
        response = raw(emulator, "PUT", server_path(emulator, "bad"), json=body)
        assert response.status_code == 400 and named in response.json()["error"]["message"], body


def test_deleting_the_workspace_deletes_its_file_servers(batchai_client, workspace, emulator):
    batchai_client.file_servers.begin_create(RG, WS, "nfs", parameters()).result()
    batchai_client.workspaces.begin_delete(RG, WS).result()
    make_workspace_again = batchai_client.workspaces.begin_create(
        RG, WS, models.WorkspaceCreateParameters(location="eastus")).result()
    assert make_workspace_again.name == WS
    assert list(batchai_client.file_servers.list_by_workspace(RG, WS)) == []
    assert not (Path(emulator.data_dir) / "fileservers" / RG / WS / "nfs").exists()
