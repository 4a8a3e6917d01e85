"""The Batch AI 2018-05-01 request models as JSON Schema, checked at every handler's entry (core/schema.py).

Derived from the REST spec (Azure/azure-rest-api-specs ``specification/batchai/resource-manager/
Microsoft.BatchAI/stable/2018-05-01/BatchAI.json``, ``definitions``): the same model names, property
types, ``required`` lists and enums. What the spec leaves open and the emulator bounds is marked
"emulator": node and process counts (the service's quota of 100 nodes per cluster, reference 2.6).
Enums match in any case, as the service's (and validation.py's) did. ``description`` of a required
property is the "what" in the 400 that names it.

Deliberately not here: names and paths (validation.py's naming rules), rules between properties
(exactly one toolkit, minimum <= maximum, unique mount paths) and what needs stored state; those stay
in validation.py and models.py, after this check. Two leniencies the emulator always had are kept:
``nodeCount`` defaults to 1 (the spec requires it), and a missing ``location`` is Resource Manager's
``LocationRequired`` (validation.normalize_location), not a schema error.
"""
from __future__ import annotations

from ..core.schema import REQUIRED, SchemaChecker, Violation
from . import exceptions as errors
from .validation import DEALLOCATION_OPTIONS, MAX_NODES_PER_CLUSTER, VM_PRIORITIES

STRING = {"type": "string"}
MAX_PROCESSES = MAX_NODES_PER_CLUSTER * 64  # emulator: a job's processes (validation.py had the same bound)


def ref(name: str, description: str = "") -> dict:
    schema = {"$ref": "#/$defs/" + name}
    if description:
        schema["description"] = description
    return schema


def obj(properties: dict, required: tuple = ()) -> dict:
    schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


def array_of(name: str) -> dict:
    return {"type": "array", "items": ref(name)}


def integer(low: int, high: int) -> dict:
    return {"type": "integer", "minimum": low, "maximum": high}


def string(description: str) -> dict:
    return {"type": "string", "description": description}


def _toolkit(string_fields: tuple, counts: tuple = (), required: tuple = ()) -> dict:
    properties = {name: string("the script to run") if name == "pythonScriptFilePath" else
                  string("the command to run") if name == "commandLine" else STRING for name in string_fields}
    properties.update({name: integer(1, MAX_PROCESSES) for name in counts})
    return obj(properties, required)


_PYTHON = ("pythonScriptFilePath", "pythonInterpreterPath", "commandLineArgs")

DEFINITIONS = {
    # ---- shared
    "ResourceId": obj({"id": string("the resource id")}, ("id",)),
    "KeyVaultSecretReference": obj({"sourceVault": ref("ResourceId", "the Key Vault's resource id"),
                                    "secretUrl": string("the URL of the secret")}, ("sourceVault", "secretUrl")),
    "EnvironmentVariable": obj({"name": string("every variable needs a name"),
                                "value": string("every variable needs a string value")}, ("name", "value")),
    "EnvironmentVariableWithSecretValue": obj({"name": string("every variable needs a name"), "value": STRING,
                                               "valueSecretReference": ref("KeyVaultSecretReference")}, ("name",)),
    "AzureStorageCredentialsInfo": obj({"accountKey": STRING,
                                        "accountKeySecretReference": ref("KeyVaultSecretReference")}),
    "AzureFileShareReference": obj({
        "accountName": string("the storage account name"), "azureFileUrl": string("the URL of the file share"),
        "credentials": ref("AzureStorageCredentialsInfo", "the storage account key"),
        "relativeMountPath": string("where to mount the share, relative to the mount root"),
        "fileMode": STRING, "directoryMode": STRING},
        ("accountName", "azureFileUrl", "credentials", "relativeMountPath")),
    "AzureBlobFileSystemReference": obj({
        "accountName": string("the storage account name"), "containerName": string("the Blob container's name"),
        "credentials": ref("AzureStorageCredentialsInfo", "the storage account key"),
        "relativeMountPath": string("where to mount it, relative to the mount root"), "mountOptions": STRING},
        ("accountName", "containerName", "credentials", "relativeMountPath")),
    "FileServerReference": obj({
        "fileServer": ref("ResourceId", "the file server's resource id"), "sourceDirectory": STRING,
        "relativeMountPath": string("where to mount it, relative to the mount root"), "mountOptions": STRING},
        ("fileServer", "relativeMountPath")),
    "UnmanagedFileSystemReference": obj({"mountCommand": string("the mount command"),
                                         "relativeMountPath": string("where to mount it")},
                                        ("mountCommand", "relativeMountPath")),
    "MountVolumes": obj({"azureFileShares": array_of("AzureFileShareReference"),
                         "azureBlobFileSystems": array_of("AzureBlobFileSystemReference"),
                         "fileServers": array_of("FileServerReference"),
                         "unmanagedFileSystems": array_of("UnmanagedFileSystemReference")}),
    "UserAccountSettings": obj({"adminUserName": string("the administrator user name of the nodes"),
                                "adminUserSshPublicKey": STRING, "adminUserPassword": STRING}, ("adminUserName",)),

    # ---- workspaces and experiments
    "WorkspaceCreateParameters": obj({"location": STRING,
                                      "tags": {"type": "object", "additionalProperties": STRING}}),
    "WorkspaceUpdateParameters": obj({"tags": {"type": "object", "additionalProperties": STRING}}),
    "ExperimentCreateParameters": {"type": "object"},  # the API defines no body; the SDK sends none

    # ---- clusters
    "ManualScaleSettings": obj({"targetNodeCount": {**integer(0, MAX_NODES_PER_CLUSTER),
                                                    "description": "the number of nodes"},
                                "nodeDeallocationOption": {"type": "string",
                                                           "anyCaseEnum": list(DEALLOCATION_OPTIONS)}},
                               ("targetNodeCount",)),
    "AutoScaleSettings": obj({"minimumNodeCount": {**integer(0, MAX_NODES_PER_CLUSTER),
                                                   "description": "the fewest nodes"},
                              "maximumNodeCount": {**integer(1, MAX_NODES_PER_CLUSTER),
                                                   "description": "the most nodes"},
                              "initialNodeCount": integer(0, MAX_NODES_PER_CLUSTER)},
                             ("minimumNodeCount", "maximumNodeCount")),
    "ScaleSettings": obj({"manual": ref("ManualScaleSettings"), "autoScale": ref("AutoScaleSettings")}),
    "ImageReference": obj({"publisher": string("the image's publisher"), "offer": string("the image's offer"),
                           "sku": string("the image's SKU"), "version": STRING, "virtualMachineImageId": STRING},
                          ("publisher", "offer", "sku")),
    "VirtualMachineConfiguration": obj({"imageReference": ref("ImageReference")}),
    "SetupTask": obj({"commandLine": string("the command the node setup task runs"),
                      "environmentVariables": array_of("EnvironmentVariable"),
                      "secrets": array_of("EnvironmentVariableWithSecretValue"),
                      "stdOutErrPathPrefix": string("where the setup task's output goes"),
                      "stdOutErrPathSuffix": STRING},
                     ("commandLine", "stdOutErrPathPrefix")),
    "AppInsightsReference": obj({"component": ref("ResourceId", "the Application Insights component's id"),
                                 "instrumentationKey": STRING,
                                 "instrumentationKeySecretReference": ref("KeyVaultSecretReference")},
                                ("component",)),
    "PerformanceCountersSettings": obj({"appInsightsReference": ref("AppInsightsReference",
                                                                    "the Application Insights reference")},
                                       ("appInsightsReference",)),
    "NodeSetup": obj({"setupTask": ref("SetupTask"), "mountVolumes": ref("MountVolumes"),
                      "performanceCountersSettings": ref("PerformanceCountersSettings")}),
    "ClusterBaseProperties": obj({
        "vmSize": string("the VM size, e.g. STANDARD_NC6"),
        "vmPriority": {"type": "string", "anyCaseEnum": list(VM_PRIORITIES)},
        "scaleSettings": ref("ScaleSettings"), "virtualMachineConfiguration": ref("VirtualMachineConfiguration"),
        "nodeSetup": ref("NodeSetup"),
        "userAccountSettings": ref("UserAccountSettings", "the administrator account of the nodes"),
        "subnet": ref("ResourceId")},
        ("vmSize", "userAccountSettings")),
    "ClusterCreateParameters": obj({"properties": ref("ClusterBaseProperties")}),
    "ClusterUpdateProperties": obj({"scaleSettings": ref("ScaleSettings")}),
    "ClusterUpdateParameters": obj({"properties": ref("ClusterUpdateProperties")}),

    # ---- file servers
    "SshConfiguration": obj({"publicIPsToAllow": {"type": "array", "items": STRING},
                             "userAccountSettings": ref("UserAccountSettings", "the administrator account")},
                            ("userAccountSettings",)),
    "DataDisks": obj({"diskSizeInGB": {"type": "integer", "description": "the size of each disk"},
                      "cachingType": {"type": "string", "anyCaseEnum": ["none", "readonly", "readwrite"]},
                      "diskCount": {"type": "integer", "description": "how many disks"},
                      "storageAccountType": {"type": "string", "enum": ["Standard_LRS", "Premium_LRS"],
                                             "description": "Standard_LRS or Premium_LRS"}},
                     ("diskSizeInGB", "diskCount", "storageAccountType")),
    "FileServerBaseProperties": obj({
        "vmSize": string("the VM size, e.g. STANDARD_D1"),
        "sshConfiguration": ref("SshConfiguration", "the administrator account of the server"),
        "dataDisks": ref("DataDisks", "the data disks of the server"), "subnet": ref("ResourceId")},
        ("vmSize", "sshConfiguration", "dataDisks")),
    "FileServerCreateParameters": obj({"properties": ref("FileServerBaseProperties")}),

    # ---- jobs
    "PrivateRegistryCredentials": obj({"username": string("the registry user name"), "password": STRING,
                                       "passwordSecretReference": ref("KeyVaultSecretReference")}, ("username",)),
    "ImageSourceRegistry": obj({"serverUrl": STRING, "image": string("the container image"),
                                "credentials": ref("PrivateRegistryCredentials")}, ("image",)),
    "ContainerSettings": obj({"imageSourceRegistry": ref("ImageSourceRegistry", "the image and its registry"),
                              "shmSize": STRING}, ("imageSourceRegistry",)),
    "CNTKsettings": _toolkit(("languageType", "configFilePath") + _PYTHON, ("processCount",)),
    "CaffeSettings": _toolkit(("configFilePath",) + _PYTHON, ("processCount",)),
    "Caffe2Settings": _toolkit(_PYTHON, (), ("pythonScriptFilePath",)),
    "ChainerSettings": _toolkit(_PYTHON, ("processCount",), ("pythonScriptFilePath",)),
    "CustomToolkitSettings": _toolkit(("commandLine",)),
    "CustomMpiSettings": _toolkit(("commandLine",), ("processCount",), ("commandLine",)),
    "HorovodSettings": _toolkit(_PYTHON, ("processCount",), ("pythonScriptFilePath",)),
    "PyTorchSettings": _toolkit(_PYTHON + ("communicationBackend",), ("processCount",), ("pythonScriptFilePath",)),
    "TensorFlowSettings": _toolkit(("pythonScriptFilePath", "pythonInterpreterPath", "masterCommandLineArgs",
                                    "workerCommandLineArgs", "parameterServerCommandLineArgs"),
                                   ("workerCount", "parameterServerCount"), ("pythonScriptFilePath",)),
    "JobPreparation": obj({"commandLine": string("the preparation command")}, ("commandLine",)),
    "InputDirectory": obj({"id": string("the directory id"), "path": string("the directory path")}, ("id", "path")),
    "OutputDirectory": obj({"id": string("the directory id"), "pathPrefix": string("the directory path"),
                            "pathSuffix": STRING}, ("id", "pathPrefix")),
    "JobBaseProperties": obj({
        "schedulingPriority": {"type": "string", "anyCaseEnum": ["low", "normal", "high"]},
        "cluster": ref("ResourceId", "the resource id of the cluster to run on"),
        "mountVolumes": ref("MountVolumes"),
        "nodeCount": integer(1, MAX_NODES_PER_CLUSTER),
        "containerSettings": ref("ContainerSettings"),
        "cntkSettings": ref("CNTKsettings"), "pyTorchSettings": ref("PyTorchSettings"),
        "tensorFlowSettings": ref("TensorFlowSettings"), "caffeSettings": ref("CaffeSettings"),
        "caffe2Settings": ref("Caffe2Settings"), "chainerSettings": ref("ChainerSettings"),
        "customToolkitSettings": ref("CustomToolkitSettings"), "customMpiSettings": ref("CustomMpiSettings"),
        "horovodSettings": ref("HorovodSettings"),
        "jobPreparation": ref("JobPreparation"),
        "stdOutErrPathPrefix": string("where stdout.txt and stderr.txt go, e.g. "
                                      "$AZ_BATCHAI_MOUNT_ROOT/<share mount>"),
        "inputDirectories": array_of("InputDirectory"), "outputDirectories": array_of("OutputDirectory"),
        "environmentVariables": array_of("EnvironmentVariable"),
        "secrets": array_of("EnvironmentVariableWithSecretValue"),
        "constraints": obj({"maxWallClockTime": STRING})},
        ("cluster", "stdOutErrPathPrefix")),
    "JobCreateParameters": obj({"properties": ref("JobBaseProperties")}),
}


def _refusal(violation: Violation) -> Exception:
    if violation.kind == REQUIRED:
        return errors.ArmError(400, "MissingRequiredProperty", violation.message)
    return errors.invalid_parameter(violation.message)


#: ``check(body, "JobCreateParameters")``: the body without nulls, or Batch AI's 400 naming the property.
check = SchemaChecker(DEFINITIONS, _refusal).check
