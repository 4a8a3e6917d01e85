"""A workspace ``PATCH`` (WorkspaceUpdateParameters, as ``workspaces.begin_update`` and ``begin_create`` on
an existing workspace send it): ``tags`` replace the workspace's tags; ``properties.description`` and
``properties.friendlyName`` change what the workspace shows; the other updatable properties of the
specification are kept and shown as sent. Anything else is refused with a message naming it.
"""
from __future__ import annotations

from . import exceptions as errors

#: WorkspacePropertiesUpdateParameters (2025-12-01) and the two properties azure-ai-ml 1.35.2 adds.
UPDATABLE = ("applicationInsights", "containerRegistry", "description", "enableDataIsolation", "encryption",
             "featureStoreSettings", "friendlyName", "imageBuildCompute", "managedNetwork",
             "primaryUserAssignedIdentity", "publicNetworkAccess", "serverlessComputeSettings",
             "serviceManagedResourcesSettings", "systemDatastoresAuthMode", "v1LegacyMode",
             "allowRoleAssignmentOnRG", "networkAcls")
TOP_LEVEL = ("tags", "properties", "identity", "sku")


def updated_body(body: dict, patch: dict) -> dict:
    """The stored workspace ``body`` (models.py) after ``patch``; ``None`` values leave a property as it is."""
    unknown = sorted(set(patch) - set(TOP_LEVEL))
    if unknown:
        raise errors.invalid_request("A workspace update cannot change {}; it takes {}.".format(
            ", ".join(unknown), ", ".join(TOP_LEVEL)))
    properties = patch.get("properties") or {}
    if not isinstance(properties, dict):
        raise errors.invalid_request("properties must be an object.")
    unknown = sorted(set(properties) - set(UPDATABLE))
    if unknown:
        raise errors.invalid_request("properties.{} cannot be updated on a workspace.".format(unknown[0]))
    tags = patch.get("tags")
    if tags is not None and (not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values())):
        raise errors.invalid_request("tags must be an object of strings.")
    body = dict(body)
    if tags is not None:
        body["tagValues"] = tags
    for key in ("friendlyName", "description"):
        if properties.get(key) is not None:
            body[key] = properties[key]
    updated = dict(body.get("updated") or {})
    updated.update({key: value for key, value in properties.items()
                    if value is not None and key not in ("friendlyName", "description")})
    body["updated"] = updated
    return body
