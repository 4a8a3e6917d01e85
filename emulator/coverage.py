"""What the emulator covers of the Batch AI 2018-05-01 API, worked out from its route table, and
which File and Blob operations its storage account serves, from theirs.

``python -m emulator.coverage`` prints the coverage tables of docs/coverage.md; ``--write docs/coverage.md``
replaces the tables between that file's coverage markers. Each operation of the API (the
specification's operation ids, as azure-mgmt-batchai 7.0.0 calls them) is supported when a
route of ``emulator.batchai.urls`` answers its method and path; the notes say how it differs.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .azureml import coverage as azureml_coverage
from .batchai.urls import url_paths
from .core import coverage_table
from .blob.urls import url_paths as blob_url_paths
from .files.urls import url_paths as file_url_paths

START, END = "<!-- coverage:start (python -m emulator.coverage --write docs/coverage.md) -->", "<!-- coverage:end -->"
STORAGE_START = "<!-- storage-coverage:start (python -m emulator.coverage --write docs/coverage.md) -->"
STORAGE_END = "<!-- storage-coverage:end -->"

_RG = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.BatchAI"
_WS = _RG + "/workspaces/{workspaceName}"
_EXP = _WS + "/experiments/{experimentName}"

#: The 2018-05-01 specification's operations: (operation id, method, path).
API_OPERATIONS = [
    ("Operations_List", "GET", "/providers/Microsoft.BatchAI/operations"),
    ("Usages_List", "GET", "/subscriptions/{subscriptionId}/providers/Microsoft.BatchAI/locations/{location}/usages"),
    ("Workspaces_List", "GET", "/subscriptions/{subscriptionId}/providers/Microsoft.BatchAI/workspaces"),
    ("Workspaces_ListByResourceGroup", "GET", _RG + "/workspaces"),
    ("Workspaces_Create", "PUT", _WS),
    ("Workspaces_Update", "PATCH", _WS),
    ("Workspaces_Delete", "DELETE", _WS),
    ("Workspaces_Get", "GET", _WS),
    ("Experiments_ListByWorkspace", "GET", _WS + "/experiments"),
    ("Experiments_Create", "PUT", _EXP),
    ("Experiments_Delete", "DELETE", _EXP),
    ("Experiments_Get", "GET", _EXP),
    ("Jobs_ListByExperiment", "GET", _EXP + "/jobs"),
    ("Jobs_Create", "PUT", _EXP + "/jobs/{jobName}"),
    ("Jobs_Delete", "DELETE", _EXP + "/jobs/{jobName}"),
    ("Jobs_Get", "GET", _EXP + "/jobs/{jobName}"),
    ("Jobs_ListOutputFiles", "POST", _EXP + "/jobs/{jobName}/listOutputFiles"),
    ("Jobs_ListRemoteLoginInformation", "POST", _EXP + "/jobs/{jobName}/listRemoteLoginInformation"),
    ("Jobs_Terminate", "POST", _EXP + "/jobs/{jobName}/terminate"),
    ("FileServers_Create", "PUT", _WS + "/fileServers/{fileServerName}"),
    ("FileServers_Delete", "DELETE", _WS + "/fileServers/{fileServerName}"),
    ("FileServers_Get", "GET", _WS + "/fileServers/{fileServerName}"),
    ("FileServers_ListByWorkspace", "GET", _WS + "/fileServers"),
    ("Clusters_Create", "PUT", _WS + "/clusters/{clusterName}"),
    ("Clusters_Update", "PATCH", _WS + "/clusters/{clusterName}"),
    ("Clusters_Delete", "DELETE", _WS + "/clusters/{clusterName}"),
    ("Clusters_Get", "GET", _WS + "/clusters/{clusterName}"),
    ("Clusters_ListRemoteLoginInformation", "POST", _WS + "/clusters/{clusterName}/listRemoteLoginInformation"),
    ("Clusters_ListByWorkspace", "GET", _WS + "/clusters"),
]

_SUB = "/subscriptions/{subscriptionId}/providers/Microsoft.BatchAI"

#: The 2017-09-01-preview specification's operations (clusters, jobs and file servers in the resource
#: group); 2018-03-01 has the same plus Usage_List. Served as views of 2018-05-01 (docs/api-versions.md).
OLD_API_OPERATIONS = [
    ("Operations_List", "GET", "/providers/Microsoft.BatchAI/operations"),
    ("Clusters_Create", "PUT", _RG + "/clusters/{clusterName}"),
    ("Clusters_Update", "PATCH", _RG + "/clusters/{clusterName}"),
    ("Clusters_Delete", "DELETE", _RG + "/clusters/{clusterName}"),
    ("Clusters_Get", "GET", _RG + "/clusters/{clusterName}"),
    ("Clusters_ListRemoteLoginInformation", "POST", _RG + "/clusters/{clusterName}/listRemoteLoginInformation"),
    ("Clusters_List", "GET", _SUB + "/clusters"),
    ("Clusters_ListByResourceGroup", "GET", _RG + "/clusters"),
    ("Jobs_Create", "PUT", _RG + "/jobs/{jobName}"),
    ("Jobs_Delete", "DELETE", _RG + "/jobs/{jobName}"),
    ("Jobs_Get", "GET", _RG + "/jobs/{jobName}"),
    ("Jobs_Terminate", "POST", _RG + "/jobs/{jobName}/terminate"),
    ("Jobs_ListRemoteLoginInformation", "POST", _RG + "/jobs/{jobName}/listRemoteLoginInformation"),
    ("Jobs_List", "GET", _SUB + "/jobs"),
    ("Jobs_ListByResourceGroup", "GET", _RG + "/jobs"),
    ("Jobs_ListOutputFiles", "POST", _RG + "/jobs/{jobName}/listOutputFiles"),
    ("FileServers_Create", "PUT", _RG + "/fileServers/{fileServerName}"),
    ("FileServers_Delete", "DELETE", _RG + "/fileServers/{fileServerName}"),
    ("FileServers_Get", "GET", _RG + "/fileServers/{fileServerName}"),
    ("FileServers_List", "GET", _SUB + "/fileServers"),
    ("FileServers_ListByResourceGroup", "GET", _RG + "/fileServers"),
]
OLD_2018_03_ONLY = [("Usage_List", "GET", _SUB + "/locations/{location}/usages")]

#: How a supported operation differs from the service, or why one is missing.
NOTES = {
    "Operations_List": "the specification's list",
    "Usages_List": "the service's usage names; current values from allocated nodes' vCPUs; limits configurable "
                   "(`--quota`), defaults as recorded in 2018",
    "Workspaces_Create": "200 with the workspace, as the service",
    "Workspaces_Delete": "202, then its experiments, jobs and clusters are deleted in the background",
    "Experiments_Delete": "202, then its jobs are stopped and deleted",
    "Jobs_Create": "runs the job on this machine; the container image is recorded, not pulled",
    "Jobs_ListOutputFiles": "download URLs are read-only File SAS links to the emulator",
    "Jobs_ListRemoteLoginInformation": "127.0.0.1 and a port per node; no SSH server listens there",
    "Jobs_Terminate": "JobTerminated, no exit code, as the service recorded",
    "FileServers_Create": "the export is a directory on this machine, mounted by clusters (mountVolumes.fileServers)",
    "FileServers_Delete": "not in azure-mgmt-batchai 7.0.0 (the specification dropped it later); plain REST works",
    "FileServers_Get": "not in azure-mgmt-batchai 7.0.0 (the specification dropped it later); plain REST works",
    "Clusters_Create": "nodes are directories on this machine; mounts file shares, file servers and blob containers "
                       "(copied); refused early past a quota; autoScale grows with queued jobs and shrinks when idle, "
                       "in seconds; lowpriority nodes can be preempted (their jobs are requeued)",
    "Clusters_Update": "resizes within the quota (a shrink of busy nodes follows nodeDeallocationOption); switches "
                       "between manual and autoScale",
    "Clusters_ListRemoteLoginInformation": "127.0.0.1 and a port per node; no SSH server listens there",
}

_SAMPLE = {"subscriptionId": "00000000-0000-0000-0000-000000000000", "resourceGroupName": "rg",
           "workspaceName": "ws", "experimentName": "exp", "jobName": "job", "clusterName": "cluster",
           "fileServerName": "fs", "location": "eastus"}


def supported(method: str, path_template: str, routes=url_paths) -> bool:
    """Whether a route of the table answers ``method`` on a path of this template."""
    return coverage_table.supported(method, path_template, routes, _SAMPLE)


def coverage_rows(routes=url_paths) -> list:
    return coverage_table.coverage_rows(API_OPERATIONS, NOTES, routes, _SAMPLE)


def table(routes=url_paths) -> str:
    rows = coverage_rows(routes)
    lines = coverage_table.markdown_rows(rows)
    count = sum(1 for row in rows if row[2])
    lines.append("")
    lines.append("{} of the {} operations of the 2018-05-01 API are served.".format(count, len(rows)))
    lines.append(old_versions_line(routes))
    return "\n".join(lines)


def old_versions_line(routes=url_paths) -> str:
    """How much of 2017-09-01-preview and 2018-03-01 the routes serve."""
    counts = []
    for version, operations in (("2017-09-01-preview", OLD_API_OPERATIONS),
                                ("2018-03-01", OLD_API_OPERATIONS + OLD_2018_03_ONLY)):
        served = sum(1 for _, method, path in operations if supported(method, path, routes))
        counts.append("{} of the {} operations of {}".format(served, len(operations), version))
    return "Older versions, served as views of 2018-05-01 (docs/api-versions.md): {}.".format(" and ".join(counts))


def _request(method: str, level: str, restype, comp) -> str:
    query = "&".join("{}={}".format(name, value) for name, value in (("restype", restype), ("comp", comp)) if value)
    return "{} {}{}".format(method, {"account": "/{account}", "container": "/{account}/{container}",
                                     "blob": "/{account}/{container}/{blob}", "share": "/{account}/{share}",
                                     "path": "/{account}/{share}/{path}"}[level], "?" + query if query else "")


def storage_table() -> str:
    """The File and Blob operations the storage account serves, from their routing rows."""
    lines = ["| endpoint | operation | request | service SAS permission |", "|---|---|---|---|"]
    for endpoint, rows in (("File", file_url_paths), ("Blob", blob_url_paths)):
        for method, level, restype, comp, handler, permissions in rows:
            lines.append("| {} | {} | `{}` | {} |".format(
                endpoint, handler.replace("_", " "), _request(method, level, restype, comp),
                " or ".join(permissions) if permissions else "none (Shared Key only)"))
    return "\n".join(lines)


def replace_table(text: str, new_table: str, start: str = START, end: str = END) -> str:
    """``text`` with the part between the coverage markers replaced by ``new_table``."""
    if start not in text or end not in text:
        raise ValueError("the coverage markers are missing; put {!r} and {!r} around the table".format(start, end))
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return "{}{}\n{}\n{}{}".format(head, start, new_table, end, tail)


def readme_table(text: str, start: str = START, end: str = END) -> str:
    """The table between the markers of ``text``."""
    return text.split(start, 1)[1].split(end, 1)[0].strip("\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulator.coverage", description=__doc__.split("\n")[0])
    parser.add_argument("--write", metavar="FILE", help="replace the table between the coverage markers of this file")
    args = parser.parse_args(argv)
    generated = table()
    if not args.write:
        print(generated)
        print()
        print(storage_table())
        print()
        print(azureml_coverage.table())
        return 0
    path = Path(args.write)
    try:
        text = path.read_text(encoding="utf-8")
        if azureml_coverage.START in text:  # the Azure ML table (docs/coverage.md)
            text = replace_table(text, azureml_coverage.table(), azureml_coverage.START, azureml_coverage.END)
        if START in text or azureml_coverage.START not in text:
            text = replace_table(text, generated)
        if STORAGE_START in text:
            text = replace_table(text, storage_table(), STORAGE_START, STORAGE_END)
        path.write_text(text, encoding="utf-8")
    except (OSError, ValueError) as exc:
        print("error: {}".format(exc), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
