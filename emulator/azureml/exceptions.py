"""Azure Machine Learning error codes and messages in one place: request errors (``ArmError``, sent as
``{"error": {"code", "message"}}``) and job errors (RunHistory ``error`` bodies)."""
from __future__ import annotations

from ..core.arm import ArmError


def subscription_not_found(subscription: str) -> ArmError:
    return ArmError(404, "SubscriptionNotFound", "The subscription '{}' could not be found.".format(subscription))


def resource_group_not_found(name: str) -> ArmError:
    return ArmError(404, "ResourceGroupNotFound", "Resource group '{}' could not be found.".format(name))


def not_found(kind: str, name: str) -> ArmError:
    """What the service answers for a missing workspace, compute, asset or job (404 UserError)."""
    return ArmError(404, "ResourceNotFound", "The Resource '{}' under resource group was not found: {} "
                                             "'{}' does not exist.".format(name, kind, name))


def deployment_not_found(name: str) -> ArmError:
    return ArmError(404, "DeploymentNotFound", "Deployment '{}' could not be found.".format(name))


def invalid_request(message: str) -> ArmError:
    return ArmError(400, "UserError", message)


def conflict(message: str) -> ArmError:
    return ArmError(409, "UserError", message)


def unauthorized() -> tuple:
    return ("AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing or invalid.")


def operation_not_found(op_id: str) -> ArmError:
    return ArmError(404, "OperationNotFound", "The operation {} is not found.".format(op_id))


# ---- job errors (RunHistory ``error``) --------------------------------------------------------

def job_error(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}


def user_process_failed(exit_code: int, log_name: str) -> dict:
    return job_error("UserError", "Execution failed. User process 'python' exited with status code {}. Please "
                                  "check log file '{}' for more details.".format(exit_code, log_name))


def job_cancelled() -> dict:
    return job_error("UserError", "The job was canceled by the user.")


def job_interrupted() -> dict:
    return job_error("SystemError", "The emulator stopped while the job ran.")


def job_setup_failed(reason: str) -> dict:
    return job_error("UserError", "The job could not be prepared: {}".format(reason))


def too_many_nodes(requested: int, maximum: int, compute: str) -> dict:
    return job_error("UserError", "The job requests {} nodes but compute {} has at most {} (maxNodeCount)."
                     .format(requested, compute, maximum))


def image_build_failed(log_path: str) -> dict:
    """The service's error when a job's environment image could not be built."""
    return {"error": {"code": "UserError",
                      "message": "Image build failed. For more details, check log file {}.".format(log_path),
                      "messageFormat": "Image build failed. For more details, check log file {ArtifactPath}.",
                      "messageParameters": {"ArtifactPath": log_path}, "details": [],
                      "innerError": {"code": "BadArgument"}}}
