"""Batch AI request handlers: check the request, call the backend, shape the response.

Status codes as the real service (reference section 1): workspace and experiment PUT 200 with
the resource; cluster and job PUT, every DELETE and terminate 202 with no body and the
``Azure-AsyncOperation`` / ``Location`` polling URLs. Lists are ``{"value": [...], "nextLink"?}``.
"""
from __future__ import annotations

import functools
from typing import Callable, Optional
from urllib.parse import quote, urlencode

from werkzeug.wrappers import Request, Response

from ..core import public_urls
from ..core.arm import RETRY_AFTER, json_response, read_json
from . import exceptions as errors
from . import shapes
from .exceptions import API_VERSION
from .models import BatchAIBackend, Lro
from .provider_operations import provider_operations
from .schemas import check
from .validation import check_name, normalize_location

# URL parameter -> the resource kind named in a 400 about it.
NAMED_PARAMETERS = {"workspace": "workspace", "experiment": "experiment", "cluster": "cluster", "job": "job",
                    "file_server": "file server"}
#: Set in the WSGI environ of a request whose names were already checked (the older API versions
#: allow dots in names, legacy.py).
NAMES_CHECKED = "emulator.batchai.names_checked"
MAX_RESULTS = 1000
LINK_EXPIRY_MINUTES = (5, 600)


def batchai_operation(resource_type: str) -> Callable:
    """Checks shared by every handler: api-version 2018-05-01, our subscription, valid names."""
    def decorate(method: Callable) -> Callable:
        @functools.wraps(method)
        def handler(self: "BatchAIResponses", request: Request, **params: str) -> Response:
            version = request.args.get("api-version", "")
            if version != API_VERSION:
                raise errors.unsupported_api_version(version, resource_type, self._location_of(params))
            if "subscription" in params and params["subscription"].lower() != self.backend.subscription_id.lower():
                raise errors.subscription_not_found(params["subscription"])
            for parameter, kind in NAMED_PARAMETERS.items():
                if parameter in params and not request.environ.get(NAMES_CHECKED):
                    check_name(kind, params[parameter])
            return method(self, request, **params)
        return handler
    return decorate


def read_body(request: Request, model: str) -> dict:
    """The JSON body, checked against the API's ``model`` (schemas.py) before any handler reads it."""
    return check(read_json(request), model)


def _int_parameter(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise errors.invalid_parameter("The query parameter '{}' must be an integer from {} to {}; got '{}'.".format(
            name, low, high, raw))
    return value


class BatchAIResponses:
    def __init__(self, backend: BatchAIBackend) -> None:
        self.backend = backend
        self.operations = backend.ctx.operations
        self.arm_url = backend.ctx.arm_url

    # ---- helpers -----------------------------------------------------------------------------

    def _location_of(self, params: dict) -> Optional[str]:
        """The location Resource Manager names in a refusal: the route's, else the resource group's."""
        if params.get("location"):
            return params["location"].replace(" ", "").lower()
        if params.get("resource_group"):
            group = self.backend.ctx.services["resourcemanager"].backend.find_group(params["resource_group"])
            return group["location"] if group else None
        return None

    def _accepted(self, lro: Optional[Lro]) -> Response:
        """202 with the polling URLs; a delete of something already gone is 204 (done)."""
        if lro is None:
            return json_response(None, 204)
        headers = self.operations.headers(lro.op_id, "providers/Microsoft.BatchAI/locations/" + lro.location,
                                          API_VERSION)
        return json_response(None, 202, headers)

    def _next_link(self, request: Request, **params) -> str:
        query = {key: value for key, value in request.args.items() if key != "$skiptoken"}
        query.update(params)
        return "{}{}?{}".format(public_urls.arm(self.arm_url), quote(request.path), urlencode(query))

    def _page(self, request: Request, items: list) -> Response:
        """``{"value": [...]}`` with at most ``maxresults`` items and a nextLink to the rest."""
        size = _int_parameter(request, "maxresults", MAX_RESULTS, 1, MAX_RESULTS)
        start = _int_parameter(request, "$skiptoken", 0, 0, 10**9)
        body: dict = {"value": items[start:start + size]}
        if start + size < len(items):
            body["nextLink"] = self._next_link(request, maxresults=size, **{"$skiptoken": start + size})
        return json_response(body)

    # ---- workspaces --------------------------------------------------------------------------

    @batchai_operation("workspaces")
    def list_workspaces(self, request: Request, subscription: str) -> Response:
        return self._page(request, [shapes.workspace(w) for w in self.backend.list_workspaces()])

    @batchai_operation("workspaces")
    def list_workspaces_by_resource_group(self, request: Request, subscription: str, resource_group: str) -> Response:
        return self._page(request, [shapes.workspace(w) for w in self.backend.list_workspaces(resource_group)])

    @batchai_operation("workspaces")
    def create_workspace(self, request: Request, subscription: str, resource_group: str, workspace: str) -> Response:
        body = read_body(request, "WorkspaceCreateParameters")
        return json_response(shapes.workspace(self.backend.create_workspace(resource_group, workspace, body)))

    @batchai_operation("workspaces")
    def get_workspace(self, request: Request, subscription: str, resource_group: str, workspace: str) -> Response:
        return json_response(shapes.workspace(self.backend.get_workspace(resource_group, workspace)))

    @batchai_operation("workspaces")
    def update_workspace(self, request: Request, subscription: str, resource_group: str, workspace: str) -> Response:
        body = read_body(request, "WorkspaceUpdateParameters")
        return json_response(shapes.workspace(self.backend.update_workspace(resource_group, workspace, body)))

    @batchai_operation("workspaces")
    def delete_workspace(self, request: Request, subscription: str, resource_group: str, workspace: str) -> Response:
        return self._accepted(self.backend.delete_workspace(resource_group, workspace))

    # ---- experiments -------------------------------------------------------------------------

    @batchai_operation("workspaces/experiments")
    def list_experiments(self, request: Request, subscription: str, resource_group: str, workspace: str) -> Response:
        return self._page(request, self.backend.list_experiments(resource_group, workspace))

    @batchai_operation("workspaces/experiments")
    def create_experiment(self, request: Request, subscription: str, resource_group: str, workspace: str,
                          experiment: str) -> Response:
        read_body(request, "ExperimentCreateParameters")
        return json_response(self.backend.create_experiment(resource_group, workspace, experiment))

    @batchai_operation("workspaces/experiments")
    def get_experiment(self, request: Request, subscription: str, resource_group: str, workspace: str,
                       experiment: str) -> Response:
        return json_response(self.backend.get_experiment(resource_group, workspace, experiment))

    @batchai_operation("workspaces/experiments")
    def delete_experiment(self, request: Request, subscription: str, resource_group: str, workspace: str,
                          experiment: str) -> Response:
        return self._accepted(self.backend.delete_experiment(resource_group, workspace, experiment))

    # ---- clusters ----------------------------------------------------------------------------

    @batchai_operation("workspaces/clusters")
    def list_clusters(self, request: Request, subscription: str, resource_group: str, workspace: str) -> Response:
        return self._page(request, [shapes.cluster(c) for c in self.backend.list_clusters(resource_group, workspace)])

    @batchai_operation("workspaces/clusters")
    def create_cluster(self, request: Request, subscription: str, resource_group: str, workspace: str,
                       cluster: str) -> Response:
        return self._accepted(self.backend.create_cluster(resource_group, workspace, cluster,
                                                          read_body(request, "ClusterCreateParameters")))

    @batchai_operation("workspaces/clusters")
    def get_cluster(self, request: Request, subscription: str, resource_group: str, workspace: str,
                    cluster: str) -> Response:
        return json_response(shapes.cluster(self.backend.get_cluster(resource_group, workspace, cluster)))

    @batchai_operation("workspaces/clusters")
    def update_cluster(self, request: Request, subscription: str, resource_group: str, workspace: str,
                       cluster: str) -> Response:
        return json_response(shapes.cluster(self.backend.update_cluster(resource_group, workspace, cluster,
                                                                        read_body(request, "ClusterUpdateParameters"))))

    @batchai_operation("workspaces/clusters")
    def delete_cluster(self, request: Request, subscription: str, resource_group: str, workspace: str,
                       cluster: str) -> Response:
        return self._accepted(self.backend.delete_cluster(resource_group, workspace, cluster))

    @batchai_operation("workspaces/clusters")
    def list_cluster_remote_login_information(self, request: Request, subscription: str, resource_group: str,
                                              workspace: str, cluster: str) -> Response:
        return self._page(request, self.backend.cluster_remote_logins(resource_group, workspace, cluster))

    # ---- file servers ------------------------------------------------------------------------

    @batchai_operation("workspaces/fileservers")
    def list_file_servers(self, request: Request, subscription: str, resource_group: str, workspace: str) -> Response:
        row = self.backend._workspace_row(self.backend.resource_group(resource_group), workspace)
        return self._page(request, self.backend.file_servers.list(row["resource_group"], row["name"]))

    @batchai_operation("workspaces/fileservers")
    def create_file_server(self, request: Request, subscription: str, resource_group: str, workspace: str,
                           file_server: str) -> Response:
        row = self.backend._writable_workspace(resource_group, workspace)
        servers = self.backend.file_servers
        server, work = servers.create(row["resource_group"], row["name"], file_server,
                                      read_body(request, "FileServerCreateParameters"))
        resource_id = servers.resource_id(row["resource_group"], row["name"], server["name"])
        return self._accepted(self.backend._lro(resource_id, row["location"], "create-file-server", work))

    @batchai_operation("workspaces/fileservers")
    def get_file_server(self, request: Request, subscription: str, resource_group: str, workspace: str,
                        file_server: str) -> Response:
        row = self.backend._workspace_row(self.backend.resource_group(resource_group), workspace)
        servers = self.backend.file_servers
        return json_response(servers.to_json(servers.get(row["resource_group"], row["name"], file_server)))

    @batchai_operation("workspaces/fileservers")
    def delete_file_server(self, request: Request, subscription: str, resource_group: str, workspace: str,
                           file_server: str) -> Response:
        row = self.backend._workspace_row(self.backend.resource_group(resource_group), workspace)
        servers = self.backend.file_servers
        server = servers.find(row["resource_group"], row["name"], file_server)
        if server is None:
            return self._accepted(None)
        resource_id = servers.resource_id(row["resource_group"], row["name"], server["name"])
        return self._accepted(self.backend._lro(resource_id, row["location"], "delete-file-server",
                                                servers.begin_delete(server)))

    # ---- jobs --------------------------------------------------------------------------------

    @batchai_operation("workspaces/experiments/jobs")
    def list_jobs(self, request: Request, subscription: str, resource_group: str, workspace: str,
                  experiment: str) -> Response:
        jobs = self.backend.list_jobs(resource_group, workspace, experiment)
        return self._page(request, [shapes.job(j) for j in jobs])

    @batchai_operation("workspaces/experiments/jobs")
    def create_job(self, request: Request, subscription: str, resource_group: str, workspace: str, experiment: str,
                   job: str) -> Response:
        return self._accepted(self.backend.create_job(resource_group, workspace, experiment, job,
                                                      read_body(request, "JobCreateParameters")))

    @batchai_operation("workspaces/experiments/jobs")
    def get_job(self, request: Request, subscription: str, resource_group: str, workspace: str, experiment: str,
                job: str) -> Response:
        return json_response(shapes.job(self.backend.get_job(resource_group, workspace, experiment, job)))

    @batchai_operation("workspaces/experiments/jobs")
    def delete_job(self, request: Request, subscription: str, resource_group: str, workspace: str, experiment: str,
                   job: str) -> Response:
        return self._accepted(self.backend.delete_job(resource_group, workspace, experiment, job))

    @batchai_operation("workspaces/experiments/jobs")
    def terminate_job(self, request: Request, subscription: str, resource_group: str, workspace: str,
                      experiment: str, job: str) -> Response:
        return self._accepted(self.backend.terminate_job(resource_group, workspace, experiment, job))

    @batchai_operation("workspaces/experiments/jobs")
    def list_job_remote_login_information(self, request: Request, subscription: str, resource_group: str,
                                          workspace: str, experiment: str, job: str) -> Response:
        return self._page(request, self.backend.job_remote_logins(resource_group, workspace, experiment, job))

    @batchai_operation("workspaces/experiments/jobs")
    def list_output_files(self, request: Request, subscription: str, resource_group: str, workspace: str,
                          experiment: str, job: str) -> Response:
        """POST (first page) or GET (nextLink): the entries of one directory of a job's outputs."""
        directory_id = request.args.get("outputdirectoryid")
        if not directory_id:
            raise errors.missing_property("outputdirectoryid", "the id of the output directory, or 'stdouterr'")
        expiry = _int_parameter(request, "linkexpiryinminutes", 60, *LINK_EXPIRY_MINUTES)
        size = _int_parameter(request, "maxresults", MAX_RESULTS, 1, MAX_RESULTS)
        marker: Optional[str] = request.args.get("$skiptoken") or None
        entries, next_marker = self.backend.list_output_files(
            resource_group, workspace, experiment, job, directory_id, request.args.get("directory", "."),
            expiry, size, marker)
        body: dict = {"value": [shapes.output_file(entry) for entry in entries]}
        if next_marker is not None:
            body["nextLink"] = self._next_link(request, **{"$skiptoken": next_marker})
        return json_response(body)

    # ---- usages and the provider's operations ---------------------------------------------------

    @batchai_operation("locations/usages")
    def list_usages(self, request: Request, subscription: str, location: str) -> Response:
        return self._page(request, self.backend.quotas.usages(normalize_location(location)))

    @batchai_operation("operations")
    def list_operations(self, request: Request) -> Response:
        return self._page(request, provider_operations())

    # ---- long-running operations -------------------------------------------------------------

    @batchai_operation("locations/operationresults")
    def get_operation(self, request: Request, subscription: str, location: str, operation: str) -> Response:
        """operationresults (Azure-AsyncOperation) and operationstatuses (Location, the final GET after a
        terminate POST) answer alike: 200 with the operation's status."""
        body = self.operations.status_body(operation, public_urls.arm(self.arm_url) + quote(request.path) + "?" +
                                           request.query_string.decode("latin-1"))
        if body["status"] == "InProgress":
            body.pop("properties", None)  # the service named the resource only once the operation ended
            return json_response(body, headers={"Retry-After": RETRY_AFTER})  # old clients' pause before the next poll
        body["properties"]["resourceId"] = _recorded_resource_id(body["properties"]["resourceId"])
        return json_response(body)


def _recorded_resource_id(arm_id: str) -> str:
    """The service named the resource of an operation ``{subscription}${group}${name}$...`` (recorded
    operationresults), not by its ARM id."""
    parts = arm_id.strip("/").split("/")
    if len(parts) < 4 or parts[0].lower() != "subscriptions" or parts[2].lower() != "resourcegroups":
        return arm_id
    names = [parts[1], parts[3]] + parts[7::2]  # after providers/Microsoft.BatchAI: type/name pairs
    return "$".join(names)
