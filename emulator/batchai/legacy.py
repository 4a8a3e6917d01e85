"""API versions 2017-09-01-preview and 2018-03-01, served by the 2018-05-01 handlers.

Clusters, jobs and file servers of the old versions sit directly in a resource group. Here they
live in the workspace ``migrated-<location>`` of that group (jobs in its experiment ``migrated``),
as the service placed them when 2018-05-01 came; 2018-05-01 clients see them there
(docs/api-versions.md). An old request is rewritten into the 2018-05-01 request for that place
(path, api-version, body mapped by versions.py) and handed to the same handler a 2018-05-01 client
reaches, so validation, models and the runner are shared; its response is mapped back.

Long-running operations are answered the way msrest/msrestazure clients wait least: a PUT or DELETE
whose work is done (or finishes within LRO_WAIT_SECONDS) gets 200 with the resource (PUT) or 200
(DELETE, terminate); one still running gets 202 with both polling URLs and ``Retry-After: 1``, since
those clients sleep Retry-After seconds (30 when absent) before every poll.
"""
from __future__ import annotations

import functools
import json
import time
from typing import Callable, NamedTuple, Optional
from urllib.parse import urlencode

from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request, Response

from ..core.arm import json_response, read_json
from . import exceptions as errors
from . import shapes
from . import versions
from .responses import NAMES_CHECKED, BatchAIResponses

#: How long an old-version PUT or DELETE waits for its operation before answering 202.
LRO_WAIT_SECONDS = 2.0
RETRY_AFTER_SECONDS = "1"

_EXTRAS_SCHEMA = """
CREATE TABLE IF NOT EXISTS bai_legacy_extras (
    resource_id TEXT PRIMARY KEY COLLATE NOCASE, creation_time TEXT NOT NULL, extras TEXT NOT NULL);
"""

# kind -> (table, path segment in 2018-05-01 ids (lower-case fileservers, as the service wrote them), handler
# and URL parameter name)
_KINDS = {
    "clusters": ("bai_clusters", "clusters", "cluster"),
    "jobs": ("bai_jobs", "jobs", "job"),
    "fileservers": ("bai_fileservers", "fileservers", "file_server"),
}
_KIND_NAMES = {"clusters": "cluster", "jobs": "job", "fileservers": "file server"}


class Target(NamedTuple):
    """Where an old-version resource lives in 2018-05-01 terms."""
    kind: str
    resource_group: str
    workspace: str
    name: str
    location: str

    @property
    def params(self) -> dict:
        params = {"resource_group": self.resource_group, "workspace": self.workspace, _KINDS[self.kind][2]: self.name}
        if self.kind == "jobs":
            params["experiment"] = versions.RESERVED_EXPERIMENT
        return params

    def path(self, subscription: str) -> str:
        middle = "experiments/{}/".format(versions.RESERVED_EXPERIMENT) if self.kind == "jobs" else ""
        return "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.BatchAI/workspaces/{}/{}{}/{}".format(
            subscription, self.resource_group, self.workspace, middle, _KINDS[self.kind][1], self.name)


def old_operation(resource_type: str) -> Callable:
    """Checks of every old-version route: an old api-version, our subscription, old-style names."""
    def decorate(method: Callable) -> Callable:
        @functools.wraps(method)
        def handler(self: "VersionedResponses", request: Request, **params: str) -> Response:
            version = request.args.get("api-version", "")
            if version not in versions.OLD_VERSIONS:
                raise errors.unsupported_api_version(version, resource_type, self.current._location_of(params),
                                                     versions.OLD_VERSIONS)
            if params["subscription"].lower() != self.backend.subscription_id.lower():
                raise errors.subscription_not_found(params["subscription"])
            for parameter, kind in (("cluster", "cluster"), ("job", "job"), ("file_server", "file server")):
                if parameter in params:
                    versions.check_old_name(kind, params[parameter])
            return method(self, request, version, **params)
        return handler
    return decorate


class LegacyExtras:
    """What 2018-05-01 has no place for (tags, integer priority, ...), per resource id; an entry counts
    only for the resource it was written for (same creation time)."""

    def __init__(self, store) -> None:
        self.store = store
        store.ensure_schema(_EXTRAS_SCHEMA)

    def get(self, resource_id: str, creation_time: Optional[str]) -> dict:
        row = self.store.query_one("SELECT * FROM bai_legacy_extras WHERE resource_id = ?", (resource_id,))
        return json.loads(row["extras"]) if row and row["creation_time"] == (creation_time or "") else {}

    def put(self, resource_id: str, creation_time: Optional[str], extras: dict) -> None:
        self.store.execute("INSERT OR REPLACE INTO bai_legacy_extras (resource_id, creation_time, extras) "
                           "VALUES (?, ?, ?)", (resource_id, creation_time or "", json.dumps(extras)))

    def delete(self, resource_id: str) -> None:
        self.store.execute("DELETE FROM bai_legacy_extras WHERE resource_id = ?", (resource_id,))


class VersionedResponses:
    """The routes of every api-version: 2018-05-01 ones go to ``current`` unchanged, old ones through
    the mapping; the three shared routes (operations, usages, operation results) by api-version."""

    def __init__(self, current: BatchAIResponses) -> None:
        self.current = current
        self.backend = current.backend
        self.subscription = self.backend.subscription_id
        self.extras = LegacyExtras(self.backend.store)

    def __getattr__(self, name: str):
        if name == "current":  # not set yet: no recursion through __getattr__
            raise AttributeError(name)
        return getattr(self.current, name)

    # ---- plumbing ------------------------------------------------------------------------------

    def _rewrite(self, request: Request, method: str, path: str, query: Optional[dict] = None,
                 body: Optional[dict] = None) -> Request:
        """The 2018-05-01 request an old one stands for: same host and headers, another path and body."""
        query = dict(request.args.items()) if query is None else query
        query["api-version"] = versions.CURRENT
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in ("content-length", "content-type")]
        builder = EnvironBuilder(path=path, base_url=request.host_url.rstrip("/"), method=method,
                                 query_string=urlencode(query), headers=headers,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 content_type="application/json; charset=utf-8" if body is not None else None)
        environ = builder.get_environ()
        # what the server put in the environ of the real request (e.g. how it was reached) stays
        environ.update({key: value for key, value in request.environ.items()
                        if "." in key and not key.startswith(("wsgi.", "werkzeug."))})
        environ["REMOTE_ADDR"] = request.remote_addr or "127.0.0.1"
        environ[NAMES_CHECKED] = True  # checked against the old pattern, which allows dots
        return Request(environ)

    def _locate(self, kind: str, rg: str, name: str) -> Optional[Target]:
        """The old-version resource ``name`` of resource group ``rg``, in whichever reserved workspace."""
        table = _KINDS[kind][0]
        extra = " AND r.experiment = ?" if kind == "jobs" else ""
        params = (rg, name, versions.RESERVED_WORKSPACE_PREFIX + "%") + \
            ((versions.RESERVED_EXPERIMENT,) if kind == "jobs" else ())
        row = self.backend.store.query_one(
            "SELECT r.resource_group, r.workspace, r.name, w.location FROM {} r JOIN bai_workspaces w ON "
            "w.resource_group = r.resource_group AND w.name = r.workspace WHERE r.resource_group = ? AND r.name = ? "
            "AND r.workspace LIKE ?{} ORDER BY r.workspace LIMIT 1".format(table, extra), params)
        if row is None:
            return None
        return Target(kind, row["resource_group"], row["workspace"], row["name"], row["location"])

    def _existing(self, kind: str, rg: str, name: str) -> Target:
        target = self._locate(kind, self.backend.resource_group(rg), name)
        if target is None:
            raise {"clusters": errors.cluster_not_found, "jobs": errors.job_not_found,
                   "fileservers": errors.file_server_not_found}[kind](name)
        return target

    def _locate_id(self, kind: str, rg: str, name: str) -> Optional[str]:
        target = self._locate(kind, rg, name)
        return target.path(self.subscription) if target else None

    def _reserved(self, rg: str, location: str) -> str:
        """The reserved workspace of ``location`` in ``rg``, made on first use."""
        workspace = versions.reserved_workspace(location)
        if self.backend._find("bai_workspaces", resource_group=rg, name=workspace) is None:
            self.backend.create_workspace(rg, workspace, {"location": location})
        return workspace

    def _call(self, handler: str, request: Request, target: Target, method: str, suffix: str = "",
              query: Optional[dict] = None, body: Optional[dict] = None) -> Response:
        rewritten = self._rewrite(request, method, target.path(self.subscription) + suffix, query, body)
        return getattr(self.current, handler)(rewritten, subscription=self.subscription, **target.params)

    def _shaped(self, version: str, target: Target, body: dict) -> dict:
        creation = (body.get("properties") or {}).get("creationTime")
        extras = self.extras.get(body["id"], creation)
        return versions.resource_response(target.kind, version, body, target.location, extras)

    def _get_body(self, request: Request, target: Target) -> dict:
        handler = "get_" + _KINDS[target.kind][2]
        return json.loads(self._call(handler, request, target, "GET", query={}).get_data())

    def _wait(self, response: Response) -> str:
        """The status of the operation a 202 names, once done or after LRO_WAIT_SECONDS."""
        op_id = response.headers["Azure-AsyncOperation"].split("?")[0].rstrip("/").rsplit("/", 1)[-1]
        deadline = time.monotonic() + LRO_WAIT_SECONDS
        while True:
            status = (self.current.operations.get(op_id) or {}).get("status", "Succeeded")
            if status != "InProgress" or time.monotonic() >= deadline:
                return status
            time.sleep(0.05)

    def _accepted(self, response: Response, version: str) -> Response:
        headers = {name: versions.with_api_version(response.headers[name], version)
                   for name in ("Azure-AsyncOperation", "Location") if name in response.headers}
        headers["Retry-After"] = RETRY_AFTER_SECONDS
        return json_response(None, 202, headers)

    def _finish_put(self, request: Request, version: str, target: Target, response: Response,
                    extras: dict) -> Response:
        """Record the extras; 200 with the resource when it is ready, else the 202 to poll."""
        body = self._get_body(request, target)
        self.extras.put(body["id"], (body.get("properties") or {}).get("creationTime"), extras)
        status = self._wait(response) if response.status_code == 202 else "Succeeded"
        if status == "Succeeded":
            body = self._get_body(request, target)
            if body["properties"].get("provisioningState") == "succeeded":
                return json_response(self._shaped(version, target, body))
        return self._accepted(response, version)

    def _finish(self, response: Response, version: str) -> Response:
        """DELETE and terminate: 200 when done (soon), else the 202 to poll."""
        if response.status_code != 202:
            return response
        if self._wait(response) == "Succeeded":
            return json_response(None, 200)
        return self._accepted(response, version)

    def _relay_list(self, request: Request, version: str, response: Response, map_items=None) -> Response:
        """A page from a 2018-05-01 list handler, with its nextLink on the old path and version."""
        body = json.loads(response.get_data())
        if map_items is not None:
            body["value"] = map_items(body["value"])
        if body.get("nextLink"):
            body["nextLink"] = versions.old_link(body["nextLink"], request.path, version)
        return json_response(body)

    # ---- lists ---------------------------------------------------------------------------------

    def _list(self, request: Request, version: str, kind: str, rg: Optional[str] = None) -> Response:
        if rg is not None:
            rg = self.backend.resource_group(rg)
            workspaces = self.backend.store.query(
                "SELECT * FROM bai_workspaces WHERE resource_group = ? AND name LIKE ? ORDER BY name",
                (rg, versions.RESERVED_WORKSPACE_PREFIX + "%"))
        else:
            workspaces = self.backend.store.query("SELECT * FROM bai_workspaces WHERE name LIKE ? ORDER BY "
                                                  "resource_group, name", (versions.RESERVED_WORKSPACE_PREFIX + "%",))
        items = []
        for ws in workspaces:
            group, name = ws["resource_group"], ws["name"]
            if kind == "clusters":
                bodies = [shapes.cluster(c) for c in self.backend.list_clusters(group, name)]
            elif kind == "fileservers":
                bodies = self.backend.file_servers.list(group, name)
            elif self.backend._find("bai_experiments", resource_group=group, workspace=name,
                                    name=versions.RESERVED_EXPERIMENT):
                bodies = [shapes.job(j) for j in self.backend.list_jobs(group, name, versions.RESERVED_EXPERIMENT)]
            else:
                bodies = []
            for body in bodies:
                target = Target(kind, group, name, body["name"], ws["location"])
                items.append(self._shaped(version, target, body))
        return self.current._page(request, items)

    # ---- clusters ------------------------------------------------------------------------------

    @old_operation("clusters")
    def legacy_list_clusters(self, request: Request, version: str, subscription: str) -> Response:
        return self._list(request, version, "clusters")

    @old_operation("clusters")
    def legacy_list_clusters_by_resource_group(self, request: Request, version: str, subscription: str,
                                               resource_group: str) -> Response:
        return self._list(request, version, "clusters", resource_group)

    @old_operation("clusters")
    def legacy_create_cluster(self, request: Request, version: str, subscription: str, resource_group: str,
                              cluster: str) -> Response:
        rg = self.backend.resource_group(resource_group, for_update=True)
        body, extras, location = versions.cluster_request(version, read_json(request), self._locate_id)
        target = self._target_for_put("clusters", rg, cluster, location)
        response = self._call("create_cluster", request, target, "PUT", query={}, body=body)
        return self._finish_put(request, version, target, response, extras)

    def _target_for_put(self, kind: str, rg: str, name: str, location: str) -> Target:
        existing = self._locate(kind, rg, name)
        if existing is not None:
            if existing.location != location:
                raise errors.invalid_parameter("The {} {} is in location '{}'; it cannot move to '{}'.".format(
                    _KIND_NAMES[kind], existing.name, existing.location, location))
            return existing
        return Target(kind, rg, self._reserved(rg, location), name, location)

    @old_operation("clusters")
    def legacy_get_cluster(self, request: Request, version: str, subscription: str, resource_group: str,
                           cluster: str) -> Response:
        target = self._existing("clusters", resource_group, cluster)
        return json_response(self._shaped(version, target, self._get_body(request, target)))

    @old_operation("clusters")
    def legacy_update_cluster(self, request: Request, version: str, subscription: str, resource_group: str,
                              cluster: str) -> Response:
        """PATCH: tags and/or scaleSettings."""
        target = self._existing("clusters", resource_group, cluster)
        body, tags = versions.cluster_update_request(read_json(request))
        if body is not None:
            self._call("update_cluster", request, target, "PATCH", query={}, body=body)
        current = self._get_body(request, target)
        if tags is not None:
            creation = current["properties"].get("creationTime")
            extras = self.extras.get(current["id"], creation)
            self.extras.put(current["id"], creation, dict(extras, tags=tags))
        return json_response(self._shaped(version, target, current))

    @old_operation("clusters")
    def legacy_delete_cluster(self, request: Request, version: str, subscription: str, resource_group: str,
                              cluster: str) -> Response:
        return self._delete(request, version, "clusters", resource_group, cluster)

    def _delete(self, request: Request, version: str, kind: str, resource_group: str, name: str) -> Response:
        target = self._locate(kind, self.backend.resource_group(resource_group), name)
        if target is None:
            return json_response(None, 204)
        response = self._call("delete_" + _KINDS[kind][2], request, target, "DELETE", query={})
        self.extras.delete(target.path(self.subscription))  # ids compare without case
        return self._finish(response, version)

    @old_operation("clusters")
    def legacy_list_cluster_remote_login_information(self, request: Request, version: str, subscription: str,
                                                     resource_group: str, cluster: str) -> Response:
        target = self._existing("clusters", resource_group, cluster)
        response = self._call("list_cluster_remote_login_information", request, target, request.method,
                              "/listRemoteLoginInformation")
        return self._relay_list(request, version, response)

    # ---- file servers --------------------------------------------------------------------------

    @old_operation("fileservers")
    def legacy_list_file_servers(self, request: Request, version: str, subscription: str) -> Response:
        return self._list(request, version, "fileservers")

    @old_operation("fileservers")
    def legacy_list_file_servers_by_resource_group(self, request: Request, version: str, subscription: str,
                                                   resource_group: str) -> Response:
        return self._list(request, version, "fileservers", resource_group)

    @old_operation("fileservers")
    def legacy_create_file_server(self, request: Request, version: str, subscription: str, resource_group: str,
                                  file_server: str) -> Response:
        rg = self.backend.resource_group(resource_group, for_update=True)
        body, extras, location = versions.file_server_request(version, read_json(request))
        target = self._target_for_put("fileservers", rg, file_server, location)
        response = self._call("create_file_server", request, target, "PUT", query={}, body=body)
        return self._finish_put(request, version, target, response, extras)

    @old_operation("fileservers")
    def legacy_get_file_server(self, request: Request, version: str, subscription: str, resource_group: str,
                               file_server: str) -> Response:
        target = self._existing("fileservers", resource_group, file_server)
        return json_response(self._shaped(version, target, self._get_body(request, target)))

    @old_operation("fileservers")
    def legacy_delete_file_server(self, request: Request, version: str, subscription: str, resource_group: str,
                                  file_server: str) -> Response:
        return self._delete(request, version, "fileservers", resource_group, file_server)

    # ---- jobs ----------------------------------------------------------------------------------

    @old_operation("jobs")
    def legacy_list_jobs(self, request: Request, version: str, subscription: str) -> Response:
        return self._list(request, version, "jobs")

    @old_operation("jobs")
    def legacy_list_jobs_by_resource_group(self, request: Request, version: str, subscription: str,
                                           resource_group: str) -> Response:
        return self._list(request, version, "jobs", resource_group)

    @old_operation("jobs")
    def legacy_create_job(self, request: Request, version: str, subscription: str, resource_group: str,
                          job: str) -> Response:
        """A job goes to the reserved workspace of its cluster, which must be an old-version cluster of
        the same resource group."""
        rg = self.backend.resource_group(resource_group, for_update=True)
        raw = read_json(request)
        named = ((raw.get("properties") or {}).get("cluster") or {}).get("id") \
            if isinstance(raw.get("properties"), dict) and isinstance(raw["properties"].get("cluster"), dict) else None
        body, extras, location = versions.job_request(version, raw, self._locate_id)
        cluster = self._job_cluster(rg, named)
        if cluster is not None and cluster.location != location:
            raise errors.invalid_parameter("The job's location '{}' is not that of its cluster {} ('{}').".format(
                location, cluster.name, cluster.location))
        existing = self._locate("jobs", rg, job)
        workspace = existing.workspace if existing else (cluster.workspace if cluster else self._reserved(rg, location))
        self.backend.create_experiment(rg, workspace, versions.RESERVED_EXPERIMENT)
        target = Target("jobs", rg, workspace, job, location)
        response = self._call("create_job", request, target, "PUT", query={}, body=body)
        return self._finish_put(request, version, target, response, extras)

    def _job_cluster(self, rg: str, cluster_id: Optional[str]) -> Optional[Target]:
        """The old-version cluster a job names (None when it names none: 2018-05-01's checks say why)."""
        match = versions._OLD_ID.fullmatch(cluster_id or "") if isinstance(cluster_id, str) else None
        if not match or match["kind"].lower() != "clusters":
            return None
        if match["group"].lower() != rg.lower():
            raise errors.job_cluster_invalid("properties.cluster.id '{}' is in another resource group: a job runs on "
                                             "a cluster of its own resource group ({}).".format(cluster_id, rg))
        cluster = self._locate("clusters", rg, match["name"])
        if cluster is None:
            raise errors.job_cluster_invalid("The cluster '{}' named by properties.cluster.id does not exist in "
                                             "resource group {}.".format(match["name"], rg))
        return cluster

    @old_operation("jobs")
    def legacy_get_job(self, request: Request, version: str, subscription: str, resource_group: str,
                       job: str) -> Response:
        target = self._existing("jobs", resource_group, job)
        return json_response(self._shaped(version, target, self._get_body(request, target)))

    @old_operation("jobs")
    def legacy_delete_job(self, request: Request, version: str, subscription: str, resource_group: str,
                          job: str) -> Response:
        return self._delete(request, version, "jobs", resource_group, job)

    @old_operation("jobs")
    def legacy_terminate_job(self, request: Request, version: str, subscription: str, resource_group: str,
                             job: str) -> Response:
        target = self._existing("jobs", resource_group, job)
        return self._finish(self._call("terminate_job", request, target, "POST", "/terminate", query={}), version)

    @old_operation("jobs")
    def legacy_list_job_remote_login_information(self, request: Request, version: str, subscription: str,
                                                 resource_group: str, job: str) -> Response:
        target = self._existing("jobs", resource_group, job)
        response = self._call("list_job_remote_login_information", request, target, request.method,
                              "/listRemoteLoginInformation")
        return self._relay_list(request, version, response)

    @old_operation("jobs")
    def legacy_list_output_files(self, request: Request, version: str, subscription: str, resource_group: str,
                                 job: str) -> Response:
        """The preview has no ``directory`` parameter: it lists the output directory itself."""
        target = self._existing("jobs", resource_group, job)
        query = dict(request.args.items())
        if version == versions.PREVIEW:
            query.pop("directory", None)
        response = self._call("list_output_files", request, target, request.method, "/listOutputFiles", query)
        return self._relay_list(request, version, response, lambda items: versions.output_files(version, items))

    # ---- routes shared by every version ----------------------------------------------------------

    def list_operations(self, request: Request) -> Response:
        version = request.args.get("api-version", "")
        if version not in versions.OLD_VERSIONS:
            return self.current.list_operations(request)
        body = json.loads(self.current.list_operations(self._rewrite(request, "GET", request.path)).get_data())
        body["value"] = versions.provider_operations(version, body["value"])
        return json_response(body)

    def list_usages(self, request: Request, subscription: str, location: str) -> Response:
        version = request.args.get("api-version", "")
        if version == versions.PREVIEW:
            raise errors.unsupported_api_version(version, "locations/usages", location.lower(),
                                                 (versions.V2018_03, versions.CURRENT))
        if version != versions.V2018_03:
            return self.current.list_usages(request, subscription=subscription, location=location)
        response = self.current.list_usages(self._rewrite(request, "GET", request.path), subscription=subscription,
                                            location=location)
        return self._relay_list(request, version, response)

    def get_operation(self, request: Request, subscription: str, location: str, operation: str) -> Response:
        version = request.args.get("api-version", "")
        if version not in versions.OLD_VERSIONS:
            return self.current.get_operation(request, subscription=subscription, location=location,
                                              operation=operation)
        response = self.current.get_operation(self._rewrite(request, "GET", request.path), subscription=subscription,
                                              location=location, operation=operation)
        if json.loads(response.get_data()).get("status") == "InProgress":
            response.headers["Retry-After"] = RETRY_AFTER_SECONDS
        return response
