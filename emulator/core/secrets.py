"""The emulator's identity: storage account, account key, bearer token and subscription id; and the
service principal its Azure AD token service signs in.

Made at random the first time a data directory is used and kept in its database, so a restart
keeps them (clients holding the key or token keep working); callers may set them instead, as
Azurite's account settings do.
"""
from __future__ import annotations

import base64
import secrets
import string
import uuid
from dataclasses import dataclass
from typing import Optional

from .store import Store

DEFAULT_ACCOUNT_NAME = "batchaiemulator"

_SCHEMA = "CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);"


@dataclass(frozen=True)
class Identity:
    account_name: str
    account_key: str
    token: str
    subscription_id: str

    def __repr__(self) -> str:  # never print the key or the token
        return "Identity(account_name={!r}, subscription_id={!r})".format(self.account_name, self.subscription_id)


def load_identity(store: Store, account_name: Optional[str] = None, account_key: Optional[str] = None,
                  token: Optional[str] = None, subscription_id: Optional[str] = None) -> Identity:
    """Read the identity from the store, filling what is missing at random; explicit values win."""
    store.ensure_schema(_SCHEMA)
    defaults = {
        "account_name": DEFAULT_ACCOUNT_NAME,
        "account_key": base64.b64encode(secrets.token_bytes(64)).decode(),
        "token": "emulator-" + secrets.token_urlsafe(32),
        "subscription_id": str(uuid.uuid4()),
    }
    explicit = {"account_name": account_name, "account_key": account_key, "token": token,
                "subscription_id": subscription_id}
    values = _load_settings(store, defaults, explicit)
    _check_account(values["account_name"], values["account_key"])
    return Identity(**values)


@dataclass(frozen=True)
class ServicePrincipal:
    """The one service principal the Azure AD token service signs in: its tenant, application
    (client) id, client secret and object id (the ``oid`` of its tokens)."""

    tenant_id: str
    client_id: str
    client_secret: str
    object_id: str

    def __repr__(self) -> str:  # never print the secret
        return "ServicePrincipal(tenant_id={!r}, client_id={!r})".format(self.tenant_id, self.client_id)


def new_client_secret() -> str:
    """A secret in the shape Azure AD issues (``abc8Q~`` and 34 more): it never starts with ``-``,
    which command lines such as ``az login -p`` would read as an option."""
    letters = string.ascii_letters + string.digits
    return "".join(secrets.choice(letters) for _ in range(3)) + "8Q~" + secrets.token_urlsafe(26)[:34]


def load_service_principal(store: Store, tenant_id: Optional[str] = None, client_id: Optional[str] = None,
                           client_secret: Optional[str] = None) -> ServicePrincipal:
    """Read the service principal from the store, made at random the first time; explicit values win."""
    store.ensure_schema(_SCHEMA)
    defaults = {"tenant_id": str(uuid.uuid4()), "client_id": str(uuid.uuid4()),
                "client_secret": new_client_secret(), "object_id": str(uuid.uuid4())}
    explicit = {"tenant_id": tenant_id, "client_id": client_id, "client_secret": client_secret, "object_id": None}
    for key in ("tenant_id", "client_id"):
        if explicit[key] is not None:
            try:
                explicit[key] = str(uuid.UUID(explicit[key]))
            except ValueError:
                raise ValueError("the {} {!r} must be a GUID".format(key, explicit[key])) from None
    return ServicePrincipal(**_load_settings(store, defaults, explicit, prefix="aad_"))


def _load_settings(store: Store, defaults: dict, explicit: dict, prefix: str = "") -> dict:
    values = {}
    with store.transaction():
        for key, default in defaults.items():
            row = store.query_one("SELECT value FROM settings WHERE key = ?", (prefix + key,))
            value = explicit[key] or (row["value"] if row else default)
            store.execute("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", (prefix + key, value))
            values[key] = value
    return values


def _check_account(name: str, key: str) -> None:
    if not (3 <= len(name) <= 24 and name.isalnum() and name.islower()):
        raise ValueError("storage account name {!r} must be 3-24 lower-case letters and digits".format(name))
    try:
        base64.b64decode(key, validate=True)
    except ValueError:
        raise ValueError("the storage account key must be base64") from None
