"""The Batch AI API versions served, and every shape difference between them, in one place.

2018-05-01 is the emulator's own shape; 2017-09-01-preview (azure-mgmt-batchai 0.2.0) and 2018-03-01
(1.0.1) are views of it (docs/api-versions.md). Here, per api-version: a request body of an old
version becomes a 2018-05-01 body plus the *extras* 2018-05-01 has no place for (tags, the integer
priority, ...), and a 2018-05-01 response becomes the old version's, with the extras put back.
Pure functions: the lookups that ids need are passed in. Differences as the specifications define
them (reference batchai-api-versions.md sections 4 and 5).
"""
from __future__ import annotations

import copy
import re
from typing import Callable, Optional
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from . import exceptions as errors
from .validation import check_tags, normalize_location

CURRENT = "2018-05-01"
PREVIEW = "2017-09-01-preview"
V2018_03 = "2018-03-01"
OLD_VERSIONS = (PREVIEW, V2018_03)
ALL_VERSIONS = (PREVIEW, V2018_03, CURRENT)

#: Where old-version resources live in 2018-05-01 terms: the workspace ``migrated-<location>`` of
#: their resource group, jobs in its experiment ``migrated`` (the names the service itself gave
#: resources it moved when 2018-05-01 came, docs migrate-to-new-api.md).
RESERVED_WORKSPACE_PREFIX = "migrated-"
RESERVED_EXPERIMENT = "migrated"

#: Old names may hold dots: ``^[-\w\._]+$``, 1-64 characters (2018-05-01: no dots).
OLD_NAME_PATTERN = re.compile(r"[-\w._]{1,64}", re.ASCII)

#: Resource kinds in old paths -> their ``type`` as the old examples write it.
TYPES = {"clusters": "Microsoft.BatchAI/Clusters", "jobs": "Microsoft.BatchAI/Jobs",
         "fileservers": "Microsoft.BatchAI/FileServers"}

#: 2018-05-01 schedulingPriority <-> the old integer priority (-1000..1000, default 0).
PRIORITY_RANGE = (-1000, 1000)
_PRIORITY_OF_LEVEL = {"low": -1, "normal": 0, "high": 1}

_DEFAULT_OUTPUT = {"type": "custom", "createNew": True}
#: Job blocks the old versions' Job model does not have (caffe2Settings is create-only there).
_JOB_ONLY_CURRENT = ("caffe2Settings", "customMpiSettings", "horovodSettings", "schedulingPriority")
_JOB_ONLY_2018_03 = ("mountVolumes", "secrets", "pyTorchSettings", "jobOutputDirectoryPathSegment")

_CURRENT_ID = re.compile(
    r"(?P<provider>/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.BatchAI)"
    r"/workspaces/(?P<workspace>[^/]+)/(?:experiments/(?P<experiment>[^/]+)/)?(?P<kind>clusters|jobs|fileservers)"
    r"/(?P<name>[^/]+)", re.IGNORECASE)
_OLD_ID = re.compile(
    r"/subscriptions/[^/]+/resourceGroups/(?P<group>[^/]+)/providers/Microsoft\.BatchAI"
    r"/(?P<kind>clusters|fileservers)/(?P<name>[^/]+)/?", re.IGNORECASE)

#: (kind, resource group, name) -> the 2018-05-01 id of an old-version resource, or None.
Locate = Callable[[str, str, str], Optional[str]]


def reserved_workspace(location: str) -> str:
    return RESERVED_WORKSPACE_PREFIX + location


def is_reserved_workspace(name: str) -> bool:
    return name.lower().startswith(RESERVED_WORKSPACE_PREFIX)


def check_old_name(kind: str, value: str) -> str:
    if not isinstance(value, str) or not OLD_NAME_PATTERN.fullmatch(value):
        raise errors.invalid_parameter(
            "The {} name '{}' is invalid: use 1-64 letters, digits, '-', '_' or '.'.".format(kind, value))
    return value


# ---- ids ---------------------------------------------------------------------------------------

def old_id(current_id: str) -> str:
    """``.../workspaces/migrated-x/clusters/c`` -> ``.../clusters/c`` (jobs: without the experiment)."""
    match = _CURRENT_ID.fullmatch(current_id or "")
    if not match or not is_reserved_workspace(match["workspace"]):
        return current_id
    return "{}/{}/{}".format(match["provider"], match["kind"], match["name"])


def current_id(old: str, locate: Locate) -> str:
    """An old cluster or file server id as 2018-05-01's; unchanged when it names nothing we hold."""
    match = _OLD_ID.fullmatch(old or "")
    if not match:
        return old
    return locate(match["kind"].lower(), match["group"], match["name"]) or old


def old_link(link: str, old_path: str, version: str) -> str:
    """A nextLink the 2018-05-01 handler made, pointing at the old path and api-version instead."""
    parts = urlsplit(link)
    query = [(key, value) for key, value in parse_qsl(parts.query, keep_blank_values=True) if key != "api-version"]
    query.append(("api-version", version))
    return urlunsplit((parts.scheme, parts.netloc, quote(old_path), urlencode(query), ""))


def with_api_version(url: str, version: str) -> str:
    """A polling URL (Location, Azure-AsyncOperation) with another api-version."""
    return re.sub(r"(?<=[?&])api-version=[^&]*", "api-version=" + version, url)


# ---- requests: old -> 2018-05-01 ---------------------------------------------------------------

def _envelope(body: dict) -> tuple:
    """(location, tags, a copy of properties): old create bodies carry a required top-level location."""
    location = normalize_location(body.get("location"))
    tags = check_tags(body.get("tags"))
    props = body.get("properties")
    return location, tags, copy.deepcopy(props) if isinstance(props, dict) else props


def _map_file_server_mounts(props: dict, locate: Locate) -> None:
    node_setup = props.get("nodeSetup")
    volumes = node_setup.get("mountVolumes") if isinstance(node_setup, dict) else props.get("mountVolumes")
    servers = volumes.get("fileServers") if isinstance(volumes, dict) else None
    for server in servers if isinstance(servers, list) else []:
        if isinstance(server, dict) and isinstance(server.get("fileServer"), dict):
            server["fileServer"]["id"] = current_id(server["fileServer"].get("id"), locate)


def _fill_variable_values(variables) -> None:
    """Preview EnvironmentSetting values are optional; 2018-05-01's are required: empty means unset."""
    for variable in variables or []:
        if isinstance(variable, dict) and "value" not in variable:
            variable["value"] = ""


def cluster_request(version: str, body: dict, locate: Locate) -> tuple:
    """(2018-05-01 body, extras, location) of an old cluster PUT."""
    location, tags, props = _envelope(body)
    extras: dict = {"tags": tags}
    if isinstance(props, dict):
        setup = (props.get("nodeSetup") or {}).get("setupTask") if isinstance(props.get("nodeSetup"), dict) else None
        if isinstance(setup, dict):
            if version == PREVIEW:
                extras["runElevated"] = bool(setup.pop("runElevated", False))
                _fill_variable_values(setup.get("environmentVariables"))
        manual = (props.get("scaleSettings") or {}).get("manual") if isinstance(props.get("scaleSettings"), dict) \
            else None
        if isinstance(manual, dict) and str(manual.get("nodeDeallocationOption", "")).lower() == "unknown":
            manual["nodeDeallocationOption"] = "requeue"  # the old enum's 'unknown' is the default's
        _map_file_server_mounts(props, locate)
    return {"properties": props}, extras, location


def cluster_update_request(body: dict) -> tuple:
    """(2018-05-01 PATCH body or None when only tags change, new tags or None) of an old cluster PATCH."""
    props = body.get("properties")
    tags = check_tags(body["tags"]) if "tags" in body else None
    scale = props.get("scaleSettings") if isinstance(props, dict) else None
    return ({"properties": {"scaleSettings": scale}} if scale is not None else None), tags


def job_request(version: str, body: dict, locate: Locate) -> tuple:
    """(2018-05-01 body, extras, location) of an old job PUT: the integer priority becomes a
    schedulingPriority level (below 0 low, 0 normal, above 0 high); experimentName and the output
    directories' type and createNew are kept as extras."""
    location, tags, props = _envelope(body)
    extras: dict = {"tags": tags}
    if isinstance(props, dict):
        priority = props.pop("priority", 0)
        if isinstance(priority, bool) or not isinstance(priority, int) or \
                not PRIORITY_RANGE[0] <= priority <= PRIORITY_RANGE[1]:
            raise errors.invalid_parameter("The property 'properties.priority' must be an integer from {} to {}; "
                                           "got {!r}.".format(*PRIORITY_RANGE, priority))
        extras["priority"] = priority
        props["schedulingPriority"] = "low" if priority < 0 else "high" if priority > 0 else "normal"
        if props.get("experimentName") is not None:
            extras["experimentName"] = props.pop("experimentName")
        outputs = {}
        for directory in props.get("outputDirectories") or []:
            if isinstance(directory, dict):
                kept = {key: directory.pop(key) for key in ("type", "createNew") if key in directory}
                outputs[str(directory.get("id"))] = dict(_DEFAULT_OUTPUT, **kept)
        if outputs:
            extras["outputDirectories"] = outputs
        if version == PREVIEW:
            _fill_variable_values(props.get("environmentVariables"))
        cluster = props.get("cluster")
        if isinstance(cluster, dict):
            cluster["id"] = current_id(cluster.get("id"), locate)
    return {"properties": props}, extras, location


def file_server_request(version: str, body: dict) -> tuple:
    """(2018-05-01 body, extras, location) of an old file server PUT."""
    location, tags, props = _envelope(body)
    if version == PREVIEW and isinstance(props, dict) and isinstance(props.get("dataDisks"), dict):
        props["dataDisks"].pop("cachingType", None)  # read-only in the preview: 0.2.0 never sends it
    return {"properties": props}, {"tags": tags}, location


# ---- responses: 2018-05-01 -> old ----------------------------------------------------------------

def resource_response(kind: str, version: str, body: dict, location: str, extras: dict) -> dict:
    """A cluster, job or file server (2018-05-01 JSON) as the old version shows it."""
    props = copy.deepcopy(body.get("properties") or {})
    if kind == "clusters":
        _cluster_properties(version, props, extras)
    elif kind == "jobs":
        _job_properties(version, props, extras)
    else:
        _file_server_properties(props)
    out = {"id": old_id(body["id"]), "name": body["name"], "type": TYPES[kind], "location": location}
    if extras.get("tags"):
        out["tags"] = extras["tags"]
    out["properties"] = props
    return out


def _old_mount_ids(volumes) -> None:
    for server in (volumes or {}).get("fileServers") or []:
        if isinstance(server.get("fileServer"), dict):
            server["fileServer"]["id"] = old_id(server["fileServer"].get("id"))


def _cluster_properties(version: str, props: dict, extras: dict) -> None:
    node_setup = props.get("nodeSetup") or {}
    _old_mount_ids(node_setup.get("mountVolumes"))
    if version == PREVIEW:
        (props.get("virtualMachineConfiguration") or {}).get("imageReference", {}).pop("virtualMachineImageId", None)
        node_setup.pop("performanceCountersSettings", None)
        setup = node_setup.get("setupTask")
        if isinstance(setup, dict):
            for key in ("secrets", "stdOutErrPathSuffix"):
                setup.pop(key, None)
            setup["runElevated"] = bool(extras.get("runElevated", False))


def _job_properties(version: str, props: dict, extras: dict) -> None:
    level = props.get("schedulingPriority", "normal")
    for key in _JOB_ONLY_CURRENT + (_JOB_ONLY_2018_03 if version == PREVIEW else ()):
        props.pop(key, None)
    props.pop("experimentName", None)
    ordered = {"experimentName": extras["experimentName"]} if "experimentName" in extras else {}
    ordered["priority"] = extras.get("priority", _PRIORITY_OF_LEVEL.get(level, 0))
    ordered.update(props)
    props.clear()
    props.update(ordered)
    if isinstance(props.get("cluster"), dict):
        props["cluster"]["id"] = old_id(props["cluster"].get("id"))
    (props.get("containerSettings") or {}).pop("shmSize", None)
    outputs = extras.get("outputDirectories") or {}
    for directory in props.get("outputDirectories") or []:
        directory.update(outputs.get(directory.get("id"), _DEFAULT_OUTPUT))
    _old_mount_ids(props.get("mountVolumes"))


def _file_server_properties(props: dict) -> None:
    if isinstance(props.get("mountSettings"), dict):
        props["mountSettings"]["fileServerType"] = "nfs"  # the emulated server is an NFS export


def output_files(version: str, entries: list) -> list:
    """listOutputFiles entries: the preview's File has no directory marker (name and downloadUrl are
    required), so directories are left out; 2018-03-01 marks them with isDirectory."""
    mapped = []
    for entry in entries:
        is_directory = entry.get("fileType") == "directory"
        if version == PREVIEW and is_directory:
            continue
        item = {key: value for key, value in entry.items() if key != "fileType"}
        if version == V2018_03:
            item = dict({"name": item.pop("name"), "isDirectory": is_directory}, **item)
        mapped.append(item)
    return mapped


def provider_operations(version: str, operations: list) -> list:
    """The provider's operations as an old version names them: no workspaces or experiments, resources
    directly in the resource group; the preview has no usages."""
    seen, mapped = set(), []
    for operation in operations:
        name = operation["name"]
        if re.fullmatch(r"Microsoft\.BatchAI/workspaces(/experiments)?/(read|write|delete)", name):
            continue
        name = name.replace("/workspaces/experiments/", "/").replace("/workspaces/", "/")
        if version == PREVIEW and "/usages/" in name or name in seen:
            continue
        seen.add(name)
        mapped.append(dict(operation, name=name))
    return mapped
