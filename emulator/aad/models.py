"""The token service's state: the one service principal it signs in (``core.secrets``) and the key
it signs access tokens with (``core.access_tokens.SigningKey``). Nothing is stored per token."""
from __future__ import annotations

import hmac
import logging
from typing import Iterable, Optional

from ..core.access_tokens import SigningKey
from ..core.secrets import ServicePrincipal
from . import exceptions as errors

log = logging.getLogger("emulator.aad")

#: Tenant aliases that name no tenant: a client-credentials request to them names none.
MULTI_TENANT = ("common", "organizations", "consumers")
#: Azure AD's world-wide host names, all answered the same (instance discovery's aliases).
WORLD_WIDE_ALIASES = ("login.microsoftonline.com", "login.windows.net", "login.microsoft.com", "sts.windows.net")


class AadBackend:
    def __init__(self, principal: ServicePrincipal, signing_key: SigningKey,
                 loopback_hosts: Iterable[str] = ()) -> None:
        self.principal = principal
        self.signing_key = signing_key
        self.tenant_id = principal.tenant_id
        self.loopback_hosts = tuple(loopback_hosts)  # "127.0.0.1:PORT": the token service's own address

    def __repr__(self) -> str:
        return "AadBackend(tenant_id={!r})".format(self.tenant_id)

    def is_tenant(self, tenant: str) -> bool:
        return tenant.lower() == self.tenant_id.lower()

    def check_tenant(self, tenant: str, allow_multi_tenant: bool = False, error: str = "invalid_request") -> None:
        """Refuse a tenant other than the emulator's (the aliases ``common``... only if allowed)."""
        if self.is_tenant(tenant) or (allow_multi_tenant and tenant.lower() in MULTI_TENANT):
            return
        if tenant.lower() in MULTI_TENANT:
            raise errors.no_tenant_in_request()
        raise errors.tenant_not_found(tenant, error)

    def serves_host(self, host: str) -> bool:
        """Whether ``host`` (``name[:port]``) is an address of this token service."""
        host = host.lower()
        return host in self.loopback_hosts or host.rsplit(":443", 1)[0] in WORLD_WIDE_ALIASES

    def authenticate(self, tenant: str, client_id: Optional[str], secrets: list) -> None:
        """Check a client-credentials sign-in; ``secrets`` are the client secrets as the request may mean them."""
        self.check_tenant(tenant)
        if not client_id:
            raise errors.missing_parameter("client_id")
        if not hmac.compare_digest(client_id.strip().lower().encode(), self.principal.client_id.lower().encode()):
            raise errors.application_not_found(client_id, self.tenant_id)
        if not secrets:
            raise errors.missing_secret()
        expected = self.principal.client_secret.encode()
        if not any(hmac.compare_digest(secret.encode(), expected) for secret in secrets):
            log.info("sign-in refused for client %s: wrong client secret", self.principal.client_id)
            raise errors.invalid_client_secret(self.principal.client_id)

    def issue(self, audience: str) -> tuple:
        """(access token, issued at, expires on) for the service principal and ``audience``."""
        token, issued, expires = self.signing_key.issue(self.tenant_id, self.principal.client_id,
                                                       self.principal.object_id, audience)
        log.info("token issued to client %s for %s", self.principal.client_id, audience)
        return token, issued, expires
