"""Azure AD's errors, as its token service words them: an OAuth ``error``, an ``AADSTS`` code and
description, and the trace fields every answer carries (``error_codes``, ``timestamp``,
``trace_id``, ``correlation_id``, ``error_uri``)."""
from __future__ import annotations


class AadError(Exception):
    """``status`` and OAuth ``error``, Azure AD's numeric ``code`` and its ``description``."""

    def __init__(self, status: int, error: str, code: int, description: str) -> None:
        super().__init__("AADSTS{}: {}".format(code, description))
        self.status, self.error, self.code, self.description = status, error, code, description


def tenant_not_found(tenant: str, error: str = "invalid_request") -> AadError:
    return AadError(400, error, 90002, "Tenant '{}' not found. Check to make sure you have the correct tenant ID and "
                                       "are signing into the correct cloud. Check with your subscription "
                                       "administrator, this may happen if there are no active subscriptions for the "
                                       "tenant.".format(tenant[:100]))


def no_tenant_in_request() -> AadError:
    """A client-credentials request to /common, /organizations or /consumers."""
    return AadError(400, "invalid_request", 50059, "No tenant-identifying information found in either the request "
                                                   "or implied by any provided credentials.")


def missing_parameter(name: str) -> AadError:
    return AadError(400, "invalid_request", 900144, "The request body must contain the following parameter: "
                                                    "'{}'.".format(name))


def missing_secret() -> AadError:
    return AadError(401, "invalid_client", 7000218, "The request body must contain the following parameter: "
                                                    "'client_assertion' or 'client_secret'.")


def unsupported_grant_type(grant_type: str) -> AadError:
    return AadError(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type "
                                                          "'{}'.".format(grant_type[:100]))


def application_not_found(client_id: str, tenant: str) -> AadError:
    return AadError(400, "unauthorized_client", 700016,
                    "Application with identifier '{}' was not found in the directory '{}'. This can happen if the "
                    "application has not been installed by the administrator of the tenant or consented to by any "
                    "user in the tenant. You may have sent your authentication request to the wrong "
                    "tenant.".format(client_id[:100], tenant))


def invalid_client_secret(client_id: str) -> AadError:
    return AadError(401, "invalid_client", 7000215,
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client secret "
                    "value, not the client secret ID, for a secret added to app '{}'.".format(client_id))


def invalid_scope(scope: str) -> AadError:
    return AadError(400, "invalid_scope", 1002012,
                    "The provided value for scope {} is not valid. Client credential flows must have a scope value "
                    "with /.default suffixed to the resource identifier (application ID URI).".format(scope[:200]))


def invalid_instance() -> AadError:
    return AadError(400, "invalid_instance", 50049, "Unknown or invalid instance.")
