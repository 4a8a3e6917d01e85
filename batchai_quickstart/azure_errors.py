"""Recognising what Azure answers now that Batch AI is retired, and saying it plainly."""
from __future__ import annotations

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


def explain_azure_error(error: BaseException) -> Optional[str]:
    """One line explaining a failed sign-in or a retired/unregistered Microsoft.BatchAI provider, else None."""
    if isinstance(error, ClientAuthenticationError) and getattr(error, "response", None) is None:
        # Raised by the credential itself, before any request reached Azure.
        return SIGN_IN_EXPLANATION.format(reason=str(error.message or error).splitlines()[0])
    code = getattr(getattr(error, "error", None), "code", None) or getattr(error, "error_code", None)
    message = str(getattr(error, "message", "") or error)
    if code in RETIRED_PROVIDER_CODES and ("batchai" in message.lower() or code != "InvalidResourceType"):
        return RETIRED_EXPLANATION.format(code=code)
    return None


def describe_azure_error(error: BaseException) -> str:
    """The error as one line: the explanation above where there is one, else the SDK's first line."""
    return explain_azure_error(error) or str(error).splitlines()[0]
