"""What the emulator covers of the Azure ML workspace API that azure-ai-ml 1.35.2 calls (its generated client
``_restclient/arm_ml_service``, api-version 2025-12-01), worked out from the route table of
``emulator.azureml.urls`` as ``emulator.coverage`` does for Batch AI.

The operations listed are those of the operation groups in the emulated surface (workspaces, datastores,
code, data, environments, models, computes, jobs); endpoints, registries, components and pipelines,
schedules and the other groups are outside it. ``python -m emulator.coverage`` prints this table with the
others; ``--write FILE`` replaces it between the Azure ML coverage markers of FILE.
"""
from __future__ import annotations


from ..core import coverage_table
from .urls import url_paths

START = "<!-- azureml-coverage:start (python -m emulator.coverage --write docs/coverage.md) -->"
END = "<!-- azureml-coverage:end -->"

_RG = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.MachineLearningServices"
_WS = _RG + "/workspaces/{workspaceName}"

#: (operation id, method, path) of every operation of the emulated groups, as the SDK's client builds them.
API_OPERATIONS = [
    ("Workspaces_Get", "GET", _WS),
    ("Workspaces_CreateOrUpdate", "PUT", _WS),
    ("Workspaces_Update", "PATCH", _WS),
    ("Workspaces_Delete", "DELETE", _WS),
    ("Workspaces_ListByResourceGroup", "GET", _RG + "/workspaces"),
    ("Workspaces_ListBySubscription", "GET",
     "/subscriptions/{subscriptionId}/providers/Microsoft.MachineLearningServices/workspaces"),
    ("Workspaces_Diagnose", "POST", _WS + "/diagnose"),
    ("Workspaces_ListKeys", "POST", _WS + "/listKeys"),
    ("Workspaces_ListNotebookAccessToken", "POST", _WS + "/listNotebookAccessToken"),
    ("Workspaces_ListNotebookKeys", "POST", _WS + "/listNotebookKeys"),
    ("Workspaces_ListStorageAccountKeys", "POST", _WS + "/listStorageAccountKeys"),
    ("Workspaces_ListOutboundNetworkDependenciesEndpoints", "GET", _WS + "/outboundNetworkDependenciesEndpoints"),
    ("Workspaces_PrepareNotebook", "POST", _WS + "/prepareNotebook"),
    ("Workspaces_ResyncKeys", "POST", _WS + "/resyncKeys"),
    ("Datastores_List", "GET", _WS + "/datastores"),
    ("Datastores_Get", "GET", _WS + "/datastores/{name}"),
    ("Datastores_CreateOrUpdate", "PUT", _WS + "/datastores/{name}"),
    ("Datastores_Delete", "DELETE", _WS + "/datastores/{name}"),
    ("Datastores_ListSecrets", "POST", _WS + "/datastores/{name}/listSecrets"),
]
for _group, _segment in (("Code", "codes"), ("Data", "data"), ("Environment", "environments"), ("Model", "models")):
    API_OPERATIONS += [
        (_group + "Containers_List", "GET", _WS + "/" + _segment),
        (_group + "Containers_Get", "GET", _WS + "/" + _segment + "/{name}"),
        (_group + "Containers_CreateOrUpdate", "PUT", _WS + "/" + _segment + "/{name}"),
        (_group + "Containers_Delete", "DELETE", _WS + "/" + _segment + "/{name}"),
        (_group + "Versions_List", "GET", _WS + "/" + _segment + "/{name}/versions"),
        (_group + "Versions_Get", "GET", _WS + "/" + _segment + "/{name}/versions/{version}"),
        (_group + "Versions_CreateOrUpdate", "PUT", _WS + "/" + _segment + "/{name}/versions/{version}"),
        (_group + "Versions_Delete", "DELETE", _WS + "/" + _segment + "/{name}/versions/{version}"),
        (_group + "Versions_Publish", "POST", _WS + "/" + _segment + "/{name}/versions/{version}/publish"),
    ]
API_OPERATIONS += [
    ("CodeVersions_CreateOrGetStartPendingUpload", "POST", _WS + "/codes/{name}/versions/{version}/startPendingUpload"),
    ("Compute_List", "GET", _WS + "/computes"),
    ("Compute_Get", "GET", _WS + "/computes/{computeName}"),
    ("Compute_CreateOrUpdate", "PUT", _WS + "/computes/{computeName}"),
    ("Compute_Update", "PATCH", _WS + "/computes/{computeName}"),
    ("Compute_Delete", "DELETE", _WS + "/computes/{computeName}"),
    ("Compute_ListNodes", "POST", _WS + "/computes/{computeName}/listNodes"),
    ("Compute_ListKeys", "POST", _WS + "/computes/{computeName}/listKeys"),
    ("Compute_Start", "POST", _WS + "/computes/{computeName}/start"),
    ("Compute_Stop", "POST", _WS + "/computes/{computeName}/stop"),
    ("Compute_Restart", "POST", _WS + "/computes/{computeName}/restart"),
    ("Jobs_List", "GET", _WS + "/jobs"),
    ("Jobs_Get", "GET", _WS + "/jobs/{id}"),
    ("Jobs_CreateOrUpdate", "PUT", _WS + "/jobs/{id}"),
    ("Jobs_Delete", "DELETE", _WS + "/jobs/{id}"),
    ("Jobs_Cancel", "POST", _WS + "/jobs/{id}/cancel"),
]

_KEYS = "not emulated: keys, notebooks and network diagnostics are outside the training surface"
_REGISTRIES = "not emulated: registries are outside the emulated surface"
_ARCHIVE = "not emulated: azure-ai-ml archives assets (served) rather than deleting them"
NOTES = {
    "Workspaces_CreateOrUpdate": "not served: azure-ai-ml creates a workspace through a Resource Manager template "
                                 "deployment, which is served (its parameters make the workspace)",
    "Workspaces_Update": "tags, description, friendly name and the other updatable properties; 200 at once "
                         "(also what begin_create on an existing workspace sends)",
    "Workspaces_Delete": "202, then its computes, jobs and assets are deleted in the background",
    "Workspaces_ListBySubscription": "not emulated: list them by resource group",
    "Workspaces_Diagnose": _KEYS, "Workspaces_ListKeys": _KEYS, "Workspaces_ListNotebookAccessToken": _KEYS,
    "Workspaces_ListNotebookKeys": _KEYS, "Workspaces_ListStorageAccountKeys": _KEYS,
    "Workspaces_ListOutboundNetworkDependenciesEndpoints": _KEYS, "Workspaces_PrepareNotebook": _KEYS,
    "Workspaces_ResyncKeys": _KEYS,
    "Datastores_List": "the workspace's two datastores, workspaceblobstore (default) and workspaceartifactstore",
    "Datastores_CreateOrUpdate": "not emulated: a workspace has its two datastores on the emulator's storage account",
    "Datastores_Delete": "not emulated: a workspace has its two datastores on the emulator's storage account",
    "Datastores_ListSecrets": "the storage account key",
    "EnvironmentContainers_List": "the workspace's environments and the curated catalogue (AzureML-*)",
    "EnvironmentContainers_Get": "curated environments are readable from every workspace",
    "EnvironmentVersions_Get": "curated environment versions too (image and conda specification)",
    "EnvironmentVersions_CreateOrUpdate": "a version's definition cannot change (409); a job on an environment "
                                          "with a conda file runs in a virtual environment built from its pip "
                                          "dependencies, cached and shared",
    "DataVersions_CreateOrUpdate": "a version's path cannot change; uri_folder paths end with a slash",
    "CodeVersions_CreateOrGetStartPendingUpload": "a container on the emulator's storage account and its SAS",
    "Compute_CreateOrUpdate": "AmlCompute only; nodes are directories on this machine; scales with the jobs and "
                              "down after nodeIdleTimeBeforeScaleDown",
    "Compute_Update": "not emulated: a PUT again updates a compute",
    "Compute_ListNodes": "not emulated: currentNodeCount and nodeStateCounts are in the compute",
    "Compute_ListKeys": "not emulated: no SSH keys on emulated nodes",
    "Compute_Start": "not emulated: compute instances are outside the emulated surface",
    "Compute_Stop": "not emulated: compute instances are outside the emulated surface",
    "Compute_Restart": "not emulated: compute instances are outside the emulated surface",
    "Jobs_CreateOrUpdate": "command jobs only, run on this machine; the environment's image is recorded, not pulled",
    "Jobs_Delete": "not emulated: jobs stay with their workspace",
    "Jobs_Cancel": "202 with Location; the job's processes are stopped",
}
for _group in ("Code", "Data", "Environment", "Model"):
    NOTES[_group + "Versions_Publish"] = _REGISTRIES
    NOTES.setdefault(_group + "Containers_Delete", _ARCHIVE)
    NOTES.setdefault(_group + "Versions_Delete", _ARCHIVE)
    NOTES.setdefault(_group + "Containers_List", "listViewType filters archived containers")
    NOTES.setdefault(_group + "Containers_CreateOrUpdate", "description, tags, isArchived (archive and restore)")
    NOTES.setdefault(_group + "Versions_List", "listViewType, $orderBy createdtime, $top, paging by $skip/nextLink")

_SAMPLE = {"subscriptionId": "00000000-0000-0000-0000-000000000000", "resourceGroupName": "rg",
           "workspaceName": "ws", "name": "asset", "version": "1", "computeName": "cpu", "id": "job"}


def coverage_rows(routes=url_paths) -> list:
    return coverage_table.coverage_rows(API_OPERATIONS, NOTES, routes, _SAMPLE)


def table(routes=url_paths) -> str:
    rows = coverage_rows(routes)
    lines = coverage_table.markdown_rows(rows)
    lines.append("")
    lines.append("{} of the {} operations of these groups are served. Online and batch endpoints, registries, "
                 "components and pipelines, schedules and sweeps are outside the emulated surface."
                 .format(sum(1 for row in rows if row[2]), len(rows)))
    return "\n".join(lines)
