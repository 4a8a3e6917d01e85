"""The resource providers the emulator serves, as ``GET /subscriptions/{s}/providers/{namespace}``
describes them (the ARM ``Provider`` shape: namespace, registration policy, resource types with
their locations and API versions). Registration states are kept per data directory (``models``).
"""
from __future__ import annotations

from typing import Optional

#: Batch AI's regions (``batchai.exceptions.SUPPORTED_LOCATIONS``) as ARM names them in provider documents.
BATCHAI_LOCATIONS = ("East US", "West US 2", "West Europe", "East US 2", "North Europe", "Australia East",
                     "East US 2 EUAP", "West Central US", "Southeast Asia", "South Central US")
BATCHAI_API_VERSIONS = ("2018-05-01", "2018-03-01", "2017-09-01-preview")
#: The versions azure-ai-ml 1.35.2 calls (see the reference notes on its flow).
AZUREML_API_VERSIONS = ("2025-01-01-preview", "2024-10-01-preview", "2024-01-01-preview", "2023-08-01-preview")
RESOURCES_API_VERSIONS = ("2025-04-01", "2024-11-01", "2022-12-01", "2021-04-01", "2019-10-01", "2017-05-10")

#: namespace -> (registration policy, registered from the start, {resource type: (locations, api versions)})
CATALOGUE = {
    "Microsoft.Resources": ("RegistrationFree", True, {
        name: ((), RESOURCES_API_VERSIONS) for name in (
            "tenants", "operations", "subscriptions", "subscriptions/providers", "subscriptions/operationresults",
            "resourceGroups", "subscriptions/resourceGroups", "deployments", "deployments/operations")}),
    "Microsoft.BatchAI": ("RegistrationRequired", False, {
        name: (BATCHAI_LOCATIONS, BATCHAI_API_VERSIONS) for name in (
            "clusters", "jobs", "fileservers", "operations", "locations", "locations/operationresults",
            "locations/operationstatuses", "locations/usages", "workspaces", "workspaces/clusters",
            "workspaces/experiments", "workspaces/experiments/jobs", "workspaces/fileservers")}),
    "Microsoft.MachineLearningServices": ("RegistrationRequired", False, {
        name: (BATCHAI_LOCATIONS, AZUREML_API_VERSIONS) for name in (
            "operations", "locations", "workspaces", "workspaces/computes", "workspaces/jobs",
            "workspaces/datastores", "workspaces/environments", "workspaces/models", "workspaces/data",
            "workspaces/components")}),
}


def canonical_namespace(namespace: str) -> Optional[str]:
    """The namespace as ARM spells it (matched case-insensitively), or None if not served."""
    for name in CATALOGUE:
        if name.lower() == namespace.lower():
            return name
    return None


def provider_json(subscription_id: str, namespace: str, state: str) -> dict:
    policy, _, types = CATALOGUE[namespace]
    resource_types = []
    for name, (locations, versions) in types.items():
        entry = {"resourceType": name, "locations": list(locations), "apiVersions": list(versions)}
        entry["capabilities"] = "None"
        resource_types.append(entry)
    return {"id": "/subscriptions/{}/providers/{}".format(subscription_id, namespace), "namespace": namespace,
            "registrationState": state, "registrationPolicy": policy, "resourceTypes": resource_types}
