"""Resource groups in SQLite (table ``rm_resource_groups``) and their deletion.

Deleting a group is a long-running operation: the group shows ``Deleting`` while a background
thread has Batch AI stop and remove everything in it; then the row goes and the operation
succeeds. The operation id is kept with the group, so a restart resumes an interrupted delete.
"""
from __future__ import annotations

import json
import logging
import re
from typing import Optional

from ..core.arm import BackgroundWork, utc_now
from ..core.context import Context
from . import exceptions as errors
from . import providers

log = logging.getLogger("emulator.resourcemanager")

NAME_PATTERN = re.compile(r"[-\w._()]{1,90}")  # used with fullmatch

SCHEMA = """
CREATE TABLE IF NOT EXISTS rm_resource_groups (
    name TEXT PRIMARY KEY COLLATE NOCASE, location TEXT NOT NULL, tags TEXT NOT NULL,
    provisioning_state TEXT NOT NULL, operation_id TEXT, created TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rm_providers (namespace TEXT PRIMARY KEY COLLATE NOCASE, state TEXT NOT NULL);
"""
SUBSCRIPTION_NAME = "Batch AI emulator"
TENANT_NAME = "Batch AI emulator directory"


def check_group_name(name: str) -> str:
    if not NAME_PATTERN.fullmatch(name) or name.endswith("."):
        raise errors.invalid_resource_group_name(name)
    return name


def _check_tags(tags) -> dict:
    if tags is None:
        return {}
    if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
        raise errors.invalid_tags()
    return tags


class ResourceManagerBackend:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.store = ctx.store
        self.subscription_id = ctx.identity.subscription_id
        self.store.ensure_schema(SCHEMA)
        self.work = BackgroundWork(ctx.operations)

    def check_subscription(self, subscription: str) -> None:
        if subscription.lower() != self.subscription_id.lower():
            raise errors.subscription_not_found(subscription)

    # ---- the subscription, its tenant and its resource providers ------------------------------

    @property
    def tenant_id(self) -> str:
        """The tenant of the emulator's Azure AD (its service principal's)."""
        return self.ctx.services["aad"].backend.tenant_id

    def subscription_json(self) -> dict:
        return {"id": "/subscriptions/" + self.subscription_id, "authorizationSource": "RoleBased",
                "managedByTenants": [], "subscriptionId": self.subscription_id, "tenantId": self.tenant_id,
                "displayName": SUBSCRIPTION_NAME, "state": "Enabled",
                "subscriptionPolicies": {"locationPlacementId": "Public_2014-09-01",
                                         "quotaId": "PayAsYouGo_2014-09-01", "spendingLimit": "Off"}}

    def tenant_json(self) -> dict:
        return {"id": "/tenants/" + self.tenant_id, "tenantId": self.tenant_id, "tenantCategory": "Home",
                "displayName": TENANT_NAME, "domains": [], "tenantType": "AAD"}

    def provider(self, namespace: str) -> dict:
        name = providers.canonical_namespace(namespace)
        if name is None:
            raise errors.invalid_resource_namespace(namespace)
        row = self.store.query_one("SELECT state FROM rm_providers WHERE namespace = ?", (name,))
        state = row["state"] if row else ("Registered" if providers.CATALOGUE[name][1] else "NotRegistered")
        return providers.provider_json(self.subscription_id, name, state)

    def list_providers(self) -> list:
        return [self.provider(name) for name in providers.CATALOGUE]

    def set_registration(self, namespace: str, registered: bool) -> dict:
        """Register (or unregister) a provider: done at once, so clients see the final state."""
        name = providers.canonical_namespace(namespace)
        if name is None:
            raise errors.invalid_resource_namespace(namespace)
        state = "Registered" if registered else "Unregistered"
        self.store.execute("INSERT OR REPLACE INTO rm_providers (namespace, state) VALUES (?, ?)", (name, state))
        log.info("resource provider %s %s", name, state.lower())
        return self.provider(name)

    # ---- reads -------------------------------------------------------------------------------

    def find_group(self, name: str) -> Optional[dict]:
        """The group as stored (``name``, ``location``, ``provisioning_state``...), or None."""
        row = self.store.query_one("SELECT * FROM rm_resource_groups WHERE name = ?", (name,))
        return dict(row) if row else None

    def group_json(self, group: dict) -> dict:
        body = {"id": "/subscriptions/{}/resourceGroups/{}".format(self.subscription_id, group["name"]),
                "name": group["name"], "type": "Microsoft.Resources/resourceGroups", "location": group["location"],
                "properties": {"provisioningState": group["provisioning_state"]}}
        tags = json.loads(group["tags"])
        if tags:
            body["tags"] = tags
        return body

    def get_group(self, name: str) -> dict:
        group = self.find_group(name)
        if group is None:
            raise errors.resource_group_not_found(name)
        return self.group_json(group)

    def list_groups(self) -> list:
        rows = self.store.query("SELECT * FROM rm_resource_groups ORDER BY name")
        return [self.group_json(dict(row)) for row in rows]

    # ---- writes ------------------------------------------------------------------------------

    def create_or_update_group(self, name: str, body: dict) -> tuple:
        """PUT: (group JSON, True if it was created). An existing group keeps its location."""
        check_group_name(name)
        location = body.get("location")
        if not isinstance(location, str) or not location.strip():
            raise errors.location_required()
        location = location.replace(" ", "").lower()
        tags = json.dumps(_check_tags(body.get("tags")))
        existing = self.find_group(name)
        if existing is not None:
            if existing["provisioning_state"] == "Deleting":
                raise errors.resource_group_being_deleted(existing["name"])
            if existing["location"] != location:
                raise errors.invalid_location(existing["name"], location, existing["location"])
            self.store.execute("UPDATE rm_resource_groups SET tags = ? WHERE name = ?", (tags, name))
            return self.get_group(name), False
        self.store.execute("INSERT INTO rm_resource_groups (name, location, tags, provisioning_state, created) "
                           "VALUES (?, ?, ?, 'Succeeded', ?)", (name, location, tags, utc_now()))
        log.info("resource group %s created in %s", name, location)
        return self.get_group(name), True

    def update_group(self, name: str, body: dict) -> dict:
        group = self.find_group(name)
        if group is None:
            raise errors.resource_group_not_found(name)
        if "tags" in body:
            self.store.execute("UPDATE rm_resource_groups SET tags = ? WHERE name = ?",
                               (json.dumps(_check_tags(body["tags"])), name))
        return self.get_group(name)

    def delete_group(self, name: str) -> str:
        """Begin deleting a group and everything in it; returns the operation id to poll."""
        group = self.find_group(name)
        if group is None:
            raise errors.resource_group_not_found(name)
        if group["provisioning_state"] == "Deleting":
            return group["operation_id"]
        op_id = self.ctx.operations.begin(self.group_json(group)["id"])
        self.store.execute("UPDATE rm_resource_groups SET provisioning_state = 'Deleting', operation_id = ? "
                           "WHERE name = ?", (op_id, name))
        self._delete_in_background(group["name"], op_id)
        return op_id

    def resume_deletes(self) -> None:
        """After a restart: finish the group deletes that were under way."""
        for row in self.store.query("SELECT name, operation_id FROM rm_resource_groups "
                                    "WHERE provisioning_state = 'Deleting'"):
            self._delete_in_background(row["name"], row["operation_id"])

    def _delete_in_background(self, name: str, op_id: str) -> None:
        def delete() -> None:
            for service in ("batchai", "azureml"):  # the services whose resources live in groups
                if service in self.ctx.services:
                    self.ctx.services[service].backend.delete_resource_group(name)
            self.store.execute("DELETE FROM rm_resource_groups WHERE name = ?", (name,))
            log.info("resource group %s deleted", name)

        self.work.run(op_id, "delete resource group {}".format(name), delete)

    def operation(self, op_id: str) -> dict:
        op = self.ctx.operations.get(op_id)
        if op is None:
            raise errors.operation_not_found(op_id)
        return op

    def close(self, timeout: float) -> None:
        self.work.close(timeout)


