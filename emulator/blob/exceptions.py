"""Every Blob service error the emulator returns: the Blob service's own here (codes and
messages as the service documents them), the protocol and authentication errors it shares with
the File service from ``core.storage_errors``."""
from __future__ import annotations

from ..core.storage_errors import (  # noqa: F401 (re-exported: the Blob service's catalogue)
    StorageError, account_not_served, authentication_failed, authorization_permission_mismatch, incomplete_body,
    internal_error, invalid_header_value, invalid_query_parameter_value, invalid_range, invalid_resource_name,
    invalid_uri, invalid_xml, md5_mismatch, missing_required_header, not_implemented, out_of_range_input,
    request_body_too_large, unsupported_http_verb)


class ContainerNotFound(StorageError, LookupError):
    def __init__(self, container: str) -> None:
        super().__init__(404, "ContainerNotFound", "The specified container does not exist.")
        self.container = container


class BlobNotFound(StorageError, LookupError):
    def __init__(self, blob: str) -> None:
        super().__init__(404, "BlobNotFound", "The specified blob does not exist.")
        self.blob = blob


def container_already_exists() -> StorageError:
    return StorageError(409, "ContainerAlreadyExists", "The specified container already exists.")


def blob_already_exists() -> StorageError:
    return StorageError(409, "BlobAlreadyExists", "The specified blob already exists.")


def condition_not_met() -> StorageError:
    return StorageError(412, "ConditionNotMet", "The condition specified using HTTP conditional header(s) is not met.")


def not_modified() -> StorageError:
    """304 for a read whose If-None-Match / If-Modified-Since says the client's copy is current."""
    return StorageError(304, "ConditionNotMet", "The condition specified using HTTP conditional header(s) is not "
                                                "met.")


def invalid_block_id() -> StorageError:
    return StorageError(400, "InvalidBlockId", "The specified block ID is invalid. The block ID must be Base64-encoded "
                                               "and, for one blob, all block IDs must have the same length.")


def invalid_block_list(detail: str) -> StorageError:
    return StorageError(400, "InvalidBlockList", "The specified block list is invalid.", {"Reason": detail})


def block_count_exceeds_limit() -> StorageError:
    return StorageError(409, "BlockCountExceedsLimit", "The committed block count cannot exceed the maximum limit of "
                                                       "50,000 blocks.")


def invalid_blob_type(blob_type: str) -> StorageError:
    return invalid_header_value("x-ms-blob-type", blob_type[:32],
                                "The emulator stores block blobs only (x-ms-blob-type: BlockBlob).")
