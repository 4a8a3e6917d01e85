"""Errors of the Azure Storage services (File, Blob), built in one place (Azurite's StorageErrorFactory).

Handlers, backends and the authenticator raise ``StorageError`` (or a subclass); the service's
WSGI application turns it into the service's XML error body plus the ``x-ms-error-code`` header,
which the SDKs read when a HEAD response has no body. Errors that only one service has live in
that service's ``exceptions.py``. Messages never carry secrets (keys, signatures).
"""
from __future__ import annotations

import datetime
from typing import Optional
from xml.sax.saxutils import escape


class StorageError(Exception):
    """An Azure Storage error: HTTP ``status``, error ``code``, ``message`` and optional details.

    ``details`` become extra XML elements (``AuthenticationErrorDetail``, ``HeaderName``...);
    ``headers`` are extra response headers.
    """

    def __init__(self, status: int, code: str, message: str, details: Optional[dict] = None,
                 headers: Optional[dict] = None) -> None:
        super().__init__("{} {}: {}".format(status, code, message))
        self.status, self.code, self.message = status, code, message
        self.details = details or {}
        self.headers = headers or {}


# --- protocol errors ---------------------------------------------------------------------

def invalid_uri(reason: str) -> StorageError:
    return StorageError(400, "InvalidUri", "The requested URI does not represent any resource on the server.",
                        {"Reason": reason})


def invalid_resource_name(reason: str) -> StorageError:
    return StorageError(400, "InvalidResourceName", "The specified resource name contains invalid characters.",
                        {"Reason": reason})


def invalid_range(size: Optional[int] = None) -> StorageError:
    headers = {"Content-Range": "bytes */{}".format(size)} if size is not None else None
    return StorageError(416, "InvalidRange", "The range specified is invalid for the current size of the resource.",
                        headers=headers)


def invalid_header_value(name: str, value: Optional[str], reason: str = "") -> StorageError:
    details = {"HeaderName": name, "HeaderValue": value or ""}
    if reason:
        details["Reason"] = reason
    return StorageError(400, "InvalidHeaderValue",
                        "The value for one of the HTTP headers is not in the correct format.", details)


def missing_required_header(name: str) -> StorageError:
    return StorageError(400, "MissingRequiredHeader", "An HTTP header that's mandatory for this request is not specified.",
                        {"HeaderName": name})


def invalid_query_parameter_value(name: str, value: Optional[str], reason: str = "") -> StorageError:
    details = {"QueryParameterName": name, "QueryParameterValue": value or ""}
    if reason:
        details["Reason"] = reason
    return StorageError(400, "InvalidQueryParameterValue",
                        "Value for one of the query parameters specified in the request URI is invalid.", details)


def unsupported_http_verb(method: str) -> StorageError:
    return StorageError(405, "UnsupportedHttpVerb", "The resource doesn't support specified Http Verb.",
                        {"Verb": method})


def not_implemented(what: str) -> StorageError:
    return StorageError(501, "NotImplemented", "The emulator does not implement this operation: {}.".format(what))


def out_of_range_input(reason: str) -> StorageError:
    return StorageError(400, "OutOfRangeInput", "One of the request inputs is out of range.", {"Reason": reason})


def md5_mismatch() -> StorageError:
    return StorageError(400, "Md5Mismatch", "The MD5 value specified in the request did not match with the MD5 "
                                            "value calculated by the server.")


def request_body_too_large(limit: int) -> StorageError:
    return StorageError(413, "RequestBodyTooLarge", "The request body is too large and exceeds the maximum "
                                                    "permissible limit.", {"MaxLimit": str(limit)})


def metadata_too_large(limit: int) -> StorageError:
    return StorageError(400, "MetadataTooLarge", "The size of the specified metadata exceeds the maximum size "
                                                 "permitted.", {"Reason": "Metadata names and values together are "
                                                                          "at most {} bytes.".format(limit)})


def incomplete_body() -> StorageError:
    return StorageError(400, "InvalidInput", "The request body is shorter than its Content-Length or range.")


def invalid_xml() -> StorageError:
    return StorageError(400, "InvalidXmlDocument", "XML specified is not syntactically valid.")


# --- authentication and authorization -----------------------------------------------------

def no_authentication_information() -> StorageError:
    return StorageError(401, "NoAuthenticationInformation",
                        "Server failed to authenticate the request. Please refer to the information in the "
                        "www-authenticate header.",
                        {"AuthenticationErrorDetail": "The request carries neither an Authorization header "
                                                      "(SharedKey) nor a shared access signature."})


def authentication_failed(detail: str) -> StorageError:
    """403: the signature, key, date or SAS is wrong. ``detail`` must never contain a secret."""
    return StorageError(403, "AuthenticationFailed",
                        "Server failed to authenticate the request. Make sure the value of Authorization header "
                        "is formed correctly including the signature.", {"AuthenticationErrorDetail": detail})


def invalid_authentication_info(detail: str) -> StorageError:
    """401: an OAuth token that is expired, forged or for another audience."""
    return StorageError(401, "InvalidAuthenticationInfo",
                        "Server failed to authenticate the request. Please refer to the information in the "
                        "www-authenticate header.", {"AuthenticationErrorDetail": detail})


def authorization_permission_mismatch(detail: str = "") -> StorageError:
    return StorageError(403, "AuthorizationPermissionMismatch",
                        "This request is not authorized to perform this operation using this permission.",
                        {"AuthenticationErrorDetail": detail} if detail else None)


def authorization_resource_type_mismatch(detail: str = "") -> StorageError:
    return StorageError(403, "AuthorizationResourceTypeMismatch",
                        "This request is not authorized to perform this operation using this resource type.",
                        {"AuthenticationErrorDetail": detail} if detail else None)


def authorization_protocol_mismatch() -> StorageError:
    return StorageError(403, "AuthorizationProtocolMismatch",
                        "This request is not authorized to perform this operation using this protocol.")


def authorization_source_ip_mismatch() -> StorageError:
    return StorageError(403, "AuthorizationSourceIPMismatch",
                        "This request is not authorized to perform this operation using this source IP.")


def account_not_served(account: str, served: str) -> StorageError:
    return StorageError(403, "AuthenticationFailed",
                        "Server failed to authenticate the request.",
                        {"AuthenticationErrorDetail": "The storage account '{}' is not served by this emulator; "
                                                      "its account is '{}'.".format(account, served)})


def internal_error() -> StorageError:
    return StorageError(500, "InternalError", "The server encountered an internal error. Please retry the request.")


# --- rendering ------------------------------------------------------------------------------

def render(error: StorageError, request_id: str, with_body: bool = True) -> tuple[dict, bytes]:
    """Headers and body for ``error``, as the service writes them (no body for HEAD)."""
    headers = {"x-ms-error-code": error.code}
    headers.update(error.headers)
    if not with_body:
        return headers, b""
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")
    message = "{}\nRequestId:{}\nTime:{}".format(error.message, request_id, now)
    parts = ['<?xml version="1.0" encoding="utf-8"?><Error><Code>', escape(error.code), "</Code><Message>",
             escape(message), "</Message>"]
    for name, value in error.details.items():
        parts.append("<{0}>{1}</{0}>".format(name, escape(str(value))))
    parts.append("</Error>")
    headers["Content-Type"] = "application/xml"
    return headers, "".join(parts).encode("utf-8")
