"""Azure AD handlers (``AadResponses``) and the WSGI app that serves them (``AadApplication``).

Only the client-credentials grant is served, for the one service principal of ``models``: the
secret may come in the form (adal, MSAL) or as HTTP Basic (msrestazure through requests-oauthlib),
or both. Answers carry what the clients read and no more: no ``client_info`` and no ``id_token``,
which would make MSAL's token cache miss for an app token. URLs in documents name the host the
client used, so the same app serves ``login.microsoftonline.com`` (through a proxy) and loopback.
"""
from __future__ import annotations

import base64
import binascii
import datetime
import json
import logging
import uuid
from typing import Optional
from urllib.parse import unquote_plus, urlsplit

from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Request, Response

from ..core.access_tokens import LIFETIME, issuer
from ..core.routing import Router
from . import exceptions as errors
from .models import WORLD_WIDE_ALIASES, AadBackend
from .urls import url_paths

log = logging.getLogger("emulator.aad")

#: Token requests are a few hundred bytes; refuse bodies past this.
MAX_FORM_BYTES = 64 * 1024
#: Scopes MSAL may add that name no resource.
RESERVED_SCOPES = {"openid", "profile", "offline_access"}
DEFAULT_SUFFIX = "/.default"


def _json(body: dict, status: int = 200, request: Optional[Request] = None) -> Response:
    response = Response(json.dumps(body), status=status, content_type="application/json; charset=utf-8")
    response.headers["Cache-Control"] = "no-store, no-cache"
    response.headers["Pragma"] = "no-cache"
    if request is not None and request.headers.get("client-request-id"):
        response.headers["client-request-id"] = request.headers["client-request-id"][:100]
    return response


def error_response(error: errors.AadError, request: Request) -> Response:
    """Azure AD's error body: the description ends with its trace lines, as the service writes it."""
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
    trace_id = str(uuid.uuid4())
    correlation_id = _correlation_id(request)
    description = "AADSTS{}: {}\r\nTrace ID: {}\r\nCorrelation ID: {}\r\nTimestamp: {}".format(
        error.code, error.description, trace_id, correlation_id, now)
    return _json({"error": error.error, "error_description": description, "error_codes": [error.code],
                  "timestamp": now, "trace_id": trace_id, "correlation_id": correlation_id,
                  "error_uri": "https://{}/error?code={}".format(request.host, error.code)}, error.status, request)


def _correlation_id(request: Request) -> str:
    try:
        return str(uuid.UUID(request.headers.get("client-request-id", "")))
    except ValueError:
        return str(uuid.uuid4())


class AadResponses:
    def __init__(self, backend: AadBackend) -> None:
        self.backend = backend

    # ---- tokens --------------------------------------------------------------------------------

    def token_v1(self, request: Request, tenant: str) -> Response:
        """adal and msrestazure: ``resource`` names the audience, as given."""
        form = self._sign_in(request, tenant)
        resource = form.get("resource", "").strip()
        if not resource:
            raise errors.missing_parameter("resource")
        token, issued, expires = self.backend.issue(resource)
        return _json({"token_type": "Bearer", "expires_in": str(LIFETIME), "ext_expires_in": str(LIFETIME),
                      "expires_on": str(expires), "not_before": str(issued), "resource": resource,
                      "access_token": token}, request=request)

    def token_v2(self, request: Request, tenant: str) -> Response:
        """MSAL (azure-identity, the Azure CLI): one ``{resource}/.default`` scope."""
        form = self._sign_in(request, tenant)
        audience = audience_of_scope(form.get("scope", ""))
        token, _, _ = self.backend.issue(audience)
        return _json({"token_type": "Bearer", "expires_in": LIFETIME, "ext_expires_in": LIFETIME,
                      "access_token": token}, request=request)

    def _sign_in(self, request: Request, tenant: str) -> dict:
        self.backend.check_tenant(tenant)
        form = request.form
        grant_type = form.get("grant_type", "")
        if not grant_type:
            raise errors.missing_parameter("grant_type")
        if grant_type != "client_credentials":
            raise errors.unsupported_grant_type(grant_type)
        basic_id, basic_secrets = _basic_credentials(request.headers.get("Authorization", ""))
        client_id = form.get("client_id") or basic_id
        secrets = [form["client_secret"]] if form.get("client_secret") else basic_secrets
        self.backend.authenticate(tenant, client_id, secrets)
        return form

    # ---- documents -----------------------------------------------------------------------------

    def openid_configuration_v2(self, request: Request, tenant: str) -> Response:
        self.backend.check_tenant(tenant, allow_multi_tenant=True, error="invalid_tenant")
        base = "https://{}/{}".format(request.host, tenant)
        named = tenant if self.backend.is_tenant(tenant) else "{tenantid}"
        return _json({
            "token_endpoint": base + "/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": base + "/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": "https://login.microsoftonline.com/{}/v2.0".format(named),
            "request_uri_parameter_supported": False,
            "authorization_endpoint": base + "/oauth2/v2.0/authorize",
            "device_authorization_endpoint": base + "/oauth2/v2.0/devicecode",
            "end_session_endpoint": base + "/oauth2/v2.0/logout",
            "tenant_region_scope": "NA",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
        }, request=request)

    def openid_configuration_v1(self, request: Request, tenant: str) -> Response:
        self.backend.check_tenant(tenant, allow_multi_tenant=True, error="invalid_tenant")
        base = "https://{}/{}".format(request.host, tenant)
        named = tenant if self.backend.is_tenant(tenant) else "{tenantid}"
        return _json({
            "token_endpoint": base + "/oauth2/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": "https://{}/common/discovery/keys".format(request.host),
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "token id_token", "token"],
            "scopes_supported": ["openid"],
            "issuer": issuer(named),
            "authorization_endpoint": base + "/oauth2/authorize",
            "end_session_endpoint": base + "/oauth2/logout",
            "tenant_region_scope": "NA",
            "cloud_instance_name": "microsoftonline.com",
        }, request=request)

    def keys(self, request: Request, tenant: str) -> Response:
        self.backend.check_tenant(tenant, allow_multi_tenant=True, error="invalid_tenant")
        return _json(self.backend.signing_key.jwks(), request=request)

    def instance_discovery(self, request: Request, tenant: str) -> Response:
        """Where MSAL (api-version 1.1) or adal (1.0) finds a tenant's OpenID configuration."""
        endpoint = request.args.get("authorization_endpoint", "")
        parts = urlsplit(endpoint)
        segments = parts.path.strip("/").split("/")
        if parts.scheme != "https" or not parts.netloc or not segments[0] or \
                not self.backend.serves_host(parts.netloc):
            raise errors.invalid_instance()
        version = "v2.0/" if "/v2.0/" in parts.path else ""
        host = parts.netloc
        body = {"tenant_discovery_endpoint": "https://{}/{}/{}.well-known/openid-configuration".format(
                    host, segments[0], version),
                "api-version": request.args.get("api-version", "1.1")}
        if body["api-version"] != "1.0":
            aliases = list(WORLD_WIDE_ALIASES) if host in WORLD_WIDE_ALIASES else [host]
            body["metadata"] = [{"preferred_network": host, "preferred_cache": host, "aliases": aliases}]
        return _json(body, request=request)


def audience_of_scope(scope: str) -> str:
    """The audience a client-credentials ``scope`` asks for: ``https://ml.azure.com/.default`` ->
    ``https://ml.azure.com``; ``https://management.core.windows.net//.default`` -> the name with its slash."""
    scopes = [s for s in scope.split() if s not in RESERVED_SCOPES]
    if not scopes:
        raise errors.missing_parameter("scope")
    if len(scopes) != 1 or not scopes[0].endswith(DEFAULT_SUFFIX) or len(scopes[0]) == len(DEFAULT_SUFFIX):
        raise errors.invalid_scope(scope)
    return scopes[0][:-len(DEFAULT_SUFFIX)]


def _basic_credentials(header: str) -> tuple:
    """(client id, [secret as sent, secret form-decoded]) from ``Authorization: Basic``; (None, [])
    otherwise. RFC 6749 form-encodes both before base64; requests-oauthlib 2.0 sends them raw."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value.strip():
        return None, []
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None, []
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        return None, []
    candidates = [secret] + ([unquote_plus(secret)] if unquote_plus(secret) != secret else [])
    return unquote_plus(client_id), [c for c in candidates if c]


class AadApplication:
    """The WSGI app of the token service: route, run, answer errors in Azure AD's JSON."""

    def __init__(self, responses: AadResponses) -> None:
        self._router = Router()
        self._router.add_service(url_paths, responses)

    def __call__(self, environ, start_response):
        request = Request(environ)
        request.max_content_length = MAX_FORM_BYTES
        return self.handle(request)(environ, start_response)

    def handle(self, request: Request) -> Response:
        handler, params, known = self._router.match(request.method, request.path)
        if handler is None:
            status = 405 if known else 404
            return Response("{} {} is not served by the emulator's Azure AD.".format(request.method, request.path),
                            status=status, content_type="text/plain; charset=utf-8")
        try:
            return handler(request, **params)
        except errors.AadError as exc:
            return error_response(exc, request)
        except RequestEntityTooLarge:
            return _json({"error": "invalid_request", "error_description": "The request body is larger than {} "
                          "bytes.".format(MAX_FORM_BYTES)}, 413, request)
        except Exception:  # a bug in the emulator: log it, never leak details (or the form) to the client
            log.exception("internal error handling %s %s", request.method, request.path)
            return _json({"error": "server_error", "error_description": "The emulator failed to process the "
                          "request."}, 500, request)
