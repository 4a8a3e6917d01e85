"""Azure ML request handlers: check the request, call the backend, shape the response.

Status codes as the SDK expects them (reference section 3): the workspace deployment 201 Succeeded at
once; compute PUT 201 and DELETE 202 with ``Azure-AsyncOperation`` and ``Location``; job cancel 202 with
``Location``; every 201/202 carries ``Retry-After`` so the SDK's pollers do not wait their 30 s default.
"""
from __future__ import annotations

import functools
from typing import Callable

from werkzeug.wrappers import Request, Response

from ..core.arm import json_response, read_json
from . import exceptions as errors
from . import asset_responses, names
from .models import AzureMLBackend
from .schemas import ASSET_VERSION_MODELS, check

RETRY_AFTER = "1"
PROVIDER_PATH = "providers/Microsoft.MachineLearningServices/locations/{}"


def read_body(request: Request, model: str) -> dict:
    """The JSON body, checked against the API's ``model`` (schemas.py) before any handler reads it."""
    return check(read_json(request), model)


def arm_operation(method: Callable) -> Callable:
    """Checks shared by every Resource Manager handler: our subscription; on writes, the names in the URL
    (a read of a name the service would refuse finds nothing: 404)."""
    @functools.wraps(method)
    def handler(self: "AzureMLResponses", request: Request, **params: str) -> Response:
        self.backend.check_subscription(params["subscription"])
        if request.method in ("PUT", "POST", "PATCH"):
            names.check_url(params)
        return method(self, request, **params)
    return handler


class AzureMLResponses:
    def __init__(self, backend: AzureMLBackend) -> None:
        self.backend = backend
        self.operations = backend.ctx.operations

    def _accepted(self, op_id, location: str, api_version: str, status: int = 202, body=None) -> Response:
        headers = self.operations.headers(op_id, PROVIDER_PATH.format(location), api_version)
        headers["Retry-After"] = RETRY_AFTER
        return json_response(body, status, headers)

    # ---- deployments ----------------------------------------------------------------------------

    @arm_operation
    def create_deployment(self, request: Request, subscription: str, resource_group: str,
                          deployment: str) -> Response:
        body = read_body(request, "Deployment")
        names.check_deployment(body)
        return json_response(self.backend.create_deployment(resource_group, deployment, body), 201)

    @arm_operation
    def get_deployment(self, request: Request, subscription: str, resource_group: str, deployment: str) -> Response:
        return json_response(self.backend.get_deployment(resource_group, deployment))

    @arm_operation
    def list_deployment_operations(self, request: Request, subscription: str, resource_group: str,
                                   deployment: str) -> Response:
        self.backend.get_deployment(resource_group, deployment)
        return json_response({"value": []})  # the resources are made at once: nothing is left to track

    # ---- workspaces -----------------------------------------------------------------------------

    @arm_operation
    def list_workspaces(self, request: Request, subscription: str, resource_group: str) -> Response:
        return json_response({"value": self.backend.list_workspaces(resource_group)})

    @arm_operation
    def get_workspace(self, request: Request, subscription: str, resource_group: str, workspace: str) -> Response:
        return json_response(self.backend.get_workspace(resource_group, workspace))

    @arm_operation
    def delete_workspace(self, request: Request, subscription: str, resource_group: str, workspace: str) -> Response:
        location = self.backend.get_workspace(resource_group, workspace)["location"] \
            if self.backend._workspace_row(resource_group, workspace, required=False) else "eastus"
        op_id = self.backend.delete_workspace(resource_group, workspace)
        if op_id is None:
            return json_response(None, 204)
        return self._accepted(op_id, location, request.args.get("api-version", ""))

    # ---- datastores -----------------------------------------------------------------------------

    @arm_operation
    def list_datastores(self, request: Request, subscription: str, resource_group: str, workspace: str) -> Response:
        items = self.backend.datastores(resource_group, workspace)
        if request.args.get("isDefault", "").lower() == "true":
            items = [item for item in items if item["properties"]["isDefault"]]
        return json_response({"value": items})

    @arm_operation
    def get_datastore(self, request: Request, subscription: str, resource_group: str, workspace: str,
                      datastore: str) -> Response:
        return json_response(self.backend.get_datastore(resource_group, workspace, datastore))

    @arm_operation
    def list_datastore_secrets(self, request: Request, subscription: str, resource_group: str, workspace: str,
                               datastore: str) -> Response:
        return json_response(self.backend.datastore_secrets(resource_group, workspace, datastore))

    # ---- assets ---------------------------------------------------------------------------------

    # Containers by name, version lists and the workspace PATCH (asset_responses.py).
    list_asset_containers = arm_operation(asset_responses.list_asset_containers)
    get_asset_container = arm_operation(asset_responses.get_asset_container)
    put_asset_container = arm_operation(asset_responses.put_asset_container)
    list_asset_versions = arm_operation(asset_responses.list_asset_versions)
    get_asset_version = arm_operation(asset_responses.get_asset_version)
    update_workspace = arm_operation(asset_responses.update_workspace)

    @arm_operation
    def create_asset_version(self, request: Request, subscription: str, resource_group: str, workspace: str,
                             kind: str, name: str, version: str) -> Response:
        body = read_body(request, ASSET_VERSION_MODELS[kind.lower()])
        body, created = self.backend.put_asset(resource_group, workspace, kind.lower(), name, version, body)
        return json_response(body, 201 if created else 200)

    @arm_operation
    def start_pending_upload(self, request: Request, subscription: str, resource_group: str, workspace: str,
                             kind: str, name: str, version: str) -> Response:
        body = read_body(request, "PendingUploadRequestDto")
        if body.get("pendingUploadType", "TemporaryBlobReference") != "TemporaryBlobReference":
            raise errors.invalid_request("pendingUploadType must be TemporaryBlobReference.")
        return json_response(self.backend.start_pending_upload(resource_group, workspace, kind.lower(), name,
                                                               version))

    # ---- computes -------------------------------------------------------------------------------

    @arm_operation
    def list_computes(self, request: Request, subscription: str, resource_group: str, workspace: str) -> Response:
        return json_response({"value": self.backend.list_computes(resource_group, workspace)})

    @arm_operation
    def create_compute(self, request: Request, subscription: str, resource_group: str, workspace: str,
                       compute: str) -> Response:
        body, created = self.backend.create_compute(resource_group, workspace, compute,
                                                        read_body(request, "ComputeResource"))
        op_id = self.operations.begin(body["id"], status="Succeeded")  # provisioned at once
        self.operations.finish(op_id)
        return self._accepted(op_id, body["location"], request.args.get("api-version", ""),
                              201 if created else 200, body)

    @arm_operation
    def get_compute(self, request: Request, subscription: str, resource_group: str, workspace: str,
                    compute: str) -> Response:
        return json_response(self.backend.get_compute(resource_group, workspace, compute))

    @arm_operation
    def delete_compute(self, request: Request, subscription: str, resource_group: str, workspace: str,
                       compute: str) -> Response:
        existing = self.backend._compute_row(resource_group, workspace, compute, required=False)
        op_id = self.backend.delete_compute(resource_group, workspace, compute)
        if op_id is None:
            return json_response(None, 204)
        return self._accepted(op_id, existing["location"], request.args.get("api-version", ""))

    # ---- jobs -----------------------------------------------------------------------------------

    @arm_operation
    def list_jobs(self, request: Request, subscription: str, resource_group: str, workspace: str) -> Response:
        return json_response({"value": self.backend.list_jobs(resource_group, workspace)})

    @arm_operation
    def create_job(self, request: Request, subscription: str, resource_group: str, workspace: str,
                   job: str) -> Response:
        body = read_body(request, "JobBase")
        names.check_job(body)
        body, created = self.backend.create_job(resource_group, workspace, job, body)
        return json_response(body, 201 if created else 200)

    @arm_operation
    def get_job(self, request: Request, subscription: str, resource_group: str, workspace: str, job: str) -> Response:
        return json_response(self.backend.get_job(resource_group, workspace, job))

    @arm_operation
    def cancel_job(self, request: Request, subscription: str, resource_group: str, workspace: str,
                   job: str) -> Response:
        location = self.backend.workspace(resource_group, workspace)["location"]
        op_id = self.backend.cancel_job(resource_group, workspace, job)
        headers = self.operations.headers(op_id, PROVIDER_PATH.format(location), request.args.get("api-version", ""))
        return json_response(None, 202, {"Location": headers["Location"], "Retry-After": RETRY_AFTER})

    # ---- long-running operations ----------------------------------------------------------------

    @arm_operation
    def get_operation_status(self, request: Request, subscription: str, location: str, operation: str) -> Response:
        """Azure-AsyncOperation: 200 with the operation's status."""
        return json_response(self.operations.status_body(operation, request.url))

    @arm_operation
    def get_operation_result(self, request: Request, subscription: str, location: str, operation: str) -> Response:
        """Location: 202 (poll again) while the operation runs, then 200."""
        op = self.operations.get(operation)
        if op is None:
            raise errors.operation_not_found(operation)
        if op["status"] == "InProgress":
            return json_response(None, 202, {"Location": request.url, "Retry-After": RETRY_AFTER})
        if op["status"] == "Failed":
            raise errors.ArmError(500, "InternalServerError", "The operation {} failed.".format(operation))
        return json_response(None, 200)


class AzureMLDataPlaneResponses:
    """The workspace's data plane: discovery, RunHistory and dataset resolution."""

    def __init__(self, backend: AzureMLBackend) -> None:
        self.backend = backend

    def discovery(self, request: Request) -> Response:
        api = self.backend.api_url_for()
        return json_response({key: api for key in ("api", "catalog", "experimentation", "gallery", "history",
                                                   "hyperdrive", "labeling", "modelmanagement", "pipelines",
                                                   "studiocoreservices")})

    def run_details(self, request: Request, subscription: str, resource_group: str, workspace: str,
                    run: str) -> Response:
        self.backend.check_subscription(subscription)
        return json_response(self.backend.run_details(resource_group, workspace, run))

    def run_data(self, request: Request, subscription: str, resource_group: str, workspace: str) -> Response:
        self.backend.check_subscription(subscription)
        run_id = read_body(request, "GetRunDataRequest")["runId"]
        if not run_id:
            raise errors.invalid_request("runId is required.")
        return json_response(self.backend.run_data(resource_group, workspace, run_id))

    def resolve_data_uris(self, request: Request, subscription: str, resource_group: str, workspace: str) -> Response:
        """Output asset ids (``azureml://locations/.../data/azureml_<job>_output_data_<out>/versions/1``) to the
        datastore paths the job wrote them to."""
        self.backend.check_subscription(subscription)
        values = {}
        for asset_id in read_body(request, "BatchGetResolvedURIs")["values"]:
            marker = "/data/azureml_"
            if marker in asset_id and "_output_data_" in asset_id:
                job, _, output = asset_id.split(marker, 1)[1].split("/versions/")[0].rpartition("_output_data_")
                values[asset_id] = {"uri": "azureml://datastores/workspaceblobstore/paths/" +
                                           self.backend.output_prefix(job, output), "type": "uri_folder"}
        return json_response({"values": values})
