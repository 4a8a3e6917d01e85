"""Azure Machine Learning state in SQLite: workspaces (made by Resource Manager deployments), their
datastores, asset versions (code, data, environments), AmlCompute clusters and command jobs.

Shapes are what azure-ai-ml 1.35.2 sends and reads (shared/reference/azureml-v2-flow.md, section 3).
A workspace's two datastores are fixed: ``workspaceblobstore`` (container ``azureml-blobstore-<id>``,
the default) and ``workspaceartifactstore`` (container ``azureml``, job logs and ``outputs/`` under
``ExperimentRun/dcid.<job>/``), both in the emulator's one storage account.
"""
from __future__ import annotations

import json
import logging
import sqlite3
import uuid
from typing import Optional

from ..core import public_urls
from ..core.arm import BackgroundWork, utc_now
from ..core.context import Context
from . import exceptions as errors
from .assets import AssetCatalog
from .storage import WorkspaceStorage
from .workspaces import updated_body

CANCELLED = "cancel"  # what a cancelled job is stopped with (jobstore.py maps it to Canceled)

log = logging.getLogger("emulator.azureml")

PROVIDER = "Microsoft.MachineLearningServices"
BLOB_STORE, ARTIFACT_STORE, ARTIFACT_CONTAINER = "workspaceblobstore", "workspaceartifactstore", "azureml"
ASSET_KINDS = ("codes", "data", "environments", "models")
# Job states (JobStatus) after which nothing changes.
TERMINAL = ("Completed", "Failed", "Canceled", "NotResponding", "Paused")

SCHEMA = """
CREATE TABLE IF NOT EXISTS aml_workspaces (
    resource_group TEXT NOT NULL COLLATE NOCASE, name TEXT NOT NULL COLLATE NOCASE, location TEXT NOT NULL,
    workspace_id TEXT NOT NULL, body TEXT NOT NULL, state TEXT NOT NULL, created TEXT NOT NULL,
    PRIMARY KEY (resource_group, name));
CREATE TABLE IF NOT EXISTS aml_deployments (
    resource_group TEXT NOT NULL COLLATE NOCASE, name TEXT NOT NULL COLLATE NOCASE, body TEXT NOT NULL,
    PRIMARY KEY (resource_group, name));
CREATE TABLE IF NOT EXISTS aml_assets (
    resource_group TEXT NOT NULL COLLATE NOCASE, workspace TEXT NOT NULL COLLATE NOCASE, kind TEXT NOT NULL,
    name TEXT NOT NULL, version TEXT NOT NULL, properties TEXT NOT NULL, created TEXT NOT NULL,
    PRIMARY KEY (resource_group, workspace, kind, name, version));
CREATE TABLE IF NOT EXISTS aml_computes (
    resource_group TEXT NOT NULL COLLATE NOCASE, workspace TEXT NOT NULL COLLATE NOCASE,
    name TEXT NOT NULL COLLATE NOCASE, location TEXT NOT NULL, properties TEXT NOT NULL, state TEXT NOT NULL,
    allocation_state TEXT NOT NULL DEFAULT 'Steady', created TEXT NOT NULL,
    PRIMARY KEY (resource_group, workspace, name));
CREATE TABLE IF NOT EXISTS aml_nodes (
    node_id TEXT PRIMARY KEY, compute_id INTEGER NOT NULL, seq INTEGER NOT NULL, state TEXT NOT NULL, job_id INTEGER);
CREATE TABLE IF NOT EXISTS aml_jobs (
    resource_group TEXT NOT NULL COLLATE NOCASE, workspace TEXT NOT NULL COLLATE NOCASE,
    name TEXT NOT NULL, properties TEXT NOT NULL, status TEXT NOT NULL, error TEXT, created TEXT NOT NULL,
    started TEXT, ended TEXT, compute_id INTEGER, nodes INTEGER NOT NULL DEFAULT 1, pid INTEGER,
    pid_start_time INTEGER, PRIMARY KEY (resource_group, workspace, name));
"""


class AzureMLBackend:
    def __init__(self, ctx: Context, storage: WorkspaceStorage) -> None:
        self.ctx = ctx
        self.store = ctx.store
        self.storage = storage
        self.subscription_id = ctx.identity.subscription_id
        self.api_url = ctx.arm_url + "/azureml-api"  # discovery "api": RunHistory and dataset data plane
        self.store.ensure_schema(SCHEMA)
        self.work = BackgroundWork(ctx.operations)
        self.records = None  # the AzureMLJobStore the runner sees, set by create_service
        self.runner = None   # the shared JobRunner (emulator.runner), set by create_service
        self.assets = AssetCatalog(self)  # containers, version lists, curated environments

    def api_url_for(self, location: Optional[str] = None) -> str:
        """The data plane's origin for the request being served (``<region>.api.azureml.ms`` through the proxy)."""
        return public_urls.azureml_api(self.api_url, location)

    # ---- ids --------------------------------------------------------------------------------

    def check_subscription(self, subscription: str) -> None:
        if subscription.lower() != self.subscription_id.lower():
            raise errors.subscription_not_found(subscription)

    def workspace_id(self, rg: str, ws: str) -> str:
        return "/subscriptions/{}/resourceGroups/{}/providers/{}/workspaces/{}".format(
            self.subscription_id, rg, PROVIDER, ws)

    def _check_group(self, rg: str) -> None:
        group = self.ctx.services["resourcemanager"].backend.find_group(rg)
        if group is None:
            raise errors.resource_group_not_found(rg)

    # ---- deployments (workspaces.begin_create) ----------------------------------------------

    def create_deployment(self, rg: str, name: str, body: dict) -> dict:
        """A workspace template deployment: the template is not evaluated; its parameters say which
        workspace to create (with its datastores), and the deployment is Succeeded at once."""
        self._check_group(rg)
        properties = body.get("properties") or {}
        parameters = {key: (value or {}).get("value") for key, value in (properties.get("parameters") or {}).items()}
        workspace = parameters.get("workspaceName")
        if not workspace:
            raise errors.invalid_request("The deployment has no workspaceName parameter: only Azure ML workspace "
                                         "templates are supported by the emulator.")
        self.create_workspace(rg, workspace, parameters)
        now = utc_now()
        deployment = {
            "id": "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Resources/deployments/{}".format(
                self.subscription_id, rg, name),
            "name": name, "type": "Microsoft.Resources/deployments",
            "properties": {"provisioningState": "Succeeded", "mode": properties.get("mode", "Incremental"),
                           "timestamp": now, "duration": "PT0S", "correlationId": str(uuid.uuid4()),
                           "outputResources": [{"id": self.workspace_id(rg, workspace)}]},
        }
        self.store.execute("INSERT OR REPLACE INTO aml_deployments (resource_group, name, body) VALUES (?, ?, ?)",
                           (rg, name, json.dumps(deployment)))
        return deployment

    def get_deployment(self, rg: str, name: str) -> dict:
        row = self.store.query_one("SELECT body FROM aml_deployments WHERE resource_group = ? AND name = ?", (rg, name))
        if row is None:
            raise errors.deployment_not_found(name)
        return json.loads(row["body"])

    # ---- workspaces -------------------------------------------------------------------------

    def create_workspace(self, rg: str, name: str, parameters: dict) -> dict:
        location = (parameters.get("location") or "eastus").replace(" ", "").lower()
        existing = self._workspace_row(rg, name, required=False)
        if existing is not None:
            return self.workspace_json(existing)
        workspace_id = str(uuid.uuid4())
        body = {key: parameters.get(key) for key in ("friendlyName", "description", "storageAccountName",
                                                     "keyVaultName", "applicationInsightsName", "tagValues")}
        self.store.execute("INSERT INTO aml_workspaces (resource_group, name, location, workspace_id, body, state, "
                           "created) VALUES (?, ?, ?, ?, ?, 'Succeeded', ?)",
                           (rg, name, location, workspace_id, json.dumps(body), utc_now()))
        self.storage.ensure_container(self._blob_container(workspace_id))
        self.storage.ensure_container(ARTIFACT_CONTAINER)
        log.info("workspace %s created in %s", name, location)
        return self.workspace_json(self._workspace_row(rg, name))

    def _workspace_row(self, rg: str, name: str, required: bool = True) -> Optional[sqlite3.Row]:
        row = self.store.query_one("SELECT * FROM aml_workspaces WHERE resource_group = ? AND name = ?", (rg, name))
        if row is None and required:
            raise errors.not_found("Microsoft.MachineLearningServices/workspaces", name)
        return row

    def workspace(self, rg: str, ws: str) -> sqlite3.Row:
        """The workspace row, for anything inside it (404 if missing or being deleted)."""
        row = self._workspace_row(rg, ws)
        if row["state"] == "Deleting":
            raise errors.not_found("Microsoft.MachineLearningServices/workspaces", ws)
        return row

    def workspace_json(self, row: sqlite3.Row) -> dict:
        body = json.loads(row["body"])
        rg, name = row["resource_group"], row["name"]
        arm_id = self.workspace_id(rg, name)
        resources = "/subscriptions/{}/resourceGroups/{}/providers/".format(self.subscription_id, rg)
        return {
            "id": arm_id, "name": name, "type": PROVIDER + "/workspaces", "location": row["location"],
            "kind": "Default", "tags": body.get("tagValues") or {},
            "identity": {"type": "SystemAssigned", "principalId": row["workspace_id"],
                         "tenantId": "00000000-0000-0000-0000-000000000000"},
            "sku": {"name": "Basic", "tier": "Basic"},
            "properties": {
                "friendlyName": body.get("friendlyName") or name, "description": body.get("description") or "",
                "workspaceId": row["workspace_id"], "provisioningState": row["state"],
                "creationTime": row["created"],
                "storageAccount": resources + "Microsoft.Storage/storageAccounts/" + self.storage.account_name,
                "keyVault": resources + "Microsoft.Keyvault/vaults/" + (body.get("keyVaultName") or name + "kv"),
                "applicationInsights": resources + "Microsoft.insights/components/" + (
                    body.get("applicationInsightsName") or name + "ai"),
                "discoveryUrl": self.api_url_for(row["location"]) + "/discovery",
                "mlFlowTrackingUri": "azureml://{}/mlflow/v1.0{}".format(
                    self.api_url_for(row["location"]).split("://", 1)[1], arm_id),
                "hbiWorkspace": False, "publicNetworkAccess": "Enabled", "v1LegacyMode": False,
                "storageHnsEnabled": False, "enableDataIsolation": False,
                **(body.get("updated") or {}),  # what PATCH changed (workspaces.py)
            },
        }

    def get_workspace(self, rg: str, ws: str) -> dict:
        return self.workspace_json(self._workspace_row(rg, ws))

    def update_workspace(self, rg: str, ws: str, patch: dict) -> dict:
        """PATCH: tags, description, friendly name and the other updatable properties (workspaces.py)."""
        row = self.workspace(rg, ws)
        self.store.execute("UPDATE aml_workspaces SET body = ? WHERE resource_group = ? AND name = ?",
                           (json.dumps(updated_body(json.loads(row["body"]), patch)), rg, ws))
        return self.get_workspace(rg, ws)

    def list_workspaces(self, rg: Optional[str] = None) -> list:
        rows = self.store.query("SELECT * FROM aml_workspaces" + (" WHERE resource_group = ?" if rg else "") +
                                " ORDER BY name", (rg,) if rg else ())
        return [self.workspace_json(row) for row in rows]

    def delete_workspace(self, rg: str, ws: str) -> Optional[str]:
        """Begin deleting a workspace with everything in it; the operation id, or None if already gone."""
        row = self._workspace_row(rg, ws, required=False)
        if row is None:
            return None
        op_id = self.ctx.operations.begin(self.workspace_id(rg, ws))
        self.store.execute("UPDATE aml_workspaces SET state = 'Deleting' WHERE resource_group = ? AND name = ?",
                           (rg, ws))
        self.work.run(op_id, "delete workspace {}".format(ws), lambda: self._delete_workspace_now(row))
        return op_id

    def _delete_workspace_now(self, row: sqlite3.Row) -> None:
        rg, ws = row["resource_group"], row["name"]
        self.store.execute("UPDATE aml_jobs SET status = 'Canceled' WHERE resource_group = ? AND workspace = ? AND "
                           "status IN ('NotStarted', 'Queued')", (rg, ws))
        for compute in self.store.query("SELECT name FROM aml_computes WHERE resource_group = ? AND workspace = ?",
                                        (rg, ws)):
            self._release_compute(rg, ws, compute["name"], "the workspace was deleted")
        for table in ("aml_jobs", "aml_computes", "aml_assets"):
            self.store.execute("DELETE FROM {} WHERE resource_group = ? AND workspace = ?".format(table), (rg, ws))
        self.assets.delete_workspace(rg, ws)
        self.storage.delete_container(self._blob_container(row["workspace_id"]))
        self.store.execute("DELETE FROM aml_workspaces WHERE resource_group = ? AND name = ?", (rg, ws))
        log.info("workspace %s deleted", ws)

    def delete_resource_group(self, rg: str) -> None:
        """Called by Resource Manager while it deletes a group (blocks until done)."""
        for row in self.store.query("SELECT * FROM aml_workspaces WHERE resource_group = ?", (rg,)):
            self._delete_workspace_now(row)
        self.store.execute("DELETE FROM aml_deployments WHERE resource_group = ?", (rg,))

    # ---- datastores -------------------------------------------------------------------------

    @staticmethod
    def _blob_container(workspace_id: str) -> str:
        return "azureml-blobstore-" + workspace_id

    def datastores(self, rg: str, ws: str) -> list:
        row = self.workspace(rg, ws)
        arm_id = self.workspace_id(row["resource_group"], row["name"])
        result = []
        for name, container, default in ((BLOB_STORE, self._blob_container(row["workspace_id"]), True),
                                         (ARTIFACT_STORE, ARTIFACT_CONTAINER, False)):
            result.append({
                "id": arm_id + "/datastores/" + name, "name": name, "type": PROVIDER + "/workspaces/datastores",
                "properties": {"datastoreType": "AzureBlob", "accountName": self.storage.account_name,
                               "containerName": container, "endpoint": public_urls.storage_suffix("core.localhost"), "protocol": "https",
                               "credentials": {"credentialsType": "AccountKey"}, "isDefault": default,
                               "serviceDataAccessAuthIdentity": "None", "description": "", "tags": {},
                               "properties": {}},
            })
        return result

    def get_datastore(self, rg: str, ws: str, name: str) -> dict:
        for datastore in self.datastores(rg, ws):
            if datastore["name"].lower() == name.lower():
                return datastore
        raise errors.not_found("datastore", name)

    def datastore_container(self, rg: str, ws: str, name: str) -> str:
        return self.get_datastore(rg, ws, name)["properties"]["containerName"]

    def datastore_secrets(self, rg: str, ws: str, name: str) -> dict:
        self.get_datastore(rg, ws, name)
        return {"secretsType": "AccountKey", "key": self.storage.account_key}

    # ---- assets -----------------------------------------------------------------------------

    def asset_json(self, row: sqlite3.Row) -> dict:
        kind = row["kind"]
        return {"id": "{}/{}/{}/versions/{}".format(self.workspace_id(row["resource_group"], row["workspace"]),
                                                   kind, row["name"], row["version"]),
                "name": row["version"], "type": "{}/workspaces/{}/versions".format(PROVIDER, kind),
                "properties": json.loads(row["properties"]),
                "systemData": {"createdAt": row["created"], "lastModifiedAt": row["created"]}}

    def put_asset(self, rg: str, ws: str, kind: str, name: str, version: str, body: dict) -> tuple:
        """(version JSON, created?). A version's location never changes, as on the service."""
        self.workspace(rg, ws)
        properties = dict(body.get("properties") or {})
        properties.setdefault("isArchived", False)
        properties.setdefault("tags", {})
        properties.setdefault("properties", {})
        properties["provisioningState"] = "Succeeded"
        if kind == "data" and str(properties.get("dataType", "")).lower() == "uri_folder" and \
                properties.get("dataUri") and not properties["dataUri"].endswith("/"):
            properties["dataUri"] += "/"  # the service answers folder URIs with a trailing slash
        location_key = {"codes": "codeUri", "data": "dataUri", "models": "modelUri"}.get(kind)
        existing = self._asset_row(rg, ws, kind, name, version, required=False)
        if existing is not None and kind == "environments":
            old = json.loads(existing["properties"])
            if any(old.get(key) != properties.get(key) for key in ("image", "condaFile", "build")):
                raise errors.conflict("Environment {} version {} already exists with a different definition; "
                                      "environment versions cannot be changed.".format(name, version))
        if existing is not None and location_key:
            old = json.loads(existing["properties"]).get(location_key)
            if old and properties.get(location_key) and old.rstrip("/") != properties[location_key].rstrip("/"):
                raise errors.conflict("Cannot update asset path of an existing asset version: {} {} version {} "
                                      "points to {}.".format(kind, name, version, old))
        self.store.execute("INSERT OR REPLACE INTO aml_assets (resource_group, workspace, kind, name, version, "
                           "properties, created) VALUES (?, ?, ?, ?, ?, ?, ?)",
                           (rg, ws, kind, name, version, json.dumps(properties),
                            existing["created"] if existing else utc_now()))
        return self.asset_json(self._asset_row(rg, ws, kind, name, version)), existing is None

    def _asset_row(self, rg: str, ws: str, kind: str, name: str, version: str,
                   required: bool = True) -> Optional[sqlite3.Row]:
        row = self.store.query_one("SELECT * FROM aml_assets WHERE resource_group = ? AND workspace = ? AND kind = ? "
                                   "AND name = ? AND version = ?", (rg, ws, kind, name, version))
        if row is None and required:
            raise errors.not_found(kind, "{}:{}".format(name, version))
        return row

    def get_asset(self, rg: str, ws: str, kind: str, name: str, version: str) -> dict:
        self.workspace(rg, ws)
        return self.asset_json(self._asset_row(rg, ws, kind, name, version))

    def start_pending_upload(self, rg: str, ws: str, kind: str, name: str, version: str) -> dict:
        """A fresh container and a SAS for it: where the SDK uploads a code snapshot."""
        self.workspace(rg, ws)
        pending_id = str(uuid.uuid4())
        container = "azureml-upload-" + pending_id.replace("-", "")[:40]
        self.storage.ensure_container(container)
        url = self.storage.container_url(container)
        return {"blobReferenceForConsumption": {
                    "blobUri": url, "storageAccountArmId": None,
                    "credential": {"credentialType": "SAS",
                                   "sasUri": url + "?" + self.storage.container_sas(container)}},
                "pendingUploadId": pending_id, "pendingUploadType": "TemporaryBlobReference"}

    # ---- computes ---------------------------------------------------------------------------

    def compute_json(self, row: sqlite3.Row) -> dict:
        properties = json.loads(row["properties"])
        properties["provisioningState"] = row["state"]
        properties.setdefault("createdOn", row["created"])
        inner = properties.setdefault("properties", {})
        counts = self.records.node_counts(row["id"]) if self.records else {}
        inner["allocationState"] = row["allocation_state"]
        inner["currentNodeCount"] = sum(counts.values())
        inner["targetNodeCount"] = self.records.target_nodes(row) if self.records else 0
        inner["nodeStateCounts"] = {"{}NodeCount".format(state): counts.get(state, 0)
                                    for state in ("idle", "running", "preparing", "unusable", "leaving", "preempted")}
        return {"id": "{}/computes/{}".format(self.workspace_id(row["resource_group"], row["workspace"]), row["name"]),
                "name": row["name"], "type": PROVIDER + "/workspaces/computes", "location": row["location"],
                "properties": properties}

    def create_compute(self, rg: str, ws: str, name: str, body: dict) -> tuple:
        """(compute JSON, created?). AmlCompute only, as the quickstart uses; nodes are this machine."""
        workspace = self.workspace(rg, ws)
        properties = dict(body.get("properties") or {})
        if properties.get("computeType") != "AmlCompute":
            raise errors.invalid_request("The emulator supports computeType 'AmlCompute' only, not {!r}.".format(
                properties.get("computeType")))
        inner = properties.get("properties") or {}
        if not inner.get("vmSize"):
            raise errors.invalid_request("properties.properties.vmSize is required for AmlCompute.")
        scale = inner.get("scaleSettings") or {}
        try:
            low, high = int(scale.get("minNodeCount", 0)), int(scale["maxNodeCount"])
        except (KeyError, TypeError, ValueError):
            raise errors.invalid_request("scaleSettings.maxNodeCount must be a whole number.") from None
        if not 0 <= low <= high:
            raise errors.invalid_request("scaleSettings: minNodeCount ({}) must be from 0 to maxNodeCount ({})."
                                         .format(low, high))
        location = (body.get("location") or workspace["location"]).replace(" ", "").lower()
        existing = self._compute_row(rg, ws, name, required=False)
        if existing is not None:  # an update keeps the row (and its id, which its jobs and nodes refer to)
            if existing["state"] == "Deleting":
                raise errors.conflict("Compute {} is being deleted.".format(name))
            self.store.execute("UPDATE aml_computes SET properties = ? WHERE rowid = ?",
                               (json.dumps(properties), existing["id"]))
        else:
            self.store.execute("INSERT INTO aml_computes (resource_group, workspace, name, location, properties, "
                               "state, created) VALUES (?, ?, ?, ?, ?, 'Succeeded', ?)",
                               (rg, ws, name, location, json.dumps(properties), utc_now()))
        row = self._compute_row(rg, ws, name)
        if self.runner is not None:
            self.runner.reconcile(row["id"])
        return self.compute_json(row), existing is None

    def _compute_row(self, rg: str, ws: str, name: str, required: bool = True) -> Optional[sqlite3.Row]:
        row = self.store.query_one("SELECT rowid AS id, * FROM aml_computes WHERE resource_group = ? AND "
                                   "workspace = ? AND name = ?", (rg, ws, name))
        if row is None and required:
            raise errors.not_found("compute", name)
        return row

    def get_compute(self, rg: str, ws: str, name: str) -> dict:
        self.workspace(rg, ws)
        return self.compute_json(self._compute_row(rg, ws, name))

    def list_computes(self, rg: str, ws: str) -> list:
        self.workspace(rg, ws)
        rows = self.store.query("SELECT rowid AS id, * FROM aml_computes WHERE resource_group = ? AND workspace = ? "
                                "ORDER BY name", (rg, ws))
        return [self.compute_json(row) for row in rows]

    def max_nodes(self, rg: str, ws: str, name: str) -> Optional[int]:
        row = self._compute_row(rg, ws, name, required=False)
        if row is None:
            return None
        return int(json.loads(row["properties"])["properties"]["scaleSettings"]["maxNodeCount"])

    def delete_compute(self, rg: str, ws: str, name: str) -> Optional[str]:
        """Begin deleting a compute (its running jobs fail); the operation id, or None if already gone."""
        self.workspace(rg, ws)
        row = self._compute_row(rg, ws, name, required=False)
        if row is None:
            return None
        compute_id = self.compute_json(row)["id"]
        op_id = self.ctx.operations.begin(compute_id)
        self.store.execute("UPDATE aml_computes SET state = 'Deleting' WHERE resource_group = ? AND workspace = ? "
                           "AND name = ?", (rg, ws, name))

        def delete() -> None:
            self._release_compute(rg, ws, name, "compute {} was deleted".format(name))
            self.store.execute("DELETE FROM aml_computes WHERE resource_group = ? AND workspace = ? AND name = ?",
                               (rg, ws, name))

        self.work.run(op_id, "delete compute {}".format(name), delete)
        return op_id

    def _release_compute(self, rg: str, ws: str, name: str, reason: str) -> None:
        """Stop the compute's running jobs (they fail with ``reason``) and let its nodes go."""
        row = self._compute_row(rg, ws, name, required=False)
        if row is None:
            return
        if self.runner is not None:
            running = [job["id"] for job in self.store.query(
                "SELECT rowid AS id FROM aml_jobs WHERE compute_id = ? AND status IN ('Preparing', 'Running', "
                "'CancelRequested')", (row["id"],))]
            self.runner.release(row["id"])
            self.runner.stop_jobs(running, reason)
        for node in self.store.query("SELECT node_id FROM aml_nodes WHERE compute_id = ?", (row["id"],)):
            self.records.remove_node(row["id"], node["node_id"])

    # ---- jobs -------------------------------------------------------------------------------

    def _job_row(self, rg: str, ws: str, name: str, required: bool = True) -> Optional[sqlite3.Row]:
        row = self.store.query_one("SELECT rowid AS id, * FROM aml_jobs WHERE resource_group = ? AND workspace = ? "
                                   "AND name = ?", (rg, ws, name))
        if row is None and required:
            raise errors.not_found("job", name)
        return row

    def job_row(self, rg: str, ws: str, name: str) -> sqlite3.Row:
        return self._job_row(rg, ws, name)

    def artifact_prefix(self, name: str) -> str:
        """Where a job's logs and ``outputs/`` live in the artifact store."""
        return "ExperimentRun/dcid.{}/".format(name)

    def output_prefix(self, job: str, output: str) -> str:
        """Where a named output lives in the default datastore (what the SDK's download probes)."""
        return "azureml/{}/{}/".format(job, output)

    def job_json(self, row: sqlite3.Row) -> dict:
        properties = json.loads(row["properties"])
        properties["status"] = row["status"]
        name = row["name"]
        arm_id = self.workspace_id(row["resource_group"], row["workspace"])
        workspace = self._workspace_row(row["resource_group"], row["workspace"], required=False)
        api_url = self.api_url_for(workspace["location"] if workspace else None)
        properties["services"] = {
            "Studio": {"jobServiceType": "Studio", "endpoint": "https://ml.azure.com/runs/{}?wsid={}".format(
                name, arm_id)},
            "Tracking": {"jobServiceType": "Tracking", "endpoint": "azureml://{}/mlflow/v1.0{}".format(
                api_url.split("://", 1)[1], arm_id)},
        }
        return {"id": arm_id + "/jobs/" + name, "name": name, "type": PROVIDER + "/workspaces/jobs",
                "properties": properties, "systemData": {"createdAt": row["created"]}}

    def create_job(self, rg: str, ws: str, name: str, body: dict) -> tuple:
        """(job JSON, created?). Command jobs only; a new job is queued for the runner."""
        self.workspace(rg, ws)
        properties = dict(body.get("properties") or {})
        existing = self._job_row(rg, ws, name, required=False)
        if existing is not None:
            raise errors.conflict("A job named {} already exists; job names are unique in a workspace.".format(name))
        if properties.get("jobType") != "Command":
            raise errors.invalid_request("The emulator runs jobType 'Command' only, not {!r}.".format(
                properties.get("jobType")))
        for key in ("command", "computeId", "environmentId"):
            if not properties.get(key):
                raise errors.invalid_request("properties.{} is required for a command job.".format(key))
        compute = properties["computeId"].rstrip("/").rsplit("/", 1)[-1]
        compute_row = self._compute_row(rg, ws, compute, required=False)
        if compute_row is None:
            raise errors.invalid_request("Compute {} not found in workspace {}.".format(compute, ws))
        try:
            nodes = int((properties.get("resources") or {}).get("instanceCount") or 1)
        except (TypeError, ValueError):
            raise errors.invalid_request("resources.instanceCount must be a whole number.") from None
        properties["properties"] = properties.get("properties") or {}
        properties.setdefault("tags", {})
        properties.setdefault("experimentName", "Default")
        properties.setdefault("displayName", name)
        outputs = dict(properties.get("outputs") or {})
        for output_name, output in outputs.items():
            output = dict(output or {})
            output.setdefault("mode", "ReadWriteMount")
            output.setdefault("uri", "azureml://datastores/{}/paths/{}".format(
                BLOB_STORE, self.output_prefix(name, output_name)))
            outputs[output_name] = output
        outputs["default"] = {"jobOutputType": "uri_folder", "mode": "ReadWriteMount",
                              "uri": "azureml://datastores/{}/ExperimentRun/dcid.{}".format(ARTIFACT_STORE, name)}
        properties["outputs"] = outputs
        self.store.execute("INSERT INTO aml_jobs (resource_group, workspace, name, properties, status, created, "
                           "compute_id, nodes) VALUES (?, ?, ?, ?, 'NotStarted', ?, ?, ?)",
                           (rg, ws, name, json.dumps(properties), utc_now(), compute_row["id"], nodes))
        body = self.job_json(self._job_row(rg, ws, name))
        maximum = self.max_nodes(rg, ws, compute)
        if nodes > maximum:  # the service would wait for ever; say so at once instead
            self.set_job_status(rg, ws, name, "Failed", errors.too_many_nodes(nodes, maximum, compute))
        elif self.runner is not None:
            log.info("job %s submitted to %s (%d node(s))", name, compute, nodes)
            self.runner.reconcile(compute_row["id"])  # the cluster scales up for it
            self.runner.notify()
        return body, True

    def get_job(self, rg: str, ws: str, name: str) -> dict:
        self.workspace(rg, ws)
        return self.job_json(self._job_row(rg, ws, name))

    def list_jobs(self, rg: str, ws: str) -> list:
        self.workspace(rg, ws)
        rows = self.store.query("SELECT * FROM aml_jobs WHERE resource_group = ? AND workspace = ? "
                                "ORDER BY created DESC", (rg, ws))
        return [self.job_json(row) for row in rows]

    def set_job_status(self, rg: str, ws: str, name: str, status: str, error: Optional[dict] = None) -> None:
        """Move a job on; a terminal status is final (a late update never revives a job)."""
        now = utc_now()
        with self.store.transaction():
            row = self._job_row(rg, ws, name, required=False)
            if row is None or row["status"] in TERMINAL:
                return
            started = row["started"] or (now if status == "Running" else None)
            ended = now if status in TERMINAL else None
            self.store.execute("UPDATE aml_jobs SET status = ?, error = COALESCE(?, error), started = ?, ended = ? "
                               "WHERE resource_group = ? AND workspace = ? AND name = ?",
                               (status, json.dumps(error) if error else None, started, ended, rg, ws, name))

    def cancel_job(self, rg: str, ws: str, name: str) -> str:
        """Begin cancelling a job; the operation id (done at once when it already ended)."""
        self.workspace(rg, ws)
        row = self._job_row(rg, ws, name)
        op_id = self.ctx.operations.begin(self.job_json(row)["id"])
        if row["status"] in TERMINAL:
            self.ctx.operations.finish(op_id)
            return op_id
        with self.store.transaction():  # a job still waiting for nodes is cancelled here and now
            waiting = self.store.execute("UPDATE aml_jobs SET status = 'Canceled', error = ?, ended = ? WHERE "
                                         "rowid = ? AND status IN ('NotStarted', 'Queued')",
                                         (json.dumps(errors.job_cancelled()), utc_now(), row["id"])) == 1
        if waiting:
            self.ctx.operations.finish(op_id)
            if row["compute_id"] is not None:
                self.runner.reconcile(row["compute_id"])
            return op_id
        self.work.run(op_id, "cancel job {}".format(name),
                      lambda: self.runner.stop_jobs([row["id"]], CANCELLED))
        return op_id

    # ---- RunHistory -------------------------------------------------------------------------

    def run_details(self, rg: str, ws: str, name: str) -> dict:
        self.workspace(rg, ws)
        row = self._job_row(rg, ws, name)
        properties = json.loads(row["properties"])
        details = {"runId": name, "runUuid": str(uuid.uuid5(uuid.NAMESPACE_URL, self.job_json(row)["id"])),
                   "status": row["status"], "target": properties["computeId"].rsplit("/", 1)[-1],
                   "createdTimeUtc": row["created"], "startTimeUtc": row["started"], "endTimeUtc": row["ended"],
                   "logFiles": {}, "warnings": [], "tags": properties.get("tags") or {},
                   "properties": {"azureml.runsource": "azureml.CommandJob"}}
        if row["error"]:
            details["error"] = json.loads(row["error"])
        return details

    def run_data(self, rg: str, ws: str, name: str) -> dict:
        """``runMetadata.outputs``: named outputs as RunHistory reports them (type in PascalCase)."""
        workspace = self.workspace(rg, ws)
        row = self._job_row(rg, ws, name)
        properties = json.loads(row["properties"])
        outputs = {}
        for output_name in properties.get("outputs") or {}:
            if output_name == "default":
                continue
            outputs[output_name] = {"assetId": "azureml://locations/{}/workspaces/{}/data/azureml_{}_output_data_{}/"
                                               "versions/1".format(workspace["location"], workspace["workspace_id"],
                                                                   name, output_name),
                                    "type": "UriFolder"}
        details = self.run_details(rg, ws, name)
        details["outputs"] = outputs
        return {"runMetadata": details, "runDefinition": None, "jobSpecification": None}
