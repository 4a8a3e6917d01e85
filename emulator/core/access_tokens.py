"""Azure AD access tokens: RS256 JWTs the emulator's token service signs, and the one check every
service runs on a bearer token.

The signing key is an RSA key kept owner-only in the data directory (``aad/signing-key.pem``), so
tokens stay valid across restarts; its public half is published as a JWKS (``jwks()``). Tokens
are the v1 access tokens Azure AD issues for Azure's own resources (ARM, Storage, Azure ML) even
from its v2 endpoint: ``iss`` is ``https://sts.windows.net/{tenant}/`` and ``ver`` is ``1.0``.

``TokenVerifier.accepting(audiences)`` gives a service a callable that takes the presented token
and returns None (accepted) or ``(code, message)`` worded as Resource Manager words its 401s. The
emulator's own opaque token is accepted by every service, as before.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
import uuid
from pathlib import Path
from typing import Callable, Iterable, Optional

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .datadir import write_private

#: Audiences Resource Manager accepts (clients ask for either name, with or without the slash).
ARM_AUDIENCES = ("https://management.azure.com", "https://management.azure.com/",
                 "https://management.core.windows.net", "https://management.core.windows.net/")
#: Audiences the Storage endpoints accept.
STORAGE_AUDIENCES = ("https://storage.azure.com", "https://storage.azure.com/")
#: The Azure ML data plane takes Resource Manager tokens and ml.azure.com tokens.
AZUREML_AUDIENCES = ARM_AUDIENCES + ("https://ml.azure.com", "https://ml.azure.com/")
#: Seconds a token lives (Azure AD's client-credentials tokens: ``expires_in`` 3599).
LIFETIME = 3599
#: Clock skew allowed when checking ``exp`` and ``nbf``, as Azure's token validators allow.
LEEWAY = 300

Check = Callable[[str], Optional[tuple]]


def endpoint_audiences(url: str) -> tuple:
    """A service's own URL as an audience, with and without the slash: what a client configured
    with a custom cloud whose endpoint is that URL asks for (azure-ai-ml: ``{endpoint}/.default``)."""
    url = url.rstrip("/")
    return (url, url + "/")


def issuer(tenant_id: str) -> str:
    return "https://sts.windows.net/{}/".format(tenant_id)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class SigningKey:
    """The token service's RSA key: made once per data directory, owner-only."""

    FILE = "signing-key.pem"

    def __init__(self, directory: Path) -> None:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
        path = directory / self.FILE
        if path.exists():
            os.chmod(path, 0o600)
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        else:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            write_private(path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()))
        self._key = key
        self.public_key = key.public_key()
        der = self.public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.kid = _b64url(hashlib.sha1(der).digest())  # Azure AD's kid and x5t are a SHA-1 thumbprint too

    def __repr__(self) -> str:  # never print the key
        return "SigningKey(kid={!r})".format(self.kid)

    def sign(self, claims: dict) -> str:
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"typ": "JWT", "kid": self.kid,
                                                                         "x5t": self.kid})

    def jwks(self) -> dict:
        """The public key as Azure AD's ``jwks_uri`` lists its keys."""
        numbers = self.public_key.public_numbers()
        n = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
        e = numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")
        return {"keys": [{"kty": "RSA", "use": "sig", "kid": self.kid, "x5t": self.kid, "n": _b64url(n),
                          "e": _b64url(e), "issuer": "https://login.microsoftonline.com/{tenantid}/v2.0"}]}

    def issue(self, tenant_id: str, client_id: str, object_id: str, audience: str,
              now: Optional[int] = None) -> tuple:
        """An app-only access token for ``audience``: (token, issued at, expires on)."""
        now = int(time.time()) if now is None else now
        token_issuer = issuer(tenant_id)
        claims = {"aud": audience, "iss": token_issuer, "iat": now, "nbf": now, "exp": now + LIFETIME,
                  "appid": client_id, "appidacr": "1", "idp": token_issuer, "idtyp": "app", "oid": object_id,
                  "sub": object_id, "tid": tenant_id, "uti": _b64url(uuid.uuid4().bytes), "ver": "1.0"}
        return self.sign(claims), now, now + LIFETIME


class TokenVerifier:
    """Accepts the emulator's opaque token and the token service's JWTs for given audiences."""

    def __init__(self, opaque_token: str, public_key, tenant_id: str) -> None:
        self._opaque = opaque_token
        self._public_key = public_key
        self._tenant_id = tenant_id

    def __repr__(self) -> str:
        return "TokenVerifier(tenant_id={!r})".format(self._tenant_id)

    def accepting(self, audiences: Iterable[str]) -> Check:
        """A check for one service: ``check(token)`` is None or (code, message)."""
        allowed = tuple(audiences)
        return lambda presented: self.check(presented, allowed)

    def check(self, presented: str, audiences: tuple) -> Optional[tuple]:
        if hmac.compare_digest(presented.encode(), self._opaque.encode()):
            return None
        if presented.count(".") != 2:
            return ("InvalidAuthenticationToken", "The access token is invalid.")
        expected_issuer = issuer(self._tenant_id)
        try:
            claims = jwt.decode(presented, self._public_key, algorithms=["RS256"], leeway=LEEWAY,
                                options={"verify_aud": False, "verify_iss": False,
                                         "require": ["exp", "nbf", "iat", "aud", "iss"]})
        except jwt.ExpiredSignatureError:
            expiry = _unverified_claim(presented, "exp")
            return ("ExpiredAuthenticationToken", "The access token expiry UTC time '{}' is earlier than current UTC "
                                                  "time '{}'.".format(_utc(expiry), _utc(time.time())))
        except jwt.ImmatureSignatureError:
            return ("InvalidAuthenticationToken", "The access token is not yet valid.")
        except jwt.PyJWTError:
            return ("InvalidAuthenticationToken", "The access token is invalid.")
        if claims.get("iss") != expected_issuer or claims.get("tid") != self._tenant_id:
            return ("InvalidAuthenticationTokenTenant", "The access token is from the wrong issuer '{}'. It must "
                    "match the tenant '{}' associated with this subscription.".format(str(claims.get("iss"))[:200],
                                                                                     expected_issuer))
        if claims.get("aud") not in audiences:
            return ("InvalidAuthenticationTokenAudience", "The access token has been obtained for wrong audience or "
                    "resource '{}'. It should exactly match with one of the allowed audiences {}.".format(
                        str(claims.get("aud"))[:200], ",".join("'{}'".format(a) for a in audiences)))
        return None


def _unverified_claim(token: str, name: str):
    try:
        return jwt.decode(token, options={"verify_signature": False}).get(name)
    except jwt.PyJWTError:
        return None


def _utc(epoch) -> str:
    if not isinstance(epoch, (int, float)):
        return "unknown"
    return time.strftime("%m/%d/%Y %H:%M:%S", time.gmtime(epoch))


