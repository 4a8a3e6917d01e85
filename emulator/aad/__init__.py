"""Azure AD: the token service clients sign in to with a service principal (client credentials),
served at ``ctx.aad_url`` (https, loopback) and, through the emulator's proxy, as
``login.microsoftonline.com``.

Layout as in moto: ``models`` (the service principal and signing key, ``AadBackend``),
``responses`` (one handler per endpoint and the WSGI app), ``urls`` (routing rows),
``exceptions`` (Azure AD's AADSTS errors). The tokens and their checks are ``core.access_tokens``.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from ..core.access_tokens import SigningKey
from ..core.context import Context, Service
from ..core.secrets import load_service_principal
from .models import AadBackend
from .responses import AadApplication, AadResponses
from .urls import url_paths

__all__ = ["AadBackend", "create_app", "create_service"]


def create_service(ctx: Context) -> Service:
    """The service principal is kept in the data directory's settings, the signing key in ``aad/``."""
    loopback = urlsplit(ctx.aad_url).netloc if ctx.aad_url else ""
    backend = AadBackend(load_service_principal(ctx.store), SigningKey(ctx.data_dir / "aad"),
                         [loopback, loopback.replace("127.0.0.1", "localhost")] if loopback else [])
    return Service(backend=backend, url_paths=url_paths, responses=AadResponses(backend))


def create_app(service: Service) -> AadApplication:
    """The WSGI callable serving the token service."""
    return AadApplication(service.responses)
