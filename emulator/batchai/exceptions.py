"""Every Batch AI error code and message in one place.

Two kinds: request errors (``ArmError``, sent as a CloudError body with an HTTP status) and job
or node errors (``BatchAIError`` dicts, recorded in ``executionInfo.errors`` or a cluster's
``errors``). Wording follows the real service where it is known (reference section 1.3).
"""
from __future__ import annotations

from typing import Optional

from ..core.arm import ArmError

API_VERSION = "2018-05-01"
SUPPORTED_LOCATIONS = ("eastus, westus2, westeurope, eastus2, northeurope, australiaeast, eastus2euap, "
                       "westcentralus, southeastasia, southcentralus")


# ---- request errors -------------------------------------------------------------------------

def unsupported_api_version(version: str, resource_type: str, location: Optional[str] = None,
                            supported: tuple = (API_VERSION,)) -> ArmError:
    """Resource Manager's answer for an API version a provider does not serve (its documented form,
    "No registered resource provider found for location {location} and API version {api-version}
    for type {resource-type}", with the supported versions and locations, as ARM lists them)."""
    where = "location '{}' and ".format(location) if location else ""
    return ArmError(400, "NoRegisteredProviderFound",
                    "No registered resource provider found for {}API version '{}' for type '{}'. The supported "
                    "api-versions are '{}'. The supported locations are '{}'.".format(
                        where, version, resource_type, ", ".join(supported), SUPPORTED_LOCATIONS))


def subscription_not_found(subscription: str) -> ArmError:
    return ArmError(404, "SubscriptionNotFound", "The subscription '{}' could not be found.".format(subscription))


def resource_group_not_found(name: str) -> ArmError:
    return ArmError(404, "ResourceGroupNotFound", "Resource group '{}' could not be found.".format(name))


def resource_group_being_deleted(name: str) -> ArmError:
    return ArmError(409, "ResourceGroupBeingDeleted", "The resource group '{}' is in deprovisioning state and "
                                                      "cannot perform this operation.".format(name))


def invalid_name(kind: str, value: str) -> ArmError:
    return ArmError(400, "InvalidParameter",
                    "The {} name '{}' is invalid: use 1-64 letters, digits, '-' or '_'.".format(kind, value))


def invalid_parameter(message: str) -> ArmError:
    return ArmError(400, "InvalidParameter", message)


def missing_property(path: str, what: str) -> ArmError:
    return ArmError(400, "MissingRequiredProperty", "The property '{}' is required: {}.".format(path, what))


def location_required() -> ArmError:
    return ArmError(400, "LocationRequired", "The location property is required for this definition.")


def workspace_not_found(name: str) -> ArmError:
    return ArmError(404, "WorkspaceNotFound", "The specified workspace {} is not found".format(name))


def experiment_not_found(name: str) -> ArmError:
    return ArmError(404, "ExperimentNotFound", "The specified experiment {} is not found".format(name))


def cluster_not_found(name: str) -> ArmError:
    return ArmError(404, "ClusterNotFound", "The specified managed compute cluster {} is not found".format(name))


def file_server_not_found(name: str) -> ArmError:
    return ArmError(404, "FileServerNotFound", "The specified file server {} is not found".format(name))


def job_not_found(name: str) -> ArmError:
    return ArmError(404, "JobNotFound", "The specified job {} is not found".format(name))


def operation_not_found(op_id: str) -> ArmError:
    return ArmError(404, "OperationNotFound", "The operation {} is not found.".format(op_id))


def being_deleted(kind: str, name: str) -> ArmError:
    return ArmError(409, "Conflict", "The {} {} is being deleted.".format(kind, name))


def already_exists(kind: str, name: str) -> ArmError:
    return ArmError(409, "Conflict",
                    "The {0} {1} already exists with different properties; a {0} cannot be changed by PUT. "
                    "Delete it first or use another name.".format(kind, name))


def job_cluster_invalid(message: str) -> ArmError:
    return ArmError(400, "InvalidClusterReference", message)


def output_directory_not_found(job: str, directory_id: str, known: list) -> ArmError:
    return ArmError(400, "InvalidParameter",
                    "The job {} has no output directory with id '{}'; valid ids are: {}.".format(
                        job, directory_id, ", ".join(known)))


def not_on_mount_root(directory_id: str) -> ArmError:
    return ArmError(400, "InvalidParameter",
                    "The specified outputDirectoryId {} is not present on a mount root: only directories under "
                    "an Azure File share or a blob container mounted at $AZ_BATCHAI_MOUNT_ROOT or "
                    "$AZ_BATCHAI_JOB_MOUNT_ROOT can be listed.".format(directory_id))


def share_gone(share: str) -> ArmError:
    return ArmError(400, "InvalidParameter",
                    "The Azure File share '{}' holding this output directory no longer exists.".format(share))



def cluster_quota_reached(resource: str, limit: int, used: int) -> ArmError:
    """The service's words (recorded: MicrosoftDocs/azure-docs#17809, 2018)."""
    return ArmError(400, "ClusterQuotaReached",
                    "Operation results in exceeding quota limits of Microsoft.BatchAI/clusters. Maximum allowed: {}, "
                    "Current in use: {}. Please contact support to increase the quota for resource type "
                    "Microsoft.BatchAI/clusters".format(limit, used))


#: Usage name -> the code of the Azure Batch pool-resize error for that quota (Batch AI clusters were
#: Batch pools; Batch AI's own code for cores was not recorded anywhere we could find).
_CORE_QUOTA_CODES = {"Total Cluster Dedicated Regional vCPUs": "AccountCoreQuotaReached",
                     "Total Cluster LowPriority Regional vCPUs": "AccountLowPriorityCoreQuotaReached"}


def core_quota_reached(usage_name: str, limit: int, used: int, requested: int) -> ArmError:
    """A vCPU quota (a usages name): the message in the form of the recorded ClusterQuotaReached."""
    return ArmError(400, _CORE_QUOTA_CODES.get(usage_name, "AccountVMSeriesCoreQuotaReached"),
                    "Operation results in exceeding quota limits of {0}. Maximum allowed: {1}, Current in use: {2}, "
                    "Additional requested: {3}. Please contact support to increase the quota for resource type "
                    "{0}".format(usage_name, limit, used, requested))

# ---- job and node errors (BatchAIError objects) ---------------------------------------------

def batchai_error(code: str, message: str, details: Optional[dict] = None) -> dict:
    """A ``BatchAIError``: code, message and optional name/value ``details``."""
    error = {"code": code, "message": message}
    if details:
        error["details"] = [{"name": name, "value": value} for name, value in details.items()]
    return error


def job_failed() -> dict:
    return batchai_error("JobFailed", "Job failed with non-zero exit code")


def job_terminated() -> dict:
    return batchai_error("JobTerminated", "The specified job has been terminated by the user")


def job_node_removed(node_id: str) -> dict:
    # No recording of the service's error was found; the code follows JobTerminated's form.
    return batchai_error("JobTerminatedByResize",
                         "The job was terminated because the cluster was resized down and its node {} removed "
                         "(nodeDeallocationOption terminate); it will not run again".format(node_id))


def job_preparation_failed() -> dict:
    return batchai_error("JobPreparationFailed", "Job preparation failed with non-zero exit code")


def job_wall_clock_exceeded(limit: str) -> dict:
    return batchai_error("JobWallClockTimeExceeded",
                         "The job ran longer than its maxWallClockTime constraint ({}) and was stopped".format(limit))


def job_interrupted() -> dict:
    return batchai_error("JobInterrupted",
                         "The emulator stopped while the job was running; its process was stopped. "
                         "Outputs written so far are kept; resubmit the job.")


def job_cluster_deleted(cluster: str) -> dict:
    return batchai_error("ClusterDeleted", "The cluster {} was deleted while the job was running".format(cluster))


def job_cluster_missing(cluster: str) -> dict:
    return batchai_error("ClusterNotFound",
                         "The cluster {} the job was queued on no longer exists".format(cluster))


def job_launch_failed(what: str, reason: str) -> dict:
    return batchai_error("JobLaunchFailed", "Could not start {}: {}".format(what, reason))


def toolkit_not_supported(message: str) -> dict:
    return batchai_error("ToolkitNotSupported", message)


def file_server_mount_error(server_id: str, mount_path: str, reason: str) -> dict:
    # No recording of this error was found; it follows AZFMountError's form.
    return batchai_error("NFSMountError", "Unable to mount NFS file server",
                         {"Info": "Could not mount file server {} at {}: {}".format(server_id, mount_path, reason)})


def blob_mount_error(container: str, mount_path: str, reason: str) -> dict:
    # No recording of this error was found; it follows AZFMountError's form.
    return batchai_error("AZBlobMountError", "Unable to mount Azure Blob container",
                         {"Info": "Could not mount {} at {}: {}".format(container, mount_path, reason)})


def azure_file_mount_error(share_url: str, mount_path: str, reason: str) -> dict:
    return batchai_error("AZFMountError", "Unable to mount Azure File",
                         {"Info": "Could not mount Azure File Share {} at {}: {}".format(
                             share_url, mount_path, reason)})


def setup_task_failed(node_id: str, exit_code: int, log_dir: str) -> dict:
    return batchai_error("SetupTaskFailed",
                         "The node setup task exited with code {} on node {}".format(exit_code, node_id),
                         {"StdOutErrDir": log_dir})


def setup_task_launch_failed(node_id: str, reason: str) -> dict:
    return batchai_error("SetupTaskFailed",
                         "Could not start the node setup task on node {}: {}".format(node_id, reason))
