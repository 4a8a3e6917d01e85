"""Azure Files authentication and authorization: the File service's SAS rules on top of the
SharedKey and SAS machinery every storage endpoint shares (``core.storage_auth``).

* SharedKey as azure-storage-file-share 12.x and legacy azure-storage-file 2.x sign it.
* Service SAS as ``generate_file_sas`` (``sr=f``) and ``generate_share_sas`` (``sr=s``) sign it;
  ``generate_sas`` here produces the same tokens. Account SAS, stored access policies and user
  delegation SAS are refused clearly.

Nothing here logs or returns a key or a signature.
"""
from __future__ import annotations

import datetime
from typing import Optional
from urllib.parse import quote

from ..core.storage_auth import (  # noqa: F401 (re-exported for the File service's modules)
    DEFAULT_VERSION, FIRST_VERSION, Grant, SasRules, StorageAuthenticator, check_version, decode_key, format_sas_time,
    iter_x_ms_headers, parse_query, sign, valid_version)


def _file_sas_fields(version: str) -> tuple:
    if version and version < "2015-04-05":  # before sip/spr existed
        return ("si", "sv", "rscc", "rscd", "rsce", "rscl", "rsct")
    return ("si", "sip", "spr", "sv", "rscc", "rscd", "rsce", "rscl", "rsct")


FILE_SAS = SasRules(service="file", item="f", container="s", item_level="file", permissions="rcwdl",
                    fields=_file_sas_fields, hint="generate_file_sas or generate_share_sas",
                    words={"item": "file", "container": "share"})


def generate_sas(account: str, key: bytes, share: str, path: Optional[str], permission: str,
                 expiry: datetime.datetime, start: Optional[datetime.datetime] = None,
                 protocol: Optional[str] = None, ip: Optional[str] = None, version: str = DEFAULT_VERSION) -> str:
    """A service SAS token (no leading '?'), signed as azure-storage-file-share's
    ``generate_file_sas`` (``path`` given, ``sr=f``) or ``generate_share_sas`` (``sr=s``) sign it."""
    values = {}
    if start is not None:
        values["st"] = format_sas_time(start)
    values["se"] = format_sas_time(expiry)
    values["sp"] = permission
    if ip:
        values["sip"] = ip
    if protocol:
        values["spr"] = protocol
    values["sv"] = version
    values["sr"] = "f" if path else "s"
    path = path.strip("/") if path else None
    values["sig"] = sign(key, FILE_SAS.string_to_sign(values, FILE_SAS.canonical(account, share, path)))
    return "&".join("{}={}".format(name, quote(value)) for name, value in values.items())


class Authenticator(StorageAuthenticator):
    """Checks every File request against the one storage account the emulator serves."""

    # Azure Files OAuth over REST: from 2022-11-02, with the privileged-access intent header.
    BEARER_MIN_VERSION = "2022-11-02"
    BEARER_INTENT = ("x-ms-file-request-intent", "backup")

    def __init__(self, account_name: str, account_key: str) -> None:
        super().__init__(account_name, account_key, FILE_SAS, "File")

    def __repr__(self) -> str:
        return "Authenticator(account_name={!r})".format(self.account_name)

    def generate_sas(self, share: str, path: Optional[str], permission: str, expiry: datetime.datetime,
                     **kwargs) -> str:
        return generate_sas(self.account_name, self._key, share, path, permission, expiry, **kwargs)
