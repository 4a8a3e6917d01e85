"""Azure Storage authentication and authorization, shared by the File and Blob endpoints.

* SharedKey (``Authorization: SharedKey account:signature``): the string-to-sign is recomputed
  exactly as the azure-storage-* 12.x SDKs (and the legacy 2.x ones) build it, plus the few
  variants other conforming clients produce (plain ``sorted()`` header order, the ``Range``
  header signed), and compared in constant time. The same for every service. The canonicalised
  resource is the URL path exactly as sent (percent-encoded), as the service and Azurite sign it:
  a signature for blob ``a b`` (``a%20b``) does not hold for blob ``a%20b`` (``a%2520b``).
* Service SAS (``sv, sr, sp, se, st, sip, spr, rscc..., sig`` in the query): the checks every
  service makes are here; what differs per service (the ``sr`` values, the permission letters,
  the string-to-sign's fields by version) is a ``SasRules`` each service passes in. Account SAS,
  stored access policies and user delegation SAS are refused clearly.

Request objects provide ``method``, ``raw_path`` (percent-encoded, as sent), ``query_pairs``
(decoded), ``header(name) -> str`` ('' when absent), ``x_ms_headers()`` (lower-case ``x-ms-*``
name/value pairs), ``remote_addr`` and ``scheme``. Nothing here logs or returns a key or a
signature.
"""
from __future__ import annotations

import base64
import datetime
import email.utils
import hashlib
import hmac
import ipaddress
import re
from dataclasses import dataclass, field
from functools import cmp_to_key
from typing import Callable, Iterable, Iterator, Optional
from urllib.parse import unquote

from . import storage_errors as err

#: The version the emulator writes into SAS tokens and answers with when a request names none.
DEFAULT_VERSION = "2026-10-06"
#: How far a SharedKey request's x-ms-date/Date may be from the server's clock (as Azure).
MAX_CLOCK_SKEW = datetime.timedelta(minutes=15)
#: The first REST version of the storage services; older or malformed x-ms-version values are refused.
FIRST_VERSION = "2014-02-14"
#: The service versions a SAS may be signed for (``sv``): the storage services' published REST
#: versions from FIRST_VERSION up to DEFAULT_VERSION, whose string-to-sign layouts the SAS rules
#: know. The 12.x SDKs sign their own x-ms-version (2019-02-02 on); the service's own download
#: links carried 2016-05-31 and 2018-03-28. Any other sv (a future version, a made-up date,
#: garbage) is refused, as the service refuses a version it does not implement.
SAS_VERSIONS = frozenset((
    "2014-02-14", "2015-02-21", "2015-04-05", "2015-07-08", "2015-12-11", "2016-05-31", "2017-04-17", "2017-07-29",
    "2017-11-09", "2018-03-28", "2018-11-09", "2019-02-02", "2019-07-07", "2019-10-10", "2019-12-12", "2020-02-10",
    "2020-04-08", "2020-06-12", "2020-08-04", "2020-10-02", "2020-12-06", "2021-02-12", "2021-04-10", "2021-06-08",
    "2021-08-06", "2021-10-04", "2021-12-02", "2022-11-02", "2023-01-03", "2023-05-03", "2023-08-03", "2023-11-03",
    "2024-05-04", "2024-08-04", "2024-11-04", "2025-01-05", "2025-05-05", "2025-07-05", "2025-11-05", "2026-02-06",
    "2026-04-06", "2026-06-06", DEFAULT_VERSION))

_SIGNED_HEADERS = ("content-encoding", "content-language", "content-length", "content-md5", "content-type", "date",
                   "if-modified-since", "if-match", "if-none-match", "if-unmodified-since")
_SAS_FIELDS = ("sv", "sr", "sp", "se", "st", "sig", "si", "sip", "spr", "rscc", "rscd", "rsce", "rscl", "rsct",
               "ses", "snapshot")
_ACCOUNT_SAS_FIELDS = ("ss", "srt")
_DELEGATION_FIELDS = ("skoid", "sktid", "skt", "ske", "sks", "skv", "skdutid", "sduoid")
_OVERRIDES = ("rscc", "rscd", "rsce", "rscl", "rsct")


@dataclass
class Grant:
    """Who the request was authenticated as: ``kind`` is "sharedkey", "bearer" (OAuth) or "sas"."""

    kind: str
    version: Optional[str] = None
    permissions: str = ""
    resource: str = ""          # the SAS's sr: one item (file, blob) or its container (share, container)
    overrides: dict = field(default_factory=dict)  # SAS response header overrides (rscc ... rsct)


def valid_version(value: str) -> Optional[str]:
    """``value`` when it is a REST version the service could know (a date from FIRST_VERSION on)."""
    try:
        day = datetime.date.fromisoformat(value) if len(value) == 10 else None
    except ValueError:
        day = None
    return value if day is not None and value >= FIRST_VERSION else None


def check_version(value: str) -> None:
    """Refuse a malformed x-ms-version as the service does (400 InvalidHeaderValue)."""
    if value and valid_version(value) is None:
        raise err.invalid_header_value("x-ms-version", value[:64], "Expected a REST version such as {} (from {} on)."
                                       .format(DEFAULT_VERSION, FIRST_VERSION))


def sign(key: bytes, text: str) -> str:
    return base64.b64encode(hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()).decode("ascii")


def decode_key(account_key: str) -> bytes:
    return base64.b64decode(account_key)


def keys_equal(a: str, b: str) -> bool:
    """Constant-time comparison of two base64 strings (keys or signatures)."""
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


# --- the SDK's header collation (azure/storage/*/_shared/authentication.py) --------------------
# Windows-like: at the first level '-' (and other punctuation with weight 0) is ignored.

_LV0 = {0x21: 0x71c, 0x23: 0x71f, 0x24: 0x721, 0x25: 0x723, 0x26: 0x725, 0x2a: 0x72d, 0x2b: 0x803, 0x2e: 0x733,
        0x30: 0xd03, 0x31: 0xd1a, 0x32: 0xd1c, 0x33: 0xd1e, 0x34: 0xd20, 0x35: 0xd22, 0x36: 0xd24, 0x37: 0xd26,
        0x38: 0xd28, 0x39: 0xd2a, 0x5e: 0x743, 0x5f: 0x744, 0x60: 0x748, 0x7c: 0x74c, 0x7e: 0x750}
_LETTERS = (0xe02, 0xe09, 0xe0a, 0xe1a, 0xe21, 0xe23, 0xe25, 0xe2c, 0xe32, 0xe35, 0xe36, 0xe48, 0xe51, 0xe70, 0xe7c,
            0xe7e, 0xe89, 0xe8a, 0xe91, 0xe99, 0xe9f, 0xea2, 0xea4, 0xea6, 0xea7, 0xea9)
for _i, _w in enumerate(_LETTERS):
    _LV0[0x41 + _i] = _w
    _LV0[0x61 + _i] = _w
_LV4 = {0x27: 0x8012, 0x2d: 0x8212}


def _storage_compare(lhs: str, rhs: str) -> int:
    tables = (_LV0, _LV4)
    level, i, j = 0, 0, 0
    while level < len(tables):
        if level == len(tables) - 1 and i != j:
            return -1 if i > j else 1
        w1 = tables[level].get(ord(lhs[i]), 0) if i < len(lhs) else 1
        w2 = tables[level].get(ord(rhs[j]), 0) if j < len(rhs) else 1
        if w1 == 1 and w2 == 1:
            i = j = 0
            level += 1
        elif w1 == w2:
            i += 1
            j += 1
        elif w1 == 0:
            i += 1
        elif w2 == 0:
            j += 1
        else:
            return -1 if w1 < w2 else 1
    return 0


def _header_orders(headers: list) -> Iterator[list]:
    """Plain ``sorted()`` first (cheap, and the same as the SDK's collation for the headers the
    SDKs send), then the SDK's ``_storage_header_sort`` collation if it differs."""
    plain = sorted(headers)
    yield plain
    storage = sorted(headers, key=cmp_to_key(lambda a, b: _storage_compare(a[0], b[0])))
    if storage != plain:
        yield storage


# --- query strings ----------------------------------------------------------------------------

def parse_query(raw_query: str) -> list[tuple[str, str]]:
    """``(name, value)`` pairs, both percent-decoded ('+' is kept, as the SDK signs it)."""
    pairs = []
    for part in raw_query.split("&") if raw_query else ():
        if not part:
            continue
        name, _, value = part.partition("=")
        pairs.append((unquote(name), unquote(value)))
    return pairs


def _canonical_query(pairs: list[tuple[str, str]]) -> str:
    grouped: dict[str, list[str]] = {}
    for name, value in pairs:
        grouped.setdefault(name.lower(), []).append(value)
    return "".join("\n{}:{}".format(name, ",".join(sorted(values))) for name, values in sorted(grouped.items()))


# --- SharedKey --------------------------------------------------------------------------------

def _shared_key_candidates(request, account: str) -> Iterator[str]:
    """Strings-to-sign a conforming client may have signed, the SDK's own first."""
    fixed = []
    for name in _SIGNED_HEADERS:
        value = request.header(name)
        if name == "content-length" and value == "0":
            value = ""
        fixed.append(value)
    fixed_text = "\n".join(fixed) + "\n"
    ranges = [""]                    # the SDK signs a header called "byte_range": always empty
    if request.header("range"):
        ranges.append(request.header("range"))
    x_ms = list(request.x_ms_headers())
    resource = "/" + account + request.raw_path   # as sent: never the decoded path
    query = _canonical_query(request.query_pairs)
    for order in _header_orders(x_ms):  # lazily: the collation is only computed if needed
        headers_text = "".join("{}:{}\n".format(n, v) for n, v in order)
        for byte_range in ranges:
            yield "{}\n{}{}\n{}{}{}".format(request.method, fixed_text, byte_range, headers_text, resource, query)


def parse_http_date(value: str) -> Optional[datetime.datetime]:
    """An HTTP date (RFC 1123) as an aware datetime (UTC when it names no zone); None when not one."""
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.timezone.utc)
    return parsed


# --- SAS times, IPs -----------------------------------------------------------------------------

_SAS_TIME = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?Z?)?$")


def parse_sas_time(value: str) -> datetime.datetime:
    """``YYYY-MM-DD[Thh:mm[:ss[.fffffff]]Z]`` (UTC), as Azure accepts in ``st``/``se``."""
    m = _SAS_TIME.match(value.strip())
    if not m:
        raise ValueError(value)
    year, month, day, hour, minute, second = (int(g) if g else 0 for g in m.groups()[:6])
    micro = int((m.group(7) or "0").ljust(6, "0")[:6])
    return datetime.datetime(year, month, day, hour, minute, second, micro, tzinfo=datetime.timezone.utc)


def format_sas_time(when: datetime.datetime) -> str:
    if when.tzinfo is not None:
        when = when.astimezone(datetime.timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def ip_allowed(sip: str, remote: str) -> bool:
    try:
        address = ipaddress.ip_address(remote)
        low, _, high = sip.partition("-")
        low_ip = ipaddress.ip_address(low.strip())
        high_ip = ipaddress.ip_address(high.strip()) if high else low_ip
        return low_ip <= address <= high_ip
    except ValueError:
        return False



def iter_x_ms_headers(environ: dict) -> Iterable[tuple[str, str]]:
    """The request's ``x-ms-*`` headers from a WSGI environ, lower-cased."""
    for key, value in environ.items():
        if key.startswith("HTTP_X_MS_"):
            yield key[5:].lower().replace("_", "-"), value


# --- service SAS, per service ------------------------------------------------------------------

@dataclass(frozen=True)
class SasRules:
    """What a service's SAS looks like.

    ``service`` names the canonical resource (``/file/...``, ``/blob/...``); ``item`` and
    ``container`` are the ``sr`` letters for one item (file, blob) and its container (share,
    container); ``item_level`` is the level name ``authorize`` gets for item operations;
    ``fields(version)`` lists the string-to-sign's fields after the canonical resource;
    ``hint`` names the SDK functions that make such tokens, for error messages.
    """

    service: str
    item: str
    container: str
    item_level: str
    permissions: str
    fields: Callable[[str], tuple]
    hint: str
    words: dict = field(default_factory=dict)   # {"item": "file", "container": "share"} for messages

    def string_to_sign(self, values: dict, canonical_resource: str) -> str:
        head = [values.get("sp", ""), values.get("st", ""), values.get("se", ""), canonical_resource]
        return "\n".join(head + [values.get(name, "") for name in self.fields(values.get("sv", ""))])

    def canonical(self, account: str, container: str, path: Optional[str]) -> str:
        return "/{}/{}/{}".format(self.service, account, container) + ("/" + path if path else "")


class StorageAuthenticator:
    """Checks every request against the one storage account the emulator serves."""

    #: Checks an OAuth token (None: Bearer is refused): ``check(token)`` is None or (code, message).
    #: Set by the emulator's wiring (``access_tokens.TokenVerifier.accepting``).
    bearer_check: Optional[Callable[[str], Optional[tuple]]] = None
    #: The first x-ms-version that takes OAuth, and a header OAuth requests must carry (Files' intent).
    BEARER_MIN_VERSION = "2017-11-09"
    BEARER_INTENT: Optional[tuple] = None

    def __init__(self, account_name: str, account_key: str, rules: SasRules, endpoint: str) -> None:
        self.account_name = account_name
        self._key_text = account_key
        self._key = decode_key(account_key)
        self.rules = rules
        self._endpoint = endpoint   # "File", "Blob": for messages

    def __repr__(self) -> str:
        return "{}(account_name={!r})".format(type(self).__name__, self.account_name)

    def check_account_key(self, account_name: str, key: str) -> bool:
        name_ok = hmac.compare_digest(account_name.encode("utf-8"), self.account_name.encode("utf-8"))
        key_ok = keys_equal(key or "", self._key_text)
        return name_ok and key_ok

    def sign_sas(self, values: dict, container: str, path: Optional[str]) -> str:
        """The ``sig`` for SAS ``values`` on ``container``/``path``, as this service signs it."""
        return sign(self._key, self.rules.string_to_sign(values, self.rules.canonical(self.account_name, container,
                                                                                      path)))

    # -- entry point
    def authenticate(self, request, container: Optional[str], path: Optional[str]) -> Grant:
        """Authenticate ``request`` (for ``container``/``path``, decoded; None above that level)."""
        authorization = request.header("authorization")
        names = {name.lower() for name, _ in request.query_pairs}
        if authorization:
            return self._shared_key(request, authorization)
        if "sig" in names:
            return self._sas(request, container, path)
        if names & set(_ACCOUNT_SAS_FIELDS):
            raise err.authentication_failed("Account SAS tokens are not supported by this emulator; use a service "
                                            "SAS ({}) or SharedKey.".format(self.rules.hint))
        raise err.no_authentication_information()

    # -- SharedKey
    def _shared_key(self, request, authorization: str) -> Grant:
        scheme, _, credentials = authorization.strip().partition(" ")
        if scheme == "Bearer" and self.bearer_check is not None:
            return self._bearer(request, credentials.strip())
        if scheme != "SharedKey":
            if scheme == "Bearer":
                raise err.authentication_failed("Bearer tokens are not supported by the emulator's {} endpoint; use "
                                                "SharedKey or a SAS.".format(self._endpoint))
            raise err.authentication_failed("Unsupported authorization scheme '{}'; use SharedKey.".format(
                scheme[:32]))
        account, sep, signature = credentials.strip().rpartition(":")
        if not sep or not account or not signature:
            raise err.authentication_failed("The Authorization header must be 'SharedKey <account>:<signature>'.")
        if account != self.account_name:
            raise err.authentication_failed("The Authorization header names account '{}', but this emulator serves "
                                            "'{}'.".format(account[:64], self.account_name))
        _check_date(request)
        first_text = None
        for text in _shared_key_candidates(request, self.account_name):
            first_text = first_text or text
            if keys_equal(sign(self._key, text), signature):
                return Grant("sharedkey", version=request.header("x-ms-version") or None)
        raise err.authentication_failed(
            "The MAC signature found in the HTTP request is not the same as any computed signature. "
            "Server used following string to sign: '{}'.".format(first_text))

    # -- OAuth (Azure AD tokens)
    def _bearer(self, request, token: str) -> Grant:
        """A Bearer token: checked by ``bearer_check`` (signature, expiry, audience); it grants what
        the account key grants, as the Storage data roles do."""
        version = request.header("x-ms-version")
        if not version or version < self.BEARER_MIN_VERSION:
            raise err.authentication_failed("Authentication scheme Bearer is not supported in this version; send "
                                            "x-ms-version {} or later.".format(self.BEARER_MIN_VERSION))
        header, value = self.BEARER_INTENT or (None, None)
        if header and request.header(header).lower() != value:
            raise err.authentication_failed("OAuth requests to the {} endpoint must send '{}: {}' (the SDK's "
                                            "token_intent='{}').".format(self._endpoint, header, value, value))
        problem = self.bearer_check(token) if token else ("InvalidAuthenticationToken", "The token is empty.")
        if problem is not None:
            raise err.invalid_authentication_info(problem[1])
        return Grant("bearer", version=version)

    # -- service SAS
    def _sas(self, request, container: Optional[str], path: Optional[str]) -> Grant:
        rules = self.rules
        values: dict[str, str] = {}
        for name, value in request.query_pairs:
            values.setdefault(name.lower() if name.lower() in _SAS_FIELDS + _ACCOUNT_SAS_FIELDS else name, value)
        if any(name in values for name in _ACCOUNT_SAS_FIELDS):
            raise err.authentication_failed("Account SAS tokens (ss/srt) are not supported by this emulator; use a "
                                            "service SAS ({}) or SharedKey.".format(rules.hint))
        if any(name in values for name in _DELEGATION_FIELDS):
            raise err.authentication_failed("User delegation SAS tokens are not supported by this emulator.")
        if values.get("si"):
            raise err.authentication_failed("Stored access policies (si) are not supported by this emulator; "
                                            "sign sp and se into the SAS.")
        for required in ("sv", "sr", "sp", "se"):
            if not values.get(required):
                raise err.authentication_failed("The SAS is missing the mandatory field '{}'.".format(required))
        if values["sv"] not in SAS_VERSIONS:
            raise err.authentication_failed(
                "The SAS is signed for service version sv='{}', which this emulator does not implement; sign it "
                "for a published version from {} to {} (the SDKs' default is fine).".format(
                    values["sv"][:32], FIRST_VERSION, DEFAULT_VERSION))
        resource = values["sr"]
        item, whole = rules.words.get("item", "item"), rules.words.get("container", "container")
        if resource not in (rules.item, rules.container):
            raise err.authentication_failed("Signed resource '{}' is not valid for the {} service; use sr={} ({}) "
                                            "or sr={} ({}).".format(resource[:16], self._endpoint, rules.item, item,
                                                                    rules.container, whole))
        if container is None:
            raise err.authorization_resource_type_mismatch("A service SAS grants access to one {} or {}, not "
                                                           "to account-level operations.".format(whole, item))
        if resource == rules.item:
            if not path:
                raise err.authorization_resource_type_mismatch("A {} SAS (sr={}) cannot authorize {}-level "
                                                               "operations.".format(item, rules.item, whole))
            canonical = rules.canonical(self.account_name, container, path)
        else:
            canonical = rules.canonical(self.account_name, container, None)
        text = rules.string_to_sign(values, canonical)
        if not keys_equal(sign(self._key, text), values.get("sig", "")):
            raise err.authentication_failed("Signature did not match. String to sign used was '{}'.".format(text))
        # Only now that the signature holds do the signed values mean anything.
        now = datetime.datetime.now(datetime.timezone.utc)
        try:
            expiry = parse_sas_time(values["se"])
            start = parse_sas_time(values["st"]) if values.get("st") else None
        except ValueError:
            raise err.authentication_failed("The SAS start or expiry time is not a valid ISO 8601 UTC time.")
        if now > expiry or (start is not None and now < start):
            raise err.authentication_failed(
                "Signature not valid in the specified time frame: Start [{}] - Expiry [{}] - Current [{}]".format(
                    values.get("st", ""), values["se"], format_sas_time(now)))
        protocol = values.get("spr")
        if protocol and request.scheme not in [p.strip() for p in protocol.split(",")]:
            raise err.authorization_protocol_mismatch()
        if values.get("sip") and not ip_allowed(values["sip"], request.remote_addr or ""):
            raise err.authorization_source_ip_mismatch()
        permissions = values["sp"]
        if any(p not in rules.permissions for p in permissions):
            raise err.authentication_failed("Signed permissions '{}' are not valid for a {} or {} SAS (allowed: "
                                            "{}).".format(permissions[:16], item, whole,
                                                          ", ".join(rules.permissions)))
        overrides = {name: values[name] for name in _OVERRIDES if values.get(name)}
        return Grant("sas", version=values["sv"], permissions=permissions, resource=resource, overrides=overrides)

    # -- authorization of one operation
    def authorize(self, grant: Grant, required: Optional[str], level: str, operation: str) -> None:
        """Check that ``grant`` may run ``operation`` needing any of the ``required`` permissions.

        ``required`` None means the operation needs SharedKey (account-level and container
        lifecycle operations); ``level`` is where the operation acts ("account", the container's
        level, or the service's ``item_level``).
        """
        if grant.kind in ("sharedkey", "bearer"):
            return
        if required is None:
            raise err.authorization_resource_type_mismatch("'{}' cannot be authorized by a service SAS.".format(
                operation))
        if grant.resource == self.rules.item and level != self.rules.item_level:
            raise err.authorization_resource_type_mismatch("A {} SAS (sr={}) cannot authorize '{}'.".format(
                self.rules.words.get("item", "item"), self.rules.item, operation))
        if not any(p in grant.permissions for p in required):
            raise err.authorization_permission_mismatch("'{}' needs SAS permission {}; the SAS grants '{}'.".format(
                operation, " or ".join("'{}'".format(p) for p in required), grant.permissions))


def _check_date(request) -> None:
    raw = request.header("x-ms-date") or request.header("date")
    if not raw:
        raise err.authentication_failed("Request date header not specified: SharedKey requests need x-ms-date "
                                        "or Date.")
    when = parse_http_date(raw)
    if when is None:
        raise err.authentication_failed("The request date header '{}' is not a valid RFC 1123 date.".format(
            raw[:64]))
    now = datetime.datetime.now(datetime.timezone.utc)
    if abs(now - when) > MAX_CLOCK_SKEW:
        raise err.authentication_failed("Request date header too old or too new: '{}' (server time {}; "
                                        "15 minutes allowed).".format(raw[:64], email.utils.format_datetime(
                                            now, usegmt=True)))
