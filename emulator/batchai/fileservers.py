"""Batch AI file servers (``workspaces/{ws}/fileServers``): a single-node NFS server as the 2018-05-01
API defines it, emulated by a directory that stands for its export.

Shapes follow the real service's recorded responses (azure-sdk-for-python's
test_mgmt_batchai_file_servers recording, 2018-06, in tests/emulator/conformance/): ids and types
use ``fileservers``; the server gets its own subnet in a ``fileserverrg-<uuid>`` resource group
(clusters that mount it report that subnet); ``mountSettings`` give the export path ``/data``
and the server's internal IP ``10.0.0.4``, the first address Azure hands out in a subnet; the
SSH secrets never come back. Creation reports ``creating`` and an operation ``InProgress`` while the
"VM" is made (minutes on the service, ``PROVISIONING_SECONDS`` here).
"""
from __future__ import annotations

import json
import shutil
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Callable, Optional

from ..core.arm import utc_now
from ..core.paths import PathOutsideRoot, inside
from ..runner.records import DirectoryMount
from . import exceptions as errors

#: How long a new file server stays ``creating`` (the service took about five minutes).
PROVISIONING_SECONDS = 0.5
EXPORT_PATH = "/data"
INTERNAL_IP = "10.0.0.4"
CACHING_TYPES = ("none", "readonly", "readwrite")
STORAGE_ACCOUNT_TYPES = ("Standard_LRS", "Premium_LRS")
_SECRETS = ("adminUserPassword", "adminUserSshPublicKey")

SCHEMA = """
CREATE TABLE IF NOT EXISTS bai_fileservers (
    id INTEGER PRIMARY KEY,
    resource_group TEXT NOT NULL COLLATE NOCASE, workspace TEXT NOT NULL COLLATE NOCASE,
    name TEXT NOT NULL COLLATE NOCASE, properties TEXT NOT NULL, subnet TEXT NOT NULL,
    creation_time TEXT NOT NULL, provisioning_state TEXT NOT NULL, provisioning_state_time TEXT NOT NULL,
    UNIQUE (resource_group, workspace, name));
"""


def _object(value, path: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise errors.invalid_parameter("{} must be an object.".format(path))
    return value


def _required(obj: dict, key: str, path: str, what: str):
    if obj.get(key) in (None, ""):
        raise errors.missing_property(path, what)
    return obj[key]


def _int(value, path: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise errors.invalid_parameter("{} must be a whole number from {} to {}.".format(path, low, high))
    return value


def check_file_server(body: dict) -> dict:
    """The properties of a file server PUT, checked, with the service's defaults."""
    props = json.loads(json.dumps(_object(body.get("properties"), "properties")))
    if not isinstance(_required(props, "vmSize", "properties.vmSize", "the VM size, e.g. STANDARD_D1"), str):
        raise errors.invalid_parameter("properties.vmSize must be a string.")
    ssh = _object(_required(props, "sshConfiguration", "properties.sshConfiguration",
                            "the administrator account of the server"), "properties.sshConfiguration")
    accounts = _object(_required(ssh, "userAccountSettings", "properties.sshConfiguration.userAccountSettings",
                                 "the administrator account"), "properties.sshConfiguration.userAccountSettings")
    _required(accounts, "adminUserName", "properties.sshConfiguration.userAccountSettings.adminUserName",
              "the administrator user name")
    if not accounts.get("adminUserPassword") and not accounts.get("adminUserSshPublicKey"):
        raise errors.missing_property("properties.sshConfiguration.userAccountSettings.adminUserPassword",
                                      "a password or an SSH public key (adminUserSshPublicKey)")
    disks = _object(_required(props, "dataDisks", "properties.dataDisks", "the data disks of the server"),
                    "properties.dataDisks")
    _int(_required(disks, "diskSizeInGB", "properties.dataDisks.diskSizeInGB", "the size of each disk"),
         "properties.dataDisks.diskSizeInGB", 1, 4095)
    _int(_required(disks, "diskCount", "properties.dataDisks.diskCount", "how many disks"),
         "properties.dataDisks.diskCount", 1, 64)
    account_type = _required(disks, "storageAccountType", "properties.dataDisks.storageAccountType",
                             "Standard_LRS or Premium_LRS")
    if account_type not in STORAGE_ACCOUNT_TYPES:
        raise errors.invalid_parameter("properties.dataDisks.storageAccountType must be one of {}.".format(
            ", ".join(STORAGE_ACCOUNT_TYPES)))
    caching = str(disks.get("cachingType") or "none").lower()
    if caching not in CACHING_TYPES:
        raise errors.invalid_parameter("properties.dataDisks.cachingType must be one of {}.".format(
            ", ".join(CACHING_TYPES)))
    props["dataDisks"] = {"diskSizeInGB": disks["diskSizeInGB"], "cachingType": caching,
                          "diskCount": disks["diskCount"], "storageAccountType": account_type}
    subnet = props.get("subnet")
    if subnet is not None and not (isinstance(subnet, dict) and isinstance(subnet.get("id"), str)):
        raise errors.invalid_parameter("properties.subnet must be {\"id\": <subnet resource id>}.")
    return props


class FileServers:
    """File servers of one emulator: rows in SQLite, an export directory each under ``root``."""

    def __init__(self, store, root: Path, subscription_id: str) -> None:
        self.store, self.root, self.subscription_id = store, Path(root), subscription_id
        store.ensure_schema(SCHEMA)

    # ---- reading
    def find(self, rg: str, ws: str, name: str) -> Optional[sqlite3.Row]:
        return self.store.query_one("SELECT * FROM bai_fileservers WHERE resource_group = ? AND workspace = ? AND "
                                    "name = ?", (rg, ws, name))

    def get(self, rg: str, ws: str, name: str) -> sqlite3.Row:
        row = self.find(rg, ws, name)
        if row is None:
            raise errors.file_server_not_found(name)
        return row

    def list(self, rg: str, ws: str) -> list:
        return [self.to_json(row) for row in self.store.query(
            "SELECT * FROM bai_fileservers WHERE resource_group = ? AND workspace = ? ORDER BY name", (rg, ws))]

    def resource_id(self, rg: str, ws: str, name: str) -> str:
        return "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.BatchAI/workspaces/{}/fileservers/{}".format(
            self.subscription_id, rg, ws, name)

    def export_dir(self, row: sqlite3.Row) -> Path:
        """The directory that stands for the server's NFS export (what a node mounting it sees)."""
        return inside(self.root, row["resource_group"], row["workspace"], row["name"], "data")

    def mount(self, reference: dict) -> DirectoryMount:
        """A ``mountVolumes.fileServers`` entry as the runner's DirectoryMount: the server's export (or
        its ``sourceDirectory``, a path on the server: ``/data/x`` or ``x`` under the export). A server
        that is missing or not yet provisioned gives a mount without a source, which makes nodes unusable."""
        server_id = (reference.get("fileServer") or {}).get("id", "")
        relative = reference["relativeMountPath"].strip("/")
        parts = server_id.strip("/").split("/")
        lowered = [part.lower() for part in parts]
        row = None
        if len(parts) == 10 and lowered[::2] == ["subscriptions", "resourcegroups", "providers", "workspaces",
                                                 "fileservers"] and lowered[5] == "microsoft.batchai":
            row = self.find(parts[3], parts[7], parts[9])
        if row is None or row["provisioning_state"] != "succeeded":
            return DirectoryMount(name=server_id, source=None, relative_path=relative,
                                  missing="mount.nfs: the file server {} does not exist or is not provisioned".format(
                                      server_id))
        source = (reference.get("sourceDirectory") or "").strip()
        if source == EXPORT_PATH or source.startswith(EXPORT_PATH + "/"):
            source = source[len(EXPORT_PATH):]
        export, inner = self.export_dir(row), source.strip("/")
        try:
            return DirectoryMount(name=server_id, source=inside(export, inner) if inner else export,
                                  relative_path=relative)
        except PathOutsideRoot:
            return DirectoryMount(name=server_id, source=None, relative_path=relative,
                                  missing="mount.nfs: access denied by server: {} is not inside the export".format(
                                      source))

    def to_json(self, row: sqlite3.Row) -> dict:
        props = json.loads(row["properties"])
        accounts = props["sshConfiguration"]["userAccountSettings"]
        for secret in _SECRETS:
            accounts.pop(secret, None)
        body = {"provisioningState": row["provisioning_state"], "creationTime": row["creation_time"],
                "provisioningStateTransitionTime": row["provisioning_state_time"]}
        body.update(props)
        body["subnet"] = {"id": row["subnet"]}
        if row["provisioning_state"] == "succeeded":
            body["mountSettings"] = {"mountPoint": EXPORT_PATH, "fileServerPublicIP": "127.0.0.1",
                                     "fileServerInternalIP": INTERNAL_IP}
        return {"id": self.resource_id(row["resource_group"], row["workspace"], row["name"]), "name": row["name"],
                "type": "Microsoft.BatchAI/workspaces/fileservers", "properties": body}

    # ---- writing
    def create(self, rg: str, ws: str, name: str, body: dict) -> tuple[sqlite3.Row, Optional[Callable[[], None]]]:
        """Record a new server (``creating``) and return it with the work that provisions it; a
        repeated PUT with the same properties returns no work, a different one is refused."""
        props = check_file_server(body)
        given_subnet = props.pop("subnet", None)
        existing = self.find(rg, ws, name)
        if existing is not None:
            if existing["provisioning_state"] == "deleting":
                raise errors.being_deleted("file server", existing["name"])
            if json.loads(existing["properties"]) != props:
                raise errors.already_exists("file server", existing["name"])
            return existing, None
        network = str(uuid.uuid4())
        subnet = given_subnet or {"id": (
            "/subscriptions/{}/resourceGroups/fileserverrg-{n}/providers/Microsoft.Network/virtualNetworks/{n}vnet/"
            "subnets/Subnet-1").format(self.subscription_id, n=network)}
        now = utc_now()
        self.store.execute(
            "INSERT INTO bai_fileservers (resource_group, workspace, name, properties, subnet, creation_time, "
            "provisioning_state, provisioning_state_time) VALUES (?, ?, ?, ?, ?, ?, 'creating', ?)",
            (rg, ws, name, json.dumps(props), subnet["id"], now, now))
        row = self.get(rg, ws, name)
        return row, lambda: self._provision(row["id"])

    def _provision(self, row_id: int) -> None:
        time.sleep(PROVISIONING_SECONDS)
        row = self.store.query_one("SELECT * FROM bai_fileservers WHERE id = ?", (row_id,))
        if row is None or row["provisioning_state"] != "creating":
            return
        directory = self.export_dir(row)
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.store.execute("UPDATE bai_fileservers SET provisioning_state = 'succeeded', provisioning_state_time = ? "
                           "WHERE id = ? AND provisioning_state = 'creating'", (utc_now(), row_id))

    def begin_delete(self, row: sqlite3.Row) -> Callable[[], None]:
        self.store.execute("UPDATE bai_fileservers SET provisioning_state = 'deleting', provisioning_state_time = ? "
                           "WHERE id = ?", (utc_now(), row["id"]))
        return lambda: self.delete_now(row)

    def delete_now(self, row: sqlite3.Row) -> None:
        shutil.rmtree(self.export_dir(row).parent, ignore_errors=True)
        self.store.execute("DELETE FROM bai_fileservers WHERE id = ?", (row["id"],))

    def delete_in_workspace(self, rg: str, ws: str) -> None:
        for row in self.store.query("SELECT * FROM bai_fileservers WHERE resource_group = ? AND workspace = ?",
                                    (rg, ws)):
            self.delete_now(row)
