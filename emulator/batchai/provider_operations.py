"""What ``GET /providers/Microsoft.BatchAI/operations`` lists: the provider's operations as the
2018-05-01 specification's example ListOperation.json gives them (names, display texts, origin;
the service's own typos kept)."""
from __future__ import annotations

_PROVIDER = "Microsoft Batch AI"

# (name, resource, operation, description)
_OPERATIONS = [
    ("Microsoft.BatchAI/workspaces/read", "Batch AI Workspaces", "List or get Batch AI workspaces",
     "Lists Batch AI workspaces or gets the properties of a Batch AI workspace"),
    ("Microsoft.BatchAI/workspaces/write", "Batch AI Workspaces", "Create or update Batch AI workspace",
     "Creates a new Batch AI workspace or updates an existing Batch AI workspace"),
    ("Microsoft.BatchAI/workspaces/delete", "Batch AI Clusters", "Delete Batch AI workspace",
     "Deletes a Batch AI workspace"),
    ("Microsoft.BatchAI/workspaces/experiments/read", "Batch AI Experiments", "List or get Batch AI experiements",
     "Lists Batch AI experiments or gets the properties of a Batch AI experiment"),
    ("Microsoft.BatchAI/workspaces/experiments/write", "Batch AI Experiments", "Create or update Batch AI experiement",
     "Creates a new Batch AI experiment or updates an existing Batch AI experiment"),
    ("Microsoft.BatchAI/workspaces/experiments/delete", "Batch AI Experiments", "Delete Batch AI experiment",
     "Deletes a Batch AI experiment"),
    ("Microsoft.BatchAI/clusters/read", "Batch AI Clusters", "List or get Batch AI clusters",
     "Lists Batch AI clusters or gets the properties of a Batch AI cluster"),
    ("Microsoft.BatchAI/workspaces/clusters/read", "Batch AI Clusters", "List or get Batch AI clusters",
     "Lists Batch AI clusters or gets the properties of a Batch AI cluster"),
    ("Microsoft.BatchAI/workspaces/clusters/write", "Batch AI Clusters", "Create or update Batch AI cluster",
     "Creates a new Batch AI cluster or updates an existing Batch AI cluster"),
    ("Microsoft.BatchAI/workspaces/clusters/delete", "Batch AI Clusters", "Delete Batch AI cluster",
     "Deletes a Batch AI cluster"),
    ("Microsoft.BatchAI/workspaces/clusters/remoteLoginInformation/action", "Batch AI Clusters",
     "List Batch AI cluster remote-login information", "Lists remote-login information for a Batch AI cluster"),
    ("Microsoft.BatchAI/workspaces/experiments/jobs/read", "Batch AI Jobs", "List or get Batch AI jobs",
     "Lists Batch AI jobs or gets the properties of a Batch AI job"),
    ("Microsoft.BatchAI/workspaces/experiments/jobs/write", "Batch AI Jobs", "Create or update Batch AI job",
     "Creates a new Batch AI job or updates an existing Batch AI job"),
    ("Microsoft.BatchAI/workspaces/experiments/jobs/delete", "Batch AI Jobs", "Delete Batch AI job",
     "Deletes a Batch AI job"),
    ("Microsoft.BatchAI/workspaces/experiments/jobs/terminate/action", "Batch AI Jobs", "Terminate Batch AI job",
     "Terminates a Batch AI job"),
    ("Microsoft.BatchAI/workspaces/experiments/jobs/remoteLoginInformation/action", "Batch AI Jobs",
     "List Batch AI job remote-login information", "Lists remote-login information for a Batch AI job"),
    ("Microsoft.BatchAI/workspaces/experiments/jobs/listoutputfiles/action", "Batch AI Jobs",
     "List Batch AI job output files", "Lists output files for a Batch AI job"),
    ("Microsoft.BatchAI/fileservers/read", "Batch AI Fileservers", "List or get Batch AI fileservers",
     "Lists Batch AI fileservers or gets the properties of a Batch AI fileserver"),
    ("Microsoft.BatchAI/workspaces/fileservers/read", "Batch AI Fileservers", "List or get Batch AI fileservers",
     "Lists Batch AI fileservers or gets the properties of a Batch AI fileserver"),
    ("Microsoft.BatchAI/workspaces/fileservers/write", "Batch AI Fileservers", "Create or update Batch AI fileserver",
     "Creates a new Batch AI fileserver or updates an existing Batch AI fileserver"),
    ("Microsoft.BatchAI/workspaces/fileservers/delete", "Batch AI Fileservers", "Delete Batch AI filserver",
     "Deletes a Batch AI fileserver"),
    ("Microsoft.BatchAI/locations/usages/read", "Batch AI Usages", "Get Batch AI Usages",
     "Gets Batch AI usages of the specified subscription at the specified Azure region"),
    ("Microsoft.BatchAI/register/action", "Batch AI Resource Provider", "Register the Batch AI Resource Provider",
     "Registers the subscription for the Batch AI Resource Provider and enables the creation of Batch AI resources"),
    ("Microsoft.BatchAI/unregister/action", "Batch AI Resource Provider", "Unregister the Batch AI Resource Provider",
     "Unregisters the subscription for the Batch AI Resource Provider preventing the creation of Batch AI "
     "resources"),
    ("Microsoft.BatchAI/locations/operationresults/read", "Batch AI Operation Results",
     "Get Batch AI Opreation Result", "Gets Batch AI async operation result at the specified Azure region"),
    ("Microsoft.BatchAI/locations/operationstatuses/read", "Batch AI Operation Statuses",
     "Get Batch AI Opreation Status", "Gets Batch AI async operation status at the specified Azure region"),
]


def provider_operations() -> list:
    return [{"name": name, "display": {"provider": _PROVIDER, "resource": resource, "operation": operation,
                                       "description": description},
             "origin": "user,system", "properties": None}
            for name, resource, operation, description in _OPERATIONS]
