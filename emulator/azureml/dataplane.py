"""The workspace data plane next to Resource Manager on the https endpoint, under ``/azureml-api``.

It differs from Resource Manager in two ways the SDK relies on: the discovery document is fetched
without a token, and RunHistory requests carry no ``api-version``. Everything else (bearer check,
JSON errors) is the core's; other paths go to the Resource Manager application unchanged.
"""
from __future__ import annotations

import logging

from werkzeug.wrappers import Request

from ..core.arm import ArmError, error_response
from ..core.bearer import check_authorization
from ..core.routing import Router
from .responses import AzureMLDataPlaneResponses
from .urls import DATAPLANE_PREFIX, dataplane_paths

log = logging.getLogger("emulator.azureml")
UNAUTHENTICATED = {"discovery"}


class DataPlaneApplication:
    def __init__(self, service, arm_app, token) -> None:  # token: as ArmApplication's
        self._arm_app = arm_app
        self._token = token
        self._router = Router()
        self._router.add_service(dataplane_paths, AzureMLDataPlaneResponses(service.backend))

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if not (path == DATAPLANE_PREFIX or path.startswith(DATAPLANE_PREFIX + "/")):
            return self._arm_app(environ, start_response)
        return self.handle(Request(environ), path[len(DATAPLANE_PREFIX):])(environ, start_response)

    def handle(self, request: Request, path: str):
        handler, params, known = self._router.match(request.method, path)
        if handler is None:
            return error_response(405 if known else 404, "MethodNotAllowed" if known else "NotFound",
                                  "No route for {} '{}'.".format(request.method, request.path))
        if handler.__name__ not in UNAUTHENTICATED:
            problem = check_authorization(request.headers.get("Authorization"), self._token)
            if problem:
                return error_response(401, *problem)
        try:
            return handler(request, **params)
        except ArmError as exc:
            return error_response(exc.status, exc.code, exc.message)
        except Exception:
            log.exception("internal error handling %s %s", request.method, request.path)
            return error_response(500, "InternalServerError", "The emulator failed to process the request.")
