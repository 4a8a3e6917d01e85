"""The Azure ML request models the emulator serves, as JSON Schema checked at every handler's entry
(core/schema.py), so that no malformed body reaches a handler: each gives Azure ML's 400 ``UserError``.

Derived from the REST specs the routes belong to, as azure-ai-ml 1.35.2 calls them (reference:
azureml-v2-flow.md section 2): Azure/azure-rest-api-specs ``specification/machinelearningservices/
resource-manager/Microsoft.MachineLearningServices`` (``mfe.json``: JobBase, CommandJob, JobInput,
JobOutput, DistributionConfiguration, JobResourceConfiguration, CodeVersion, DataVersionBase,
EnvironmentVersion, ModelVersion, PendingUploadRequestDto; ``machineLearningServices.json``:
ComputeResource, AmlCompute, ScaleSettings), ``specification/resources/.../deployments`` (Deployment,
DeploymentProperties), and the data plane models the SDK sends (GetRunDataRequest,
BatchGetResolvedURIs); model and property names are theirs. Enums are the SDK's (its generated
``_enums.py``). Marked "emulator": bounds the specs leave open and the emulator needs (at least one
instance, at most 100 nodes, a bounded number of processes per instance, node counts from 0).

String maps (``tags``, ``properties``, ``environmentVariables``) take any scalar: the service reads them
as strings and converts numbers and booleans (the SDK itself sends a code version's ``hash_version`` as
a number); a list or an object there is refused. Names that become paths are checked elsewhere.
"""
from __future__ import annotations

from ..core.schema import SchemaChecker, Violation
from . import exceptions as errors

STRING = {"type": "string"}
BOOLEAN = {"type": "boolean"}
OBJECT = {"type": "object"}
SCALAR = {"type": ["string", "number", "boolean"]}
STRING_MAP = {"type": "object", "additionalProperties": SCALAR}
MAX_NODES = 100  # emulator: nodes of a compute and of a job (every node is a process group on this machine)
MAX_PROCESSES_PER_INSTANCE = 128  # emulator: every process runs on this machine


def ref(name: str, description: str = "") -> dict:
    schema = {"$ref": "#/$defs/" + name}
    if description:
        schema["description"] = description
    return schema


def obj(properties: dict, required: tuple = (), **more) -> dict:
    schema = {"type": "object", "properties": properties, **more}
    if required:
        schema["required"] = list(required)
    return schema


def string(description: str, **more) -> dict:
    return {"type": "string", "description": description, **more}


def when(discriminator: str, value: str, then: dict) -> dict:
    """``then`` applies when the discriminator property has ``value`` (a polymorphic model's subtype)."""
    return {"if": {"properties": {discriminator: {"const": value}}, "required": [discriminator]}, "then": then}


def _asset(properties: dict, required: tuple = (), **more) -> dict:
    """ResourceBase and AssetBase properties, plus a version kind's own."""
    common = {"description": STRING, "properties": STRING_MAP, "tags": STRING_MAP, "isAnonymous": BOOLEAN,
              "isArchived": BOOLEAN, "autoDeleteSetting": OBJECT, "stage": STRING}
    return obj({**common, **properties}, required, **more)


def _resource(properties_model: str) -> dict:
    return obj({"properties": ref(properties_model, "the version's properties")}, ("properties",))


DEFINITIONS = {
    # ---- Resource Manager deployments (workspaces.begin_create deploys the workspace template)
    "DeploymentParameter": obj({"value": {}, "reference": OBJECT}),
    "WorkspaceTemplateParameters": obj({
        "workspaceName": obj({"value": string("the workspace's name")}, ("value",),
                             description="only Azure ML workspace templates are supported by the emulator"),
        "location": obj({"value": STRING}), "friendlyName": obj({"value": STRING}),
        "description": obj({"value": STRING}), "storageAccountName": obj({"value": STRING}),
        "keyVaultName": obj({"value": STRING}), "applicationInsightsName": obj({"value": STRING}),
        "tagValues": obj({"value": {"type": "object", "additionalProperties": STRING}})},
        ("workspaceName",), additionalProperties=ref("DeploymentParameter")),
    "DeploymentProperties": obj({
        "template": OBJECT, "templateLink": OBJECT, "parametersLink": OBJECT, "debugSetting": OBJECT,
        "onErrorDeployment": OBJECT, "expressionEvaluationOptions": OBJECT,
        "parameters": ref("WorkspaceTemplateParameters", "the workspace template's parameters"),
        "mode": {"type": "string", "anyCaseEnum": ["Incremental", "Complete"],
                 "description": "Incremental or Complete"}},
        ("mode", "parameters")),
    "Deployment": obj({"location": STRING, "tags": STRING_MAP,
                       "properties": ref("DeploymentProperties", "the template and its parameters")},
                      ("properties",)),

    # ---- computes
    "ResourceId": obj({"id": string("the resource id")}, ("id",)),
    "ScaleSettings": obj({"maxNodeCount": {"type": "integer", "minimum": 0, "maximum": MAX_NODES,
                                           "description": "the most nodes"},
                          "minNodeCount": {"type": "integer", "minimum": 0, "maximum": MAX_NODES},
                          "nodeIdleTimeBeforeScaleDown": STRING}, ("maxNodeCount",)),
    "UserAccountCredentials": obj({"adminUserName": string("the administrator user name"),
                                   "adminUserSshPublicKey": STRING, "adminUserPassword": STRING},
                                  ("adminUserName",)),
    "AmlComputeProperties": obj({
        "osType": {"type": "string", "anyCaseEnum": ["Linux", "Windows"]}, "vmSize": STRING,
        "vmPriority": {"type": "string", "anyCaseEnum": ["Dedicated", "LowPriority"]},
        "virtualMachineImage": ref("ResourceId"), "isolatedNetwork": BOOLEAN, "scaleSettings": ref("ScaleSettings"),
        "userAccountCredentials": ref("UserAccountCredentials"), "subnet": ref("ResourceId"),
        "remoteLoginPortPublicAccess": {"type": "string", "anyCaseEnum": ["Enabled", "Disabled", "NotSpecified"]},
        "enableNodePublicIp": BOOLEAN, "propertyBag": {}}),
    "Compute": obj({
        "computeType": string("the kind of compute, e.g. AmlCompute", enum=[
            "AKS", "Kubernetes", "AmlCompute", "ComputeInstance", "DataFactory", "VirtualMachine", "HDInsight",
            "Databricks", "DataLakeAnalytics", "SynapseSpark"]),
        "computeLocation": STRING, "description": STRING, "resourceId": STRING, "disableLocalAuth": BOOLEAN,
        "properties": OBJECT},
        ("computeType",), allOf=[when("computeType", "AmlCompute",
                                      obj({"properties": ref("AmlComputeProperties")}))]),
    "ComputeResource": obj({"location": STRING, "tags": STRING_MAP, "sku": OBJECT, "identity": OBJECT,
                            "properties": ref("Compute", "the compute's type and settings")}, ("properties",)),

    # ---- asset versions (codes, data, environments, models) and uploads
    "CodeVersionProperties": _asset({"codeUri": STRING}),
    "DataVersionBaseProperties": _asset({
        "dataType": string("uri_file, uri_folder or mltable", enum=["uri_file", "uri_folder", "mltable"]),
        "dataUri": string("where the data is, e.g. azureml://datastores/<name>/paths/<path>", minLength=1),
        "intellectualProperty": OBJECT, "referencedUris": {"type": "array", "items": STRING}},
        ("dataType", "dataUri")),
    "BuildContext": obj({"contextUri": string("the build context's URI"), "dockerfilePath": STRING},
                        ("contextUri",)),
    "EnvironmentVersionProperties": _asset({
        "image": STRING, "condaFile": STRING, "build": ref("BuildContext"),
        "osType": {"type": "string", "anyCaseEnum": ["Linux", "Windows"]}, "inferenceConfig": OBJECT,
        "autoRebuild": {"type": "string", "anyCaseEnum": ["Disabled", "OnBaseImageUpdate"]}}),
    "ModelVersionProperties": _asset({"modelUri": STRING, "modelType": STRING, "flavors": OBJECT,
                                      "jobName": STRING}),
    "CodeVersion": _resource("CodeVersionProperties"),
    "DataVersionBase": _resource("DataVersionBaseProperties"),
    "EnvironmentVersion": _resource("EnvironmentVersionProperties"),
    "ModelVersion": _resource("ModelVersionProperties"),
    "PendingUploadRequestDto": obj({"pendingUploadId": STRING,
                                    "pendingUploadType": {"type": "string",
                                                          "enum": ["None", "TemporaryBlobReference"]}}),

    # ---- jobs
    "JobInput": obj({
        "jobInputType": string("the input's type, e.g. uri_folder or literal", enum=[
            "literal", "uri_file", "uri_folder", "mltable", "custom_model", "mlflow_model", "triton_model"]),
        "description": STRING, "uri": string("where the input's data is"), "value": SCALAR,
        "mode": {"type": "string", "anyCaseEnum": ["ReadOnlyMount", "ReadWriteMount", "Download", "Direct",
                                                   "EvalMount", "EvalDownload"]}},
        ("jobInputType",), allOf=[
            when("jobInputType", "literal", obj({"value": {**SCALAR, "description": "the literal value"}},
                                                ("value",))),
            {"if": {"properties": {"jobInputType": {"const": "literal"}}},
             "else": obj({"uri": string("where the input's data is")}, ("uri",))}]),
    "JobOutput": obj({
        "jobOutputType": string("the output's type, e.g. uri_folder", enum=[
            "uri_file", "uri_folder", "mltable", "custom_model", "mlflow_model", "triton_model"]),
        "description": STRING, "uri": STRING, "assetName": STRING, "assetVersion": STRING, "pathOnCompute": STRING,
        "mode": {"type": "string", "anyCaseEnum": ["ReadWriteMount", "Upload", "Direct"]}},
        ("jobOutputType",)),
    "DistributionConfiguration": obj({
        "distributionType": string("Mpi, PyTorch or TensorFlow", enum=["Mpi", "PyTorch", "TensorFlow"]),
        "processCountPerInstance": {"type": "integer", "minimum": 1, "maximum": MAX_PROCESSES_PER_INSTANCE},
        "workerCount": {"type": "integer", "minimum": 0}, "parameterServerCount": {"type": "integer", "minimum": 0}},
        ("distributionType",)),
    "JobResourceConfiguration": obj({
        "instanceCount": {"type": "integer", "minimum": 1, "maximum": MAX_NODES},
        "maxInstanceCount": {"type": "integer", "minimum": 1, "maximum": MAX_NODES},
        "instanceType": STRING, "properties": OBJECT, "dockerArgs": STRING,
        "dockerArgsList": {"type": "array", "items": STRING}, "shmSize": STRING,
        "locations": {"type": "array", "items": STRING}}),
    "CommandJob": obj({
        "command": string("the command to run, e.g. python train.py", minLength=1),
        "environmentId": string("the environment's asset id"),
        "codeId": STRING, "computeId": STRING, "componentId": STRING, "displayName": STRING,
        "experimentName": STRING, "description": STRING, "tags": STRING_MAP, "properties": STRING_MAP,
        "isArchived": BOOLEAN, "services": OBJECT, "identity": OBJECT, "notificationSetting": OBJECT,
        "queueSettings": OBJECT, "limits": obj({"jobLimitsType": STRING, "timeout": STRING}),
        "inputs": {"type": "object", "additionalProperties": ref("JobInput")},
        "outputs": {"type": "object", "additionalProperties": ref("JobOutput")},
        "distribution": ref("DistributionConfiguration"),
        "environmentVariables": STRING_MAP,
        "resources": ref("JobResourceConfiguration")},
        ("command", "environmentId")),
    "JobBaseProperties": obj({"jobType": string("the kind of job, e.g. Command")},
                             ("jobType",), allOf=[when("jobType", "Command", ref("CommandJob"))]),
    "JobBase": obj({"properties": ref("JobBaseProperties", "the job's definition")}, ("properties",)),

    # ---- the workspace's data plane
    "GetRunDataRequest": obj({"runId": string("the run (job) name"), "selectRunMetadata": BOOLEAN,
                              "selectRunDefinition": BOOLEAN, "selectJobSpecification": BOOLEAN}, ("runId",)),
    "BatchGetResolvedURIs": obj({"values": {"type": "array", "items": STRING,
                                            "description": "the asset ids to resolve"}}, ("values",)),
}

#: The version model of each asset kind in the route (``.../{kind}/{name}/versions/{version}``).
ASSET_VERSION_MODELS = {"codes": "CodeVersion", "data": "DataVersionBase", "environments": "EnvironmentVersion",
                        "models": "ModelVersion"}


def _refusal(violation: Violation) -> Exception:
    return errors.invalid_request(violation.message)


#: ``check(body, "JobBase")``: the body without nulls, or Azure ML's 400 naming the property.
check = SchemaChecker(DEFINITIONS, _refusal).check
