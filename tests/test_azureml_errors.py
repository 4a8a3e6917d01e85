"""The azure target of quickstart_azureml.py: Azure's refusals become one line that says what to do.

The real MLClient against AzureCloud, with a transport that answers with error bodies Azure returned
(recorded in public reports, cited per case); no network.
"""
from __future__ import annotations

import io
import json

import pytest
import requests
import urllib3
from azure.ai.ml import MLClient
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.core.pipeline.transport import HttpTransport
from azure.core.rest._requests_basic import RestRequestsTransportResponse

from batchai_quickstart import azureml_steps as steps
from batchai_quickstart.azureml_errors import describe_azureml_error, explain_azureml_error

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
WORKSPACE_ID = ("/subscriptions/{}/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws"
                .format(SUBSCRIPTION))

# Azure/MachineLearningNotebooks#1169 and microsoft/az-deep-batch-score#4 (AmlCompute provisioning errors).
UNKNOWN_SIZE = (400, {"error": {
    "code": "InvalidPropertyValue",
    "message": "The specified value Standard_B2s for property Cluster.Properties.VMSize is not a supported VM size. "
               "See additional details for supported VM sizes.",
    "details": [{"code": "SupportedVMSizes", "message": "STANDARD_D1,STANDARD_D2,STANDARD_D3,STANDARD_D4"}]}})
# Resource Manager's answer for an unregistered namespace (same shape as for Microsoft.BatchAI).
NOT_REGISTERED = (409, {"error": {
    "code": "MissingSubscriptionRegistration",
    "message": "The subscription is not registered to use namespace 'Microsoft.MachineLearningServices'. "
               "See https://aka.ms/rps-not-found for how to register subscriptions.",
    "details": [{"code": "MissingSubscriptionRegistration", "target": "Microsoft.MachineLearningServices",
                 "message": "The subscription is not registered to use namespace "
                            "'Microsoft.MachineLearningServices'. See https://aka.ms/rps-not-found for how to "
                            "register subscriptions."}]}})
# Resource Manager deployments refused for regional cores (theonemule/fahclient-azure-vm#3).
QUOTA = (400, {"error": {
    "code": "InvalidTemplateDeployment",
    "message": "The template deployment 'Microsoft.Template' is not valid according to the validation procedure. "
               "The tracking id is '9be752d1-86cd-4825-9231-8bdc00d66935'. See inner errors for details.",
    "details": [{"code": "QuotaExceeded",
                 "message": "Operation could not be completed as it results in exceeding approved Total Regional "
                            "Cores quota. Additional details - Deployment Model: Resource Manager, Location: eastus, "
                            "Current Limit: 4, Current Usage: 0, Additional Required: 6, (Minimum) New Limit "
                            "Required: 6."}]}})


class RoutingTransport(HttpTransport):
    """GETs of the workspace answer with a workspace; everything else with one recorded error."""

    def __init__(self, status, body):
        self.status, self.body, self.requests = status, body, []

    def send(self, request, **kwargs):
        self.requests.append(request)
        response = requests.Response()
        if request.method == "GET" and request.url.split("?")[0].endswith("/workspaces/ws"):
            response.status_code = 200
            response._content = json.dumps({"id": WORKSPACE_ID, "name": "ws", "location": "eastus",
                                            "properties": {}}).encode()
        else:
            response.status_code, response._content = self.status, json.dumps(self.body).encode()
        response.headers["Content-Type"] = "application/json"
        response.reason = "Error"
        response.raw = urllib3.HTTPResponse(body=io.BytesIO(response._content), preload_content=False,
                                            status=response.status_code)
        return RestRequestsTransportResponse(request=request, internal_response=response)

    def open(self):
        pass

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *args):
        pass


class FakeCredential:
    def get_token(self, *scopes, **kwargs):
        return AccessToken("token", 2 ** 31)


def ml_client(status, body):
    transport = RoutingTransport(status, body)
    return MLClient(FakeCredential(), SUBSCRIPTION, "rg", "ws", transport=transport, enable_telemetry=False), transport


@pytest.mark.parametrize("recorded,expected", [
    (UNKNOWN_SIZE, ["(InvalidPropertyValue)", "[azureml] vm_size is not offered in this region",
                    "az ml compute list-sizes"]),
    (NOT_REGISTERED, ["(MissingSubscriptionRegistration)",
                      "az provider register --namespace Microsoft.MachineLearningServices"]),
    (QUOTA, ["(QuotaExceeded)", "not enough quota", "[azureml] vm_size"]),
])
def test_compute_refusals_are_explained(recorded, expected):
    client, transport = ml_client(*recorded)
    with pytest.raises(HttpResponseError) as info:
        steps.create_compute(client, "gpu-cluster", "Standard_B2s", 2, 120)
    put = [r for r in transport.requests if r.method == "PUT"]
    assert put and put[0].url.startswith("https://management.azure.com/subscriptions/{}/resourceGroups/rg/providers/"
                                         "Microsoft.MachineLearningServices/workspaces/ws/computes/gpu-cluster?"
                                         .format(SUBSCRIPTION))
    line = describe_azureml_error(info.value)
    assert "\n" not in line
    for text in expected:
        assert text in line


def test_a_failed_sign_in_is_one_line():
    line = describe_azureml_error(ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token.\n"
                                                            "Attempted credentials: ..."))
    assert line.startswith("could not sign in to Azure (DefaultAzureCredential failed to retrieve a token.)")


def test_other_errors_keep_their_first_line():
    client, _ = ml_client(403, {"error": {"code": "AuthorizationFailed", "message": "no access"}})
    with pytest.raises(HttpResponseError) as info:
        steps.create_compute(client, "gpu-cluster", "Standard_NC4as_T4_v3", 2, 120)
    assert explain_azureml_error(info.value) is None
    assert "AuthorizationFailed" in describe_azureml_error(info.value)
    assert "\n" not in describe_azureml_error(info.value)
