"""The azure target: what Azure answers for the retired Batch AI provider becomes one clear line.

The real SDK client, with a transport that returns Azure's recorded error bodies (no network).
"""
from __future__ import annotations

import json

import pytest
import requests
from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError
from azure.core.pipeline.transport import HttpTransport, RequestsTransportResponse
from azure.mgmt.batchai import BatchAI

from batchai_quickstart.azure_errors import explain_azure_error
from batchai_quickstart.steps import create_workspace

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"


class CannedTransport(HttpTransport):
    """Answers every request with one fixed status and JSON body."""

    def __init__(self, status, body):
        self.status, self.body, self.requests = status, body, []

    def send(self, request, **kwargs):
        self.requests.append(request)
        response = requests.Response()
        response.status_code = self.status
        response._content = json.dumps(self.body).encode()
        response.headers["Content-Type"] = "application/json"
        response.reason = "Error"
        return RequestsTransportResponse(request, response)

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


@pytest.mark.parametrize("status,code,message", [
    (409, "MissingSubscriptionRegistration",
     "The subscription is not registered to use namespace 'Microsoft.BatchAI'. See https://aka.ms/rps-not-found "
     "for how to register subscriptions."),
    (400, "NoRegisteredProviderFound",
     "No registered resource provider found for location 'eastus' and API version '2018-05-01' for type 'workspaces'."),
    (404, "InvalidResourceType",
     "The resource type 'workspaces' could not be found in the namespace 'Microsoft.BatchAI' for api version "
     "'2018-05-01'."),
])
def test_retired_provider_answers_are_explained(status, code, message):
    transport = CannedTransport(status, {"error": {"code": code, "message": message}})
    client = BatchAI(FakeCredential(), SUBSCRIPTION, transport=transport)
    with pytest.raises(HttpResponseError) as info:
        create_workspace(client, "rg", "ws", "eastus")
    assert transport.requests[0].url.startswith("https://management.azure.com/subscriptions/" + SUBSCRIPTION + "/resourceGroups/rg/"
                                                "providers/Microsoft.BatchAI/workspaces/ws?api-version=2018-05-01")
    explanation = explain_azure_error(info.value)
    assert explanation and "\n" not in explanation
    assert "retired on 2019-03-31" in explanation and "--target local" in explanation and code in explanation


def test_other_errors_are_left_alone():
    transport = CannedTransport(403, {"error": {"code": "AuthorizationFailed", "message": "no access"}})
    client = BatchAI(FakeCredential(), SUBSCRIPTION, transport=transport)
    with pytest.raises(HttpResponseError) as info:
        create_workspace(client, "rg", "ws", "eastus")
    assert explain_azure_error(info.value) is None


def test_a_failed_sign_in_is_explained_in_one_line():
    from azure.core.exceptions import ClientAuthenticationError

    error = ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token from the included "
                                      "credentials.\nAttempted credentials: ...")
    explanation = explain_azure_error(error)
    assert explanation and "\n" not in explanation
    assert explanation.startswith("could not sign in to Azure (DefaultAzureCredential failed")
    assert "[azure]" in explanation and "az login" in explanation


@pytest.mark.parametrize("message, setting", [
    ("Authentication failed: AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the "
     "request is the client secret value, not the client secret ID, for a secret added to app 'c'.", "[azure] secret"),
    ("Authentication failed: AADSTS700016: Application with identifier 'c' was not found in the directory 't'. This "
     "can happen if the application has not been installed.", "[azure] client_id"),
    ("Authentication failed: Unable to get authority configuration for https://login.microsoftonline.com/t. "
     "Authority would typically be in a format of ...", "[azure] token_uri"),
])
def test_a_refused_service_principal_names_the_setting_to_fix(message, setting):
    """What azure-identity raises for Azure AD's answers (as the emulator's Azure AD gives them, see
    tests/test_quickstart_azure_target_e2e.py): one line naming the [azure] key, with the AADSTS code."""
    from azure.core.exceptions import ClientAuthenticationError

    from batchai_quickstart.azureml_errors import describe_azureml_error

    error = ClientAuthenticationError(message)
    explanation = explain_azure_error(error)
    assert explanation.startswith("could not sign in to Azure: ") and setting in explanation
    assert "\n" not in explanation and describe_azureml_error(error) == explanation
    assert ("AADSTS" in message) == ("(AADSTS" in explanation)
