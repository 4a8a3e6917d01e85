"""Azure's refusals on the Azure ML path (provider not registered, quota, VM size), as one line that says
what to do. Anything else is the SDK's own first line."""
from __future__ import annotations

import re
from typing import Iterator, Optional, Tuple

from .azure_errors import explain_sign_in_error

PROVIDER_CODES = {"MissingSubscriptionRegistration", "NoRegisteredProviderFound", "SubscriptionNotRegistered",
                  "ResourceProviderNotRegistered"}
QUOTA_CODES = {"QuotaExceeded", "OperationNotAllowed", "ResizeQuotaExceeded"}
SIZE_CODES = {"InvalidPropertyValue", "VMSizeNotSupported", "SkuNotAvailable", "BadRequest"}

PROVIDER_EXPLANATION = (
    "Azure refused the request ({code}): the subscription is not registered for {namespace}. Register it once "
    "with: az provider register --namespace {namespace}, then run the quickstart again")
QUOTA_EXPLANATION = (
    "Azure refused the request ({code}): not enough quota for this VM size in this region. Request more "
    "(Azure portal > Azure Machine Learning > your workspace > Quotas), or set a smaller [azureml] vm_size "
    "or another [resources] location")
SIZE_EXPLANATION = (
    "Azure refused the VM size ({code}): [azureml] vm_size is not offered in this region. Pick one that is "
    "(az ml compute list-sizes --location <your [resources] location>), or set another [resources] location")


def _codes_and_messages(error: BaseException) -> Iterator[Tuple[str, str]]:
    """(code, message) of the error and of its nested details, outermost first."""
    odata = getattr(error, "error", None)
    stack = [odata] if odata is not None else []
    while stack:
        item = stack.pop(0)
        yield str(getattr(item, "code", "") or ""), str(getattr(item, "message", "") or "")
        stack.extend(getattr(item, "details", None) or [])
    yield str(getattr(error, "error_code", "") or ""), str(getattr(error, "message", "") or error)


def explain_azureml_error(error: BaseException) -> Optional[str]:
    sign_in = explain_sign_in_error(error)
    if sign_in:
        return sign_in
    for code, message in _codes_and_messages(error):
        lowered = message.lower()
        if code in PROVIDER_CODES:
            match = re.search(r"namespace '([^']+)'", message)
            return PROVIDER_EXPLANATION.format(code=code, namespace=match.group(1) if match
                                               else "Microsoft.MachineLearningServices")
        if (code in QUOTA_CODES or not code) and "quota" in lowered:
            return QUOTA_EXPLANATION.format(code=code or "quota")
        if code in SIZE_CODES and ("vmsize" in lowered or "vm size" in lowered):
            return SIZE_EXPLANATION.format(code=code)
    return None


def describe_azureml_error(error: BaseException) -> str:
    """The error as one line: the explanation above where there is one, else the SDK's first line."""
    text = explain_azureml_error(error)
    if text:
        return text
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__
