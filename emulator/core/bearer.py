"""Bearer tokens for the Resource Manager side: the emulator's own opaque token, and (through a
check from ``access_tokens.TokenVerifier``) the JWTs of its Azure AD token service."""
from __future__ import annotations

import hmac
import time
from typing import Any, Callable, Optional, Union

from azure.core.credentials import AccessToken


class EmulatorCredential:
    """A ``TokenCredential`` that returns the emulator's token (azure-identity's role on Azure)."""

    def __init__(self, token: str) -> None:
        self._token = token

    def get_token(self, *scopes: str, claims: Optional[str] = None, tenant_id: Optional[str] = None,
                  **kwargs: Any) -> AccessToken:
        return AccessToken(self._token, int(time.time()) + 3600)

    def __repr__(self) -> str:
        return "EmulatorCredential()"


def check_authorization(header: Optional[str],
                        token: Union[str, Callable[[str], Optional[tuple]]]) -> Optional[tuple[str, str]]:
    """Return None when ``header`` carries an accepted token, else (code, message) as ARM words a 401.

    ``token`` is the one token to accept, or a check that takes the presented token and returns
    None or (code, message) (``TokenVerifier.accepting``)."""
    if not header:
        return ("AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
    scheme, _, presented = header.partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        return ("AuthenticationFailed", "Authentication failed. The 'Authorization' header is not a Bearer token.")
    if callable(token):
        return token(presented.strip())
    if not hmac.compare_digest(presented.strip().encode(), token.encode()):
        return ("InvalidAuthenticationToken", "The access token is invalid.")
    return None
