"""Every Azure Files error the emulator returns: the File service's own here, the protocol and
authentication errors it shares with the Blob service from ``core.storage_errors``.

Handlers and the backend raise ``StorageError`` (or a subclass); the application turns it into
the service's XML error body plus the ``x-ms-error-code`` header, which the SDK reads when a
HEAD response has no body. Messages never carry secrets (keys, signatures).
"""
from __future__ import annotations

from ..core.storage_errors import (  # noqa: F401 (re-exported: the File service's catalogue)
    StorageError, invalid_uri, invalid_resource_name, invalid_range, invalid_header_value,
    missing_required_header, invalid_query_parameter_value, unsupported_http_verb, not_implemented,
    out_of_range_input, md5_mismatch, request_body_too_large, incomplete_body, invalid_xml,
    no_authentication_information, authentication_failed, authorization_permission_mismatch,
    authorization_resource_type_mismatch, authorization_protocol_mismatch, authorization_source_ip_mismatch,
    account_not_served, internal_error, render)


class ShareNotFound(StorageError, LookupError):
    """The share does not exist (404 ``ShareNotFound``); a LookupError for Python callers."""

    def __init__(self, share: str) -> None:
        super().__init__(404, "ShareNotFound", "The specified share does not exist.", {"ShareName": share})
        self.share = share


# --- the catalogue -------------------------------------------------------------------------

def share_already_exists() -> StorageError:
    return StorageError(409, "ShareAlreadyExists", "The specified share already exists.")


def resource_not_found() -> StorageError:
    return StorageError(404, "ResourceNotFound", "The specified resource does not exist.")


def parent_not_found() -> StorageError:
    return StorageError(404, "ParentNotFound", "The specified parent path does not exist.")


def resource_already_exists() -> StorageError:
    return StorageError(409, "ResourceAlreadyExists", "The specified resource already exists.")


def resource_type_mismatch() -> StorageError:
    return StorageError(409, "ResourceTypeMismatch",
                        "The specified resource type does not match the type of the existing resource.")


def directory_not_empty() -> StorageError:
    return StorageError(409, "DirectoryNotEmpty", "The specified directory is not empty.")


def share_size_limit_reached() -> StorageError:
    return StorageError(403, "ShareSizeLimitReached", "The specified share is full.")
