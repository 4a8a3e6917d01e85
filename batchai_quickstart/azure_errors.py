"""Recognising what Azure answers now that Batch AI is retired, and saying it plainly."""
from __future__ import annotations

import re
from typing import Optional

from azure.core.exceptions import ClientAuthenticationError

# What Resource Manager returns for a resource provider that a subscription cannot use: never
# registered, no longer registrable, or no longer existing (Batch AI since 2019-03-31).
RETIRED_PROVIDER_CODES = {
    "MissingSubscriptionRegistration",
    "NoRegisteredProviderFound",
    "InvalidResourceNamespace",
    "InvalidResourceType",
    "SubscriptionNotRegistered",
    "ResourceProviderNotRegistered",
}

RETIRED_EXPLANATION = (
    "Azure refused the Batch AI request ({code}): Azure Batch AI was retired on 2019-03-31 and no longer "
    "accepts requests. Run the quickstart against the local emulator instead: python quickstart.py --target local"
)


SIGN_IN_EXPLANATION = (
    "could not sign in to Azure ({reason}): set client_id, secret and token_uri in the [azure] section of the "
    "config, or sign in with az login for DefaultAzureCredential"
)


# Azure AD's answers to a service principal's sign-in that name one setting to fix.
SIGN_IN_HINTS = {
    "7000215": "[azure] secret is not the service principal's secret (use the secret's value, not its ID)",
    "700016": "[azure] client_id is not an application in the tenant of token_uri",
    "90002": "the tenant in [azure] token_uri does not exist",
}
_AADSTS = re.compile(r"(AADSTS(\d+):[^.]*\.?)")


def explain_sign_in_error(error: BaseException) -> Optional[str]:
    """One line for a credential that could not get a token (a wrong secret, client or tenant), else None."""
    if not isinstance(error, ClientAuthenticationError) or getattr(error, "response", None) is not None:
        return None  # not raised by the credential itself, before any request reached Azure
    reason = str(error.message or error).splitlines()[0]
    aadsts = _AADSTS.search(reason)
    if aadsts and aadsts.group(2) in SIGN_IN_HINTS:
        return "could not sign in to Azure: {} ({})".format(SIGN_IN_HINTS[aadsts.group(2)], aadsts.group(1))
    if "Unable to get authority configuration" in reason:  # MSAL, for a tenant without one (AADSTS90002)
        return "could not sign in to Azure: {} (no authority configuration for it)".format(SIGN_IN_HINTS["90002"])
    return SIGN_IN_EXPLANATION.format(reason=reason)


def explain_azure_error(error: BaseException) -> Optional[str]:
    """One line explaining a failed sign-in or a retired/unregistered Microsoft.BatchAI provider, else None."""
    sign_in = explain_sign_in_error(error)
    if sign_in:
        return sign_in
    code = getattr(getattr(error, "error", None), "code", None) or getattr(error, "error_code", None)
    message = str(getattr(error, "message", "") or error)
    if code in RETIRED_PROVIDER_CODES and ("batchai" in message.lower() or code != "InvalidResourceType"):
        return RETIRED_EXPLANATION.format(code=code)
    return None


def describe_azure_error(error: BaseException) -> str:
    """The error as one line: the explanation above where there is one, else the SDK's first line."""
    return explain_azure_error(error) or str(error).splitlines()[0]
