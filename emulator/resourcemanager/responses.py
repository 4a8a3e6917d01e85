"""Resource Manager handlers: the subscription and its tenant (as the Azure CLI lists them after
login), resource provider registration, and resource groups as azure-mgmt-resource 26 calls them
(any api-version).

PUT answers 201 for a new group and 200 for an existing one; HEAD 204/404 (check_existence);
DELETE 202 with a ``Location`` URL that answers 202 while the delete runs and 200 when it is done.
"""
from __future__ import annotations

from werkzeug.wrappers import Request, Response

from ..core import public_urls
from ..core.arm import RETRY_AFTER, error_response, json_response, read_json
from .models import ResourceManagerBackend


class ResourceManagerResponses:
    def __init__(self, backend: ResourceManagerBackend) -> None:
        self.backend = backend
        self.arm_url = backend.ctx.arm_url

    # ---- subscriptions, tenants, resource providers ------------------------------------------

    def list_subscriptions(self, request: Request) -> Response:
        return json_response({"value": [self.backend.subscription_json()]})

    def get_subscription(self, request: Request, subscription: str) -> Response:
        self.backend.check_subscription(subscription)
        return json_response(self.backend.subscription_json())

    def list_tenants(self, request: Request) -> Response:
        return json_response({"value": [self.backend.tenant_json()]})

    def list_providers(self, request: Request, subscription: str) -> Response:
        self.backend.check_subscription(subscription)
        return json_response({"value": self.backend.list_providers()})

    def get_provider(self, request: Request, subscription: str, namespace: str) -> Response:
        self.backend.check_subscription(subscription)
        return json_response(self.backend.provider(namespace))

    def register_provider(self, request: Request, subscription: str, namespace: str) -> Response:
        self.backend.check_subscription(subscription)
        return json_response(self.backend.set_registration(namespace, True))

    def unregister_provider(self, request: Request, subscription: str, namespace: str) -> Response:
        self.backend.check_subscription(subscription)
        return json_response(self.backend.set_registration(namespace, False))

    # ---- resource groups -----------------------------------------------------------------------

    def list_groups(self, request: Request, subscription: str) -> Response:
        self.backend.check_subscription(subscription)
        return json_response({"value": self.backend.list_groups()})

    def create_or_update_group(self, request: Request, subscription: str, resource_group: str) -> Response:
        self.backend.check_subscription(subscription)
        body, created = self.backend.create_or_update_group(resource_group, read_json(request))
        return json_response(body, 201 if created else 200)

    def get_group(self, request: Request, subscription: str, resource_group: str) -> Response:
        self.backend.check_subscription(subscription)
        return json_response(self.backend.get_group(resource_group))

    def check_group_existence(self, request: Request, subscription: str, resource_group: str) -> Response:
        self.backend.check_subscription(subscription)
        return Response(status=204 if self.backend.find_group(resource_group) else 404)

    def update_group(self, request: Request, subscription: str, resource_group: str) -> Response:
        self.backend.check_subscription(subscription)
        return json_response(self.backend.update_group(resource_group, read_json(request)))

    def delete_group(self, request: Request, subscription: str, resource_group: str) -> Response:
        self.backend.check_subscription(subscription)
        op_id = self.backend.delete_group(resource_group)
        return json_response(None, 202, {"Location": self._operation_url(request, op_id), "Retry-After": RETRY_AFTER})

    def get_operation(self, request: Request, subscription: str, operation: str) -> Response:
        """The Location of a group delete: 202 (with itself as Location) while it runs, 200 when done."""
        self.backend.check_subscription(subscription)
        self.backend.ctx.operations.settle(operation)
        op = self.backend.operation(operation)
        if op["status"] == "InProgress":
            return json_response(None, 202, {"Location": self._operation_url(request, operation),
                                             "Retry-After": RETRY_AFTER})
        if op["status"] == "Failed":
            return error_response(500, "InternalServerError", "The operation {} failed.".format(operation))
        return json_response(None, 200)

    def _operation_url(self, request: Request, op_id: str) -> str:
        return "{}/subscriptions/{}/operationresults/{}?api-version={}".format(
            public_urls.arm(self.arm_url), self.backend.subscription_id, op_id, request.args.get("api-version", ""))
