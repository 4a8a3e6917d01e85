"""Resource Manager error codes and messages, as ARM words them."""
from __future__ import annotations

from ..core.arm import ArmError


def subscription_not_found(subscription: str) -> ArmError:
    return ArmError(404, "SubscriptionNotFound", "The subscription '{}' could not be found.".format(subscription))


def invalid_resource_group_name(name: str) -> ArmError:
    return ArmError(400, "InvalidResourceGroupName",
                    "Resource group name '{}' is invalid. It must be 1-90 characters of letters, digits, "
                    "underscores, parentheses, hyphens and periods, and must not end in a period.".format(name))


def location_required() -> ArmError:
    return ArmError(400, "LocationRequired", "The location property is required for this definition.")


def invalid_location(name: str, requested: str, existing: str) -> ArmError:
    return ArmError(409, "InvalidResourceGroupLocation",
                    "Invalid resource group location '{}'. The Resource group '{}' already exists in location "
                    "'{}'.".format(requested, name, existing))


def invalid_tags() -> ArmError:
    return ArmError(400, "InvalidRequestContent", "The property 'tags' must be an object of string values.")


def resource_group_not_found(name: str) -> ArmError:
    return ArmError(404, "ResourceGroupNotFound", "Resource group '{}' could not be found.".format(name))


def resource_group_being_deleted(name: str) -> ArmError:
    return ArmError(409, "ResourceGroupBeingDeleted", "The resource group '{}' is in deprovisioning state and "
                                                      "cannot perform this operation.".format(name))


def operation_not_found(op_id: str) -> ArmError:
    return ArmError(404, "OperationNotFound", "The operation {} is not found.".format(op_id))


def invalid_resource_namespace(namespace: str) -> ArmError:
    return ArmError(404, "InvalidResourceNamespace", "The resource namespace '{}' is invalid.".format(namespace[:100]))
