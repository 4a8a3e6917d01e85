"""Checks of request bodies and names, with defaults filled in, and the secret filter for responses.

The SDK does no client-side validation (``client_side_validation = False``), so everything the
service would refuse is refused with a 400 that names the offending property: JSON types, ranges and
enums by the API's schema (schemas.py, checked before these run), the rest here.
Pure functions of the body: checks that need stored state (does the cluster exist?) live in models.py.
"""
from __future__ import annotations

import copy
import re
import threading
from typing import Any, Optional

from . import exceptions as errors

# Patterns are used with fullmatch: "$" would also match before a final newline.
NAME_PATTERN = re.compile(r"[-\w]{1,64}", re.ASCII)
ENV_NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
DIRECTORY_ID_PATTERN = re.compile(r"[A-Za-z0-9_]+")
DURATION_PATTERN = re.compile(
    r"P(?!\Z)(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?", re.IGNORECASE)
#: The longest maxWallClockTime a timer can wait for (about 292 years).
MAX_WALL_CLOCK_SECONDS = threading.TIMEOUT_MAX

DEFAULT_MAX_WALL_CLOCK_TIME = "P7D"
MAX_NODES_PER_CLUSTER = 100  # the service's quota (reference 2.6)
PRIORITIES = {"low": 0, "normal": 1, "high": 2}
DEALLOCATION_OPTIONS = ("requeue", "terminate", "waitforjobcompletion")
VM_PRIORITIES = ("dedicated", "lowpriority")
DEFAULT_IMAGE = {"publisher": "microsoft-dsvm", "offer": "azureml", "sku": "runtime", "version": "latest"}

# Toolkit block -> toolType reported by the service ("pytorch" is missing from the SDK's ToolType enum,
# but the service sent it, as BatchAI's PyTorch recipe output shows).
TOOLKITS = {
    "cntkSettings": "cntk", "pyTorchSettings": "pytorch", "tensorFlowSettings": "tensorflow",
    "caffeSettings": "caffe", "caffe2Settings": "caffe2", "chainerSettings": "chainer",
    "customToolkitSettings": "custom", "customMpiSettings": "custommpi", "horovodSettings": "horovod",
}
# Toolkits with processCount; the service filled in its default, nodeCount, and echoed it (reference:
# batchai-distributed.md section 1).
PROCESS_COUNT_TOOLKITS = ("cntkSettings", "pyTorchSettings", "caffeSettings", "chainerSettings", "horovodSettings",
                          "customMpiSettings")
UNSUPPORTED_MOUNTS = {
    "unmanagedFileSystems": "unmanaged file systems cannot be mounted by the emulator; use azureFileShares",
}


# ---- names and scalars -----------------------------------------------------------------------

def check_name(kind: str, value: str) -> str:
    """Workspace, experiment, cluster and job names: ``^[-\\w_]+$``, 1-64 characters."""
    if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value):
        raise errors.invalid_name(kind, value)
    return value


def normalize_location(location: Any) -> str:
    """ARM accepts 'East US' for 'eastus'."""
    if not isinstance(location, str) or not location.strip():
        raise errors.location_required()
    return location.replace(" ", "").lower()


def check_tags(tags: Any) -> dict:
    if tags is None:
        return {}
    if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
        raise errors.invalid_parameter("The property 'tags' must be an object of string values.")
    return tags


def parse_duration(text: str) -> float:
    """Seconds in an ISO-8601 duration such as ``P7D``, ``PT2S`` or ``P1DT12H``."""
    match = DURATION_PATTERN.fullmatch(text) if isinstance(text, str) else None
    if not match:
        raise errors.invalid_parameter(
            "constraints.maxWallClockTime '{}' is not an ISO-8601 duration such as 'P7D' or 'PT2H30M'.".format(text))
    parts = {name: float(value) for name, value in match.groupdict().items() if value}
    seconds = (parts.get("weeks", 0) * 7 * 86400 + parts.get("days", 0) * 86400 + parts.get("hours", 0) * 3600
               + parts.get("minutes", 0) * 60 + parts.get("seconds", 0))
    if seconds <= 0:
        raise errors.invalid_parameter("constraints.maxWallClockTime must be longer than zero.")
    if seconds > MAX_WALL_CLOCK_SECONDS:
        raise errors.invalid_parameter("constraints.maxWallClockTime '{}' is too long: at most {:.0f} days.".format(
            text, MAX_WALL_CLOCK_SECONDS // 86400))
    return seconds


def _int_in_range(value: Any, path: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise errors.invalid_parameter("The property '{}' must be an integer from {} to {}; got {!r}.".format(
            path, low, high, value))
    return value


def _object(value: Any, path: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise errors.invalid_parameter("The property '{}' must be a JSON object.".format(path))
    return value


def _list(value: Any, path: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise errors.invalid_parameter("The property '{}' must be a list of JSON objects.".format(path))
    return value


def _required_string(obj: dict, key: str, path: str, what: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value.strip():
        raise errors.missing_property(path, what)
    return value


# ---- shared blocks -----------------------------------------------------------------------------

def check_environment(variables: Any, path: str, secret: bool = False) -> list:
    """``environmentVariables`` / ``secrets``: names usable as environment variables, string values."""
    items = _list(variables, path)
    for index, item in enumerate(items):
        item_path = "{}[{}]".format(path, index)
        name = _required_string(item, "name", item_path + ".name", "every variable needs a name")
        if not ENV_NAME_PATTERN.fullmatch(name):
            raise errors.invalid_parameter("{}.name '{}' is not a valid environment variable name.".format(
                item_path, name))
        if secret and item.get("valueSecretReference") is not None:
            raise errors.invalid_parameter(
                "{}.valueSecretReference: Key Vault is not emulated; pass the secret in 'value'.".format(item_path))
        if not isinstance(item.get("value"), str):
            raise errors.missing_property(item_path + ".value", "every variable needs a string value")
    return items


def check_mount_volumes(volumes: Any, path: str, job_level: bool = False) -> dict:
    """Azure File shares (URL, account key, mount path) and, on clusters, file servers (resource id, mount path)."""
    volumes = _object(volumes, path)
    for key, reason in UNSUPPORTED_MOUNTS.items():
        if volumes.get(key):
            raise errors.invalid_parameter("{}.{}: {}.".format(path, key, reason))
    seen = set()
    for index, share in enumerate(_list(volumes.get("azureFileShares"), path + ".azureFileShares")):
        item_path = "{}.azureFileShares[{}]".format(path, index)
        _required_string(share, "accountName", item_path + ".accountName", "the storage account name")
        _required_string(share, "azureFileUrl", item_path + ".azureFileUrl", "the URL of the file share")
        relative = _required_string(share, "relativeMountPath", item_path + ".relativeMountPath",
                                    "where to mount the share, relative to the mount root")
        _check_mount_point(relative, item_path)
        if relative in seen:
            raise errors.invalid_parameter("{}.relativeMountPath '{}' is used twice.".format(item_path, relative))
        seen.add(relative)
        credentials = _object(share.get("credentials"), item_path + ".credentials")
        if credentials.get("accountKeySecretReference") is not None:
            raise errors.invalid_parameter("{}.credentials.accountKeySecretReference: Key Vault is not emulated; "
                                           "pass 'accountKey'.".format(item_path))
        _required_string(credentials, "accountKey", item_path + ".credentials.accountKey", "the storage account key")
    blob_mounts = _list(volumes.get("azureBlobFileSystems"), path + ".azureBlobFileSystems")
    for index, blob in enumerate(blob_mounts):
        item_path = "{}.azureBlobFileSystems[{}]".format(path, index)
        _required_string(blob, "accountName", item_path + ".accountName", "the storage account name")
        _required_string(blob, "containerName", item_path + ".containerName", "the Blob container's name")
        _check_relative_mount(blob, item_path, seen)
        credentials = _object(blob.get("credentials"), item_path + ".credentials")
        if credentials.get("accountKeySecretReference") is not None:
            raise errors.invalid_parameter("{}.credentials.accountKeySecretReference: Key Vault is not emulated; "
                                           "pass 'accountKey'.".format(item_path))
        _required_string(credentials, "accountKey", item_path + ".credentials.accountKey", "the storage account key")
    for index, server in enumerate(_list(volumes.get("fileServers"), path + ".fileServers")):
        item_path = "{}.fileServers[{}]".format(path, index)
        if not job_level:
            _required_string(_object(server.get("fileServer"), item_path + ".fileServer"), "id",
                             item_path + ".fileServer.id", "the file server's resource id")
        else:
            raise errors.invalid_parameter("{}: the emulator mounts file servers on clusters only "
                                           "(nodeSetup.mountVolumes.fileServers).".format(item_path))
        _check_relative_mount(server, item_path, seen)
        source = server.get("sourceDirectory")
        if source is not None and (not isinstance(source, str) or ".." in source.split("/")):
            raise errors.invalid_parameter("{}.sourceDirectory must be a path on the file server without '..'."
                                           .format(item_path))
    return volumes


def _check_mount_point(relative: str, item_path: str) -> None:
    """A relativeMountPath names a directory strictly below the mount root (core/paths.py checks it again)."""
    if _leaves_folder(relative) or any(part in ("", ".") for part in relative.rstrip("/").split("/")):
        raise errors.invalid_parameter("{}.relativeMountPath '{}' must be a relative path inside the mount root "
                                       "(no leading '/', no '..').".format(item_path, relative))


def _check_relative_mount(entry: dict, item_path: str, seen: set) -> None:
    relative = _required_string(entry, "relativeMountPath", item_path + ".relativeMountPath",
                                "where to mount it, relative to the mount root")
    _check_mount_point(relative, item_path)
    if relative in seen:
        raise errors.invalid_parameter("{}.relativeMountPath '{}' is used twice.".format(item_path, relative))
    seen.add(relative)


# ---- clusters ----------------------------------------------------------------------------------

def check_scale_settings(scale: Any, path: str = "properties.scaleSettings") -> dict:
    """Normalized scaleSettings: exactly one of manual / autoScale, defaults filled in."""
    scale = copy.deepcopy(_object(scale, path)) or {"manual": {"targetNodeCount": 0}}
    manual, auto = scale.get("manual"), scale.get("autoScale")
    if (manual is None) == (auto is None):
        raise errors.invalid_parameter("{} must have exactly one of 'manual' and 'autoScale'.".format(path))
    if manual is not None:
        manual = _object(manual, path + ".manual")
        _int_in_range(manual.get("targetNodeCount"), path + ".manual.targetNodeCount", 0, MAX_NODES_PER_CLUSTER)
        option = str(manual.get("nodeDeallocationOption") or "requeue").lower()
        if option not in DEALLOCATION_OPTIONS:
            raise errors.invalid_parameter("{}.manual.nodeDeallocationOption must be one of {}.".format(
                path, ", ".join(DEALLOCATION_OPTIONS)))
        return {"manual": {"targetNodeCount": manual["targetNodeCount"], "nodeDeallocationOption": option}}
    auto = _object(auto, path + ".autoScale")
    low = _int_in_range(auto.get("minimumNodeCount"), path + ".autoScale.minimumNodeCount", 0, MAX_NODES_PER_CLUSTER)
    high = _int_in_range(auto.get("maximumNodeCount"), path + ".autoScale.maximumNodeCount", 1, MAX_NODES_PER_CLUSTER)
    initial = _int_in_range(auto.get("initialNodeCount", 0), path + ".autoScale.initialNodeCount", 0, high)
    if low > high:
        raise errors.invalid_parameter("{}.autoScale.minimumNodeCount must not exceed maximumNodeCount.".format(path))
    return {"autoScale": {"minimumNodeCount": low, "maximumNodeCount": high, "initialNodeCount": initial}}


#: Where the auto-scaler keeps an autoScale cluster's current target in its stored scale settings
#: (autoscale.py; never sent to clients).
AUTOSCALE_TARGET = "emulatorTargetNodeCount"


def vm_priority(props: dict) -> str:
    """A stored cluster's vmPriority: check_cluster keeps it lowercase; 'dedicated' when a cluster lacks it."""
    return props.get("vmPriority", "dedicated")


def target_node_count(scale: dict) -> int:
    """How many nodes the cluster should have now (autoScale: what the auto-scaler chose, at first
    its initial count)."""
    if "manual" in scale:
        return scale["manual"]["targetNodeCount"]
    return scale["autoScale"].get(AUTOSCALE_TARGET, scale["autoScale"]["initialNodeCount"])


def max_node_count(scale: dict) -> int:
    """The most nodes the cluster can ever have, which bounds a job's nodeCount."""
    if "manual" in scale:
        return scale["manual"]["targetNodeCount"]
    return scale["autoScale"]["maximumNodeCount"]


def check_cluster(body: dict) -> dict:
    """The properties of a cluster PUT, normalized and with defaults."""
    props = copy.deepcopy(_object(body.get("properties"), "properties"))
    _required_string(props, "vmSize", "properties.vmSize", "the VM size, e.g. STANDARD_NC6")
    priority = str(props.get("vmPriority") or "dedicated").lower()
    if priority not in VM_PRIORITIES:
        raise errors.invalid_parameter("properties.vmPriority must be 'dedicated' or 'lowpriority'.")
    props["vmPriority"] = priority
    props["scaleSettings"] = check_scale_settings(props.get("scaleSettings"))
    accounts = _object(props.get("userAccountSettings"), "properties.userAccountSettings")
    _required_string(accounts, "adminUserName", "properties.userAccountSettings.adminUserName",
                     "the administrator user name of the nodes")
    vm_config = _object(props.get("virtualMachineConfiguration"), "properties.virtualMachineConfiguration")
    props["virtualMachineConfiguration"] = {"imageReference": vm_config.get("imageReference") or dict(DEFAULT_IMAGE)}
    node_setup = _object(props.get("nodeSetup"), "properties.nodeSetup")
    if node_setup:
        check_mount_volumes(node_setup.get("mountVolumes"), "properties.nodeSetup.mountVolumes")
        setup_task = _object(node_setup.get("setupTask"), "properties.nodeSetup.setupTask")
        if setup_task:
            _required_string(setup_task, "commandLine", "properties.nodeSetup.setupTask.commandLine",
                             "the command the node setup task runs")
            _required_string(setup_task, "stdOutErrPathPrefix", "properties.nodeSetup.setupTask.stdOutErrPathPrefix",
                             "where the setup task's output goes")
            check_environment(setup_task.get("environmentVariables"),
                              "properties.nodeSetup.setupTask.environmentVariables")
            check_environment(setup_task.get("secrets"), "properties.nodeSetup.setupTask.secrets", secret=True)
    return props


# ---- jobs --------------------------------------------------------------------------------------

def toolkit_of(props: dict) -> str:
    """The one toolkit block a job names (e.g. 'cntkSettings')."""
    named = [key for key in TOOLKITS if props.get(key) is not None]
    if len(named) != 1:
        raise errors.invalid_parameter(
            "A job needs exactly one toolkit setting ({}); this one has {}.".format(
                ", ".join(TOOLKITS), ", ".join(named) if named else "none"))
    return named[0]


def check_path_suffix(suffix: Any, path: str, variables: list) -> None:
    """An output directory's pathSuffix stays inside the job's output folder: relative, no '..', also
    in the job's own variables it names (it is expanded with them)."""
    if suffix is None:
        return
    if not isinstance(suffix, str):
        raise errors.invalid_parameter("The property '{}' must be a string.".format(path))
    named = [v.get("value") for v in variables if isinstance(v.get("value"), str) and isinstance(v.get("name"), str)
             and ("$" + v["name"] in suffix or "${" + v["name"] + "}" in suffix)]
    if any(_leaves_folder(text) for text in [suffix] + named):
        raise errors.invalid_parameter(
            "{} '{}' must be a relative path inside the job's output folder (no leading '/', no '..').".format(
                path, suffix))


def _leaves_folder(text: str) -> bool:
    return text.startswith("/") or ".." in text.replace("\\", "/").split("/") or "\0" in text


def _check_directories(props: dict) -> None:
    for kind, required in (("inputDirectories", "path"), ("outputDirectories", "pathPrefix")):
        seen = set()
        for index, directory in enumerate(_list(props.get(kind), "properties." + kind)):
            item_path = "properties.{}[{}]".format(kind, index)
            directory_id = _required_string(directory, "id", item_path + ".id", "the directory id")
            if not DIRECTORY_ID_PATTERN.fullmatch(directory_id):
                raise errors.invalid_parameter(
                    "{}.id '{}' must be letters, digits and '_' (it becomes AZ_BATCHAI_{}_<ID>).".format(
                        item_path, directory_id, "INPUT" if kind == "inputDirectories" else "OUTPUT"))
            if directory_id.lower() in seen or (kind == "outputDirectories" and directory_id.lower() == "stdouterr"):
                raise errors.invalid_parameter("{}.id '{}' is used twice or reserved.".format(item_path, directory_id))
            seen.add(directory_id.lower())
            _required_string(directory, required, "{}.{}".format(item_path, required), "the directory path")
            if kind == "outputDirectories":
                check_path_suffix(directory.get("pathSuffix"), item_path + ".pathSuffix",
                                  _list(props.get("environmentVariables"), "properties.environmentVariables"))


def check_job(body: dict) -> dict:
    """The properties of a job PUT, normalized and with defaults (cluster checks are the backend's)."""
    props = copy.deepcopy(_object(body.get("properties"), "properties"))
    cluster = _object(props.get("cluster"), "properties.cluster")
    _required_string(cluster, "id", "properties.cluster.id", "the resource id of the cluster to run on")
    props["nodeCount"] = _int_in_range(props.get("nodeCount", 1), "properties.nodeCount", 1, MAX_NODES_PER_CLUSTER)
    _required_string(props, "stdOutErrPathPrefix", "properties.stdOutErrPathPrefix",
                     "where stdout.txt and stderr.txt go, e.g. $AZ_BATCHAI_MOUNT_ROOT/<share mount>")
    priority = str(props.get("schedulingPriority") or "normal").lower()
    if priority not in PRIORITIES:
        raise errors.invalid_parameter("properties.schedulingPriority must be one of low, normal, high.")
    props["schedulingPriority"] = priority
    toolkit = toolkit_of(props)
    settings = _object(props[toolkit], "properties." + toolkit)
    if toolkit in ("customToolkitSettings", "customMpiSettings"):
        _required_string(settings, "commandLine", "properties.{}.commandLine".format(toolkit), "the command to run")
    elif not settings.get("pythonScriptFilePath") and not settings.get("configFilePath"):
        raise errors.missing_property("properties.{}.pythonScriptFilePath".format(toolkit), "the script to run")
    if settings.get("pythonScriptFilePath") is not None and not settings["pythonScriptFilePath"].strip():
        raise errors.missing_property("properties.{}.pythonScriptFilePath".format(toolkit), "the script to run")
    if toolkit in PROCESS_COUNT_TOOLKITS and settings.get("processCount") is None:
        settings["processCount"] = props["nodeCount"]
        props[toolkit] = settings
    if props.get("jobPreparation") is not None:
        _required_string(_object(props["jobPreparation"], "properties.jobPreparation"), "commandLine",
                         "properties.jobPreparation.commandLine", "the preparation command")
    _check_directories(props)
    check_mount_volumes(props.get("mountVolumes"), "properties.mountVolumes", job_level=True)
    check_environment(props.get("environmentVariables"), "properties.environmentVariables")
    check_environment(props.get("secrets"), "properties.secrets", secret=True)
    constraints = _object(props.get("constraints"), "properties.constraints")
    limit = constraints.get("maxWallClockTime")
    limit = DEFAULT_MAX_WALL_CLOCK_TIME if limit is None or limit == "" else limit
    parse_duration(limit)
    props["constraints"] = dict(constraints, maxWallClockTime=limit)
    return props


# ---- responses never carry secrets ----------------------------------------------------------

_DROPPED_KEYS = {"adminUserPassword", "password", "accountKey", "instrumentationKey"}


def strip_secrets(value: Any, key: Optional[str] = None) -> Any:
    """A copy of ``value`` fit for a response: passwords and keys removed, mount credentials as ``{}``,
    secret environment variables by name only (as the service returns them)."""
    if isinstance(value, dict):
        if key == "credentials":  # mount credentials -> {}; registry credentials keep the user name
            return {"username": value["username"]} if "username" in value else {}
        return {k: strip_secrets(v, k) for k, v in value.items() if k not in _DROPPED_KEYS}
    if isinstance(value, list):
        if key == "secrets":
            return [{"name": item.get("name")} for item in value if isinstance(item, dict)]
        return [strip_secrets(item) for item in value]
    return value
