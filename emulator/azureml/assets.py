"""Asset containers (``codes``, ``data``, ``environments``, ``models`` by name) and their version lists, as
the workspace API answers them (api-version 2025-12-01 as azure-ai-ml 1.35.2 sends it; shapes from the
2024-04-01 specification's examples):

- a container exists once it has a version (or was PUT); it shows ``latestVersion`` (the newest active
  version by creation time, which is what ``@latest`` and ``label="latest"`` resolve to), ``nextVersion``
  (one more than the highest whole-number version), and ``isArchived``; a data container its ``dataType``;
- lists honour ``listViewType`` (ActiveOnly, the default; ArchivedOnly; All), ``$orderBy``
  (``createdtime desc``/``asc``), ``$top`` and page by ``$skip`` with a ``nextLink``;
- the curated environment catalogue (curated.py) is readable from every workspace, under
  ``environments``, beside the workspace's own environments.
"""
from __future__ import annotations

import json
from typing import Optional
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..core.arm import utc_now
from . import curated
from . import exceptions as errors

PAGE_SIZE = 100  # items per page of a list (tests lower it to see paging)
VIEWS = {"activeonly": "ActiveOnly", "archivedonly": "ArchivedOnly", "all": "All"}
ORDERS = {"createdtime desc": True, "createdtime asc": False}
CONTAINER_KEYS = ("description", "tags", "properties", "isArchived")

SCHEMA = """
CREATE TABLE IF NOT EXISTS aml_asset_containers (
    resource_group TEXT NOT NULL COLLATE NOCASE, workspace TEXT NOT NULL COLLATE NOCASE, kind TEXT NOT NULL,
    name TEXT NOT NULL, properties TEXT NOT NULL, created TEXT NOT NULL, modified TEXT NOT NULL,
    PRIMARY KEY (resource_group, workspace, kind, name));
"""


def asset_name(name: str) -> str:
    """An asset name as lookups take it: azure-ai-ml sends ``azureml:NAME@latest`` references with their
    ``azureml:`` prefix to the container routes (it strips it nowhere), and the service resolves them."""
    return name[len("azureml:"):] if name.lower().startswith("azureml:") else name


def list_view(value: Optional[str]) -> str:
    """The ``listViewType`` query value, checked (the service's default is ActiveOnly)."""
    if not value:
        return "ActiveOnly"
    view = VIEWS.get(value.lower())
    if view is None:
        raise errors.invalid_request("listViewType must be ActiveOnly, ArchivedOnly or All, not {!r}.".format(value))
    return view


def newest_first(order_by: Optional[str]) -> bool:
    if not order_by:
        return True
    if order_by.lower() not in ORDERS:
        raise errors.invalid_request("$orderBy must be 'createdtime desc' or 'createdtime asc', not {!r}."
                                     .format(order_by))
    return ORDERS[order_by.lower()]


def _shown(archived: bool, view: str) -> bool:
    return view == "All" or (view == "ArchivedOnly") == archived


def page(items: list, url: str, skip: Optional[str], top: Optional[str]) -> dict:
    """One page of ``items`` (``{"value", "nextLink"?}``): ``$skip`` is where it starts, ``$top`` how many
    the whole list holds at most."""
    start = int(skip) if skip and skip.isdigit() else 0
    if top is not None:
        if not top.isdigit():
            raise errors.invalid_request("$top must be a whole number, not {!r}.".format(top))
        items = items[:int(top)]
    end = start + PAGE_SIZE
    body = {"value": items[start:end]}
    if end < len(items):
        parts = urlsplit(url)
        query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "$skip"]
        body["nextLink"] = urlunsplit(parts._replace(query=urlencode(query + [("$skip", str(end))])))
    return body


class AssetCatalog:
    """Containers and version lists over the backend's ``aml_assets`` table (models.py)."""

    def __init__(self, backend) -> None:
        self.backend = backend
        self.store = backend.store
        self.store.ensure_schema(SCHEMA)

    # ---- versions -------------------------------------------------------------------------------

    def _version_rows(self, rg: str, ws: str, kind: str, name: str) -> list:
        return self.store.query("SELECT * FROM aml_assets WHERE resource_group = ? AND workspace = ? AND kind = ? "
                                "AND name = ? ORDER BY created, rowid", (rg, ws, kind, name))

    def _curated(self, kind: str, name: str) -> Optional[str]:
        return curated.find(name) if kind == "environments" else None

    def versions(self, rg: str, ws: str, kind: str, name: str, view: str = "ActiveOnly", newest: bool = True,
                 hash_value: Optional[str] = None) -> list:
        """The versions of one asset as the list shows them, in creation order (newest first by default)."""
        self.backend.workspace(rg, ws)
        rows = self._version_rows(rg, ws, kind, name)
        if rows:
            items = [self.backend.asset_json(row) for row in rows]
        elif self._curated(kind, name):
            items = [self.curated_version(rg, ws, self._curated(kind, name), version)
                     for version in curated.versions(self._curated(kind, name))]
        else:
            items = []
        items = [item for item in items if _shown(bool(item["properties"].get("isArchived")), view)]
        if hash_value:
            items = [item for item in items
                     if (item["properties"].get("properties") or {}).get("hash_sha256") == hash_value]
        return items[::-1] if newest else items

    def curated_version(self, rg: str, ws: str, name: str, version: str) -> dict:
        return {"id": "{}/environments/{}/versions/{}".format(self.backend.workspace_id(rg, ws), name, version),
                "name": version, "type": "Microsoft.MachineLearningServices/workspaces/environments/versions",
                "properties": curated.version_properties(name, version), "systemData": {}}

    def get_version(self, rg: str, ws: str, kind: str, name: str, version: str) -> dict:
        """A workspace asset version, or a curated environment version when the workspace has none of that name."""
        self.backend.workspace(rg, ws)
        row = self.backend._asset_row(rg, ws, kind, name, version, required=False)
        if row is not None:
            return self.backend.asset_json(row)
        known = self._curated(kind, name)
        if known and not self._version_rows(rg, ws, kind, name) and curated.has_version(known, version):
            return self.curated_version(rg, ws, known, version)
        raise errors.not_found(kind, "{}:{}".format(name, version))

    def latest_version(self, rg: str, ws: str, kind: str, name: str) -> Optional[str]:
        """What ``@latest`` means: the newest active version (the newest of all when every one is archived)."""
        versions = self.versions(rg, ws, kind, name, "All")
        active = [item for item in versions if not item["properties"].get("isArchived")]
        chosen = (active or versions)[:1]
        return chosen[0]["name"] if chosen else None

    # ---- containers -----------------------------------------------------------------------------

    def _container_row(self, rg: str, ws: str, kind: str, name: str):
        return self.store.query_one("SELECT * FROM aml_asset_containers WHERE resource_group = ? AND workspace = ? "
                                    "AND kind = ? AND name = ?", (rg, ws, kind, name))

    def container(self, rg: str, ws: str, kind: str, name: str) -> dict:
        self.backend.workspace(rg, ws)
        body = self._container_json(rg, ws, kind, name)
        if body is None:
            raise errors.not_found(kind, name)
        return body

    def _container_json(self, rg: str, ws: str, kind: str, name: str) -> Optional[dict]:
        row = self._container_row(rg, ws, kind, name)
        versions = self.versions(rg, ws, kind, name, "All")
        known = self._curated(kind, name)
        if row is None and not versions:
            return None
        if known and row is None and not self._version_rows(rg, ws, kind, name):
            properties = curated.container_properties(known)
            name, created, modified = known, None, None
        else:
            properties = {"description": None, "tags": {}, "properties": {}, "isArchived": False}
            properties.update(json.loads(row["properties"]) if row else {})
            numbers = [int(item["name"]) for item in versions if item["name"].isdigit()]
            properties["latestVersion"] = self.latest_version(rg, ws, kind, name)
            properties["nextVersion"] = str(max(numbers) + 1) if numbers else "1"
            properties["provisioningState"] = "Succeeded"
            if kind == "data" and versions:
                properties["dataType"] = versions[0]["properties"].get("dataType")
            created = row["created"] if row else versions[-1]["systemData"].get("createdAt")
            modified = row["modified"] if row else versions[0]["systemData"].get("createdAt")
        return {"id": "{}/{}/{}".format(self.backend.workspace_id(rg, ws), kind, name), "name": name,
                "type": "Microsoft.MachineLearningServices/workspaces/{}".format(kind), "properties": properties,
                "systemData": {"createdAt": created, "lastModifiedAt": modified} if created else {}}

    def containers(self, rg: str, ws: str, kind: str, view: str = "ActiveOnly") -> list:
        """The workspace's containers of one kind by name (curated environments too), filtered by ``view``."""
        self.backend.workspace(rg, ws)
        names = {row["name"] for row in self.store.query(
            "SELECT name FROM aml_assets WHERE resource_group = ? AND workspace = ? AND kind = ? "
            "UNION SELECT name FROM aml_asset_containers WHERE resource_group = ? AND workspace = ? AND kind = ?",
            (rg, ws, kind, rg, ws, kind))}
        if kind == "environments":
            names |= {name for name in curated.CATALOGUE if name.lower() not in {n.lower() for n in names}}
        bodies = [self._container_json(rg, ws, kind, name) for name in sorted(names, key=str.lower)]
        return [body for body in bodies
                if body is not None and _shown(bool(body["properties"].get("isArchived")), view)]

    def put_container(self, rg: str, ws: str, kind: str, name: str, body: dict) -> tuple:
        """(container JSON, created?): its description, tags, properties and ``isArchived`` (archive/restore)."""
        self.backend.workspace(rg, ws)
        if self._curated(kind, name) and not self._version_rows(rg, ws, kind, name):
            raise errors.invalid_request("{} is a curated environment; it cannot be changed in a workspace."
                                         .format(name))
        properties = body.get("properties")
        if not isinstance(properties, dict):
            raise errors.invalid_request("The body needs a properties object.")
        if "isArchived" in properties and not isinstance(properties["isArchived"], bool):
            raise errors.invalid_request("properties.isArchived must be true or false.")
        existing = self._container_row(rg, ws, kind, name)
        existed = existing is not None or bool(self._version_rows(rg, ws, kind, name))
        kept = {key: properties[key] for key in CONTAINER_KEYS if key in properties}
        now = utc_now()
        self.store.execute("INSERT OR REPLACE INTO aml_asset_containers (resource_group, workspace, kind, name, "
                           "properties, created, modified) VALUES (?, ?, ?, ?, ?, ?, ?)",
                           (rg, ws, kind, name, json.dumps(kept), existing["created"] if existing else now, now))
        return self._container_json(rg, ws, kind, name), not existed

    def delete_workspace(self, rg: str, ws: str) -> None:
        self.store.execute("DELETE FROM aml_asset_containers WHERE resource_group = ? AND workspace = ?", (rg, ws))
