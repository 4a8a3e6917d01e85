"""Azure AD routes: the v1 and v2 token endpoints, the OpenID configurations MSAL reads, the signing
keys (``jwks_uri``) and instance discovery. ``{tenant}`` is the first path segment, as in
``https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token``."""
TENANT = r"/(?P<tenant>[^/]+)"

url_paths = [
    ("POST", TENANT + r"/oauth2/token", "token_v1"),
    ("POST", TENANT + r"/oauth2/v2\.0/token", "token_v2"),
    ("GET", TENANT + r"/v2\.0/\.well-known/openid-configuration", "openid_configuration_v2"),
    ("GET", TENANT + r"/\.well-known/openid-configuration", "openid_configuration_v1"),
    ("GET", TENANT + r"/discovery/v2\.0/keys", "keys"),
    ("GET", TENANT + r"/discovery/keys", "keys"),
    ("GET", TENANT + r"/discovery/instance", "instance_discovery"),
]
