"""Handlers of the asset-container routes (``GET``/``PUT`` of code, data, environments and models by name,
the container lists, the version lists with their query options) and of the workspace ``PATCH``.

Methods of ``AzureMLResponses`` (responses.py binds them there, wrapped in its ``arm_operation`` checks):
``self`` is that handler object, with its ``backend``."""
from __future__ import annotations

from werkzeug.wrappers import Request, Response

from ..core.arm import json_response, read_json
from . import assets


def list_asset_containers(self, request: Request, subscription: str, resource_group: str, workspace: str,
                          kind: str) -> Response:
    items = self.backend.assets.containers(resource_group, workspace, kind.lower(),
                                           assets.list_view(request.args.get("listViewType")))
    return json_response(assets.page(items, request.url, request.args.get("$skip"), None))


def get_asset_container(self, request: Request, subscription: str, resource_group: str, workspace: str,
                        kind: str, name: str) -> Response:
    return json_response(self.backend.assets.container(resource_group, workspace, kind.lower(),
                                                         assets.asset_name(name)))


def put_asset_container(self, request: Request, subscription: str, resource_group: str, workspace: str,
                        kind: str, name: str) -> Response:
    body, created = self.backend.assets.put_container(resource_group, workspace, kind.lower(), name,
                                                      read_json(request))
    return json_response(body, 201 if created else 200)


def list_asset_versions(self, request: Request, subscription: str, resource_group: str, workspace: str,
                        kind: str, name: str) -> Response:
    args = request.args
    items = self.backend.assets.versions(resource_group, workspace, kind.lower(), assets.asset_name(name),
                                         assets.list_view(args.get("listViewType")),
                                         assets.newest_first(args.get("$orderBy")), args.get("hash"))
    return json_response(assets.page(items, request.url, args.get("$skip"), args.get("$top")))


def get_asset_version(self, request: Request, subscription: str, resource_group: str, workspace: str,
                      kind: str, name: str, version: str) -> Response:
    return json_response(self.backend.assets.get_version(resource_group, workspace, kind.lower(),
                                                         assets.asset_name(name), version))


def update_workspace(self, request: Request, subscription: str, resource_group: str,
                     workspace: str) -> Response:
    """PATCH: an update of the workspace resource, answered 200 with the workspace (done at once)."""
    return json_response(self.backend.update_workspace(resource_group, workspace, read_json(request)))
