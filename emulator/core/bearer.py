"""Bearer tokens for the Resource Manager side: the emulator issues one token and accepts only it."""
from __future__ import annotations

import hmac
import time
from typing import Any, Optional

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


def check_authorization(header: Optional[str], token: str) -> Optional[tuple[str, str]]:
    """Return None when ``header`` carries the token, else (code, message) as ARM words a 401."""
    if not header:
        return ("AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
    scheme, _, presented = header.partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        return ("AuthenticationFailed", "Authentication failed. The 'Authorization' header is not a Bearer token.")
    if not hmac.compare_digest(presented.strip().encode(), token.encode()):
        return ("InvalidAuthenticationToken", "The access token is invalid.")
    return None
