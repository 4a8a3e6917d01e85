"""The Resource Manager protocol shared by every ARM service: bearer auth, JSON bodies,
CloudError error bodies and long-running-operation headers, in one place.
"""
from __future__ import annotations

import datetime
import json
import logging
import threading
import time
import uuid
from typing import Any, Callable, Optional

from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Request, Response

from . import public_urls
from .bearer import check_authorization
from .routing import Router
from .store import Store

log = logging.getLogger("emulator.arm")


class ArmError(Exception):
    """Raised by handlers; becomes ``{"error": {"code", "message"}}`` with ``status``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def utc_now() -> str:
    """Timestamps as the service writes them: ISO-8601 UTC with milliseconds and a Z."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def json_response(body: Any, status: int = 200, headers: Optional[dict] = None) -> Response:
    data = b"" if body is None else json.dumps(body).encode()
    response = Response(data, status=status, headers=headers or {})
    if body is not None:
        response.content_type = "application/json; charset=utf-8"
    return response


def error_response(status: int, code: str, message: str) -> Response:
    return json_response({"error": {"code": code, "message": message}}, status)


#: ``Retry-After`` on every 202 and on every answer to an unfinished operation's poll. Older clients
#: (msrestazure: azure-mgmt-batchai 0.2.0 / 1.0.1, azure-mgmt-resource 1.x) sleep this many seconds before
#: every poll, 30 when it is absent; azure-core reads 0 as absent and keeps the caller's polling_interval.
RETRY_AFTER = "0"
#: So that a client polling without a pause is not a busy loop, a poll of an unfinished operation is held
#: this many seconds at most; it is answered as soon as the operation ends.
POLL_HOLD = 0.5

#: Resource Manager refuses larger request bodies (413 RequestContentTooLarge).
MAX_REQUEST_BYTES = 4 * 1024 * 1024
#: Nesting deeper than this is refused (no Batch AI body comes close).
MAX_JSON_DEPTH = 64


def read_json(request: Request) -> dict:
    """The request body as a JSON object; an empty body is ``{}``."""
    if (request.content_length or 0) > MAX_REQUEST_BYTES:
        raise _too_large()
    request.max_content_length = MAX_REQUEST_BYTES  # also bounds a chunked body
    try:
        data = request.get_data(cache=True)
    except RequestEntityTooLarge:
        raise _too_large() from None
    if not data.strip():
        return {}
    try:
        body = json.loads(data)
    except RecursionError:
        raise _too_deep() from None
    except ValueError as exc:
        raise ArmError(400, "InvalidRequestContent", "The request content is not valid JSON: {}".format(exc))
    if not isinstance(body, dict):
        raise ArmError(400, "InvalidRequestContent", "The request content must be a JSON object.")
    if _depth(body) > MAX_JSON_DEPTH:
        raise _too_deep()
    return body


def _too_large() -> ArmError:
    return ArmError(413, "RequestContentTooLarge", "The request content size exceeds the maximum size of 4 MB.")


def _too_deep() -> ArmError:
    return ArmError(400, "InvalidRequestContent",
                    "The request content is nested more than {} levels deep.".format(MAX_JSON_DEPTH))


def _depth(value: Any) -> int:
    """How deeply objects and lists nest in ``value`` (iterative: no recursion limit to hit)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        elif not isinstance(item, list):
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_JSON_DEPTH:
            return deepest
        stack.extend((child, depth + 1) for child in item)
    return deepest


class ArmApplication:
    """WSGI app for the https endpoint: authenticate, route, turn ArmError into CloudError.

    ``token``: the token to accept, or a check of the presented token (see ``bearer.check_authorization``)."""

    def __init__(self, router: Router, token) -> None:
        self.router = router
        self._token = token

    def __call__(self, environ, start_response):
        request = Request(environ)
        return self.handle(request)(environ, start_response)

    def handle(self, request: Request) -> Response:
        problem = check_authorization(request.headers.get("Authorization"), self._token)
        if problem:
            response = error_response(401, *problem)
            response.headers["WWW-Authenticate"] = 'Bearer authorization_uri="https://login.microsoftonline.com/common"'
            return response
        handler, params, path_known = self.router.match(request.method, request.path)
        if handler is None:
            if path_known:
                return error_response(405, "MethodNotAllowed",
                                      "The HTTP method '{}' is not supported at '{}'.".format(request.method, request.path))
            return error_response(404, "InvalidResourceType", "No route for '{}'.".format(request.path))
        if not request.args.get("api-version"):
            return error_response(400, "MissingApiVersionParameter",
                                  "The api-version query parameter (?api-version=) is required for all requests.")
        try:
            return handler(request, **params)
        except ArmError as exc:
            return error_response(exc.status, exc.code, exc.message)
        except Exception:  # a bug in the emulator: log it here, never leak details to the client
            log.exception("internal error handling %s %s", request.method, request.path)
            return error_response(500, "InternalServerError", "The emulator failed to process the request.")


class Operations:
    """Long-running operations, polled through ``Azure-AsyncOperation`` and ``Location`` URLs.

    A handler that answers 202 calls ``begin`` then ``headers``; whoever finishes the work calls
    ``finish``. Polling URLs are absolute and point at this emulator.
    """

    SCHEMA = """
    CREATE TABLE IF NOT EXISTS operations (
        id TEXT PRIMARY KEY, resource_id TEXT NOT NULL, status TEXT NOT NULL,
        error TEXT, start_time TEXT NOT NULL, end_time TEXT);
    """

    def __init__(self, store: Store, arm_url: str, subscription_id: str) -> None:
        self.store, self.arm_url, self.subscription_id = store, arm_url, subscription_id
        self._changed = threading.Condition()
        store.ensure_schema(self.SCHEMA)

    def begin(self, resource_id: str, status: str = "InProgress") -> str:
        op_id = str(uuid.uuid4())
        self.store.execute("INSERT INTO operations (id, resource_id, status, start_time) VALUES (?, ?, ?, ?)",
                           (op_id, resource_id, status, utc_now()))
        return op_id

    def finish(self, op_id: str, status: str = "Succeeded", error: Optional[dict] = None) -> None:
        self.store.execute("UPDATE operations SET status = ?, error = ?, end_time = ? WHERE id = ?",
                           (status, json.dumps(error) if error else None, utc_now(), op_id))
        with self._changed:
            self._changed.notify_all()

    def unfinished(self) -> list:
        """Ids of operations still in progress, for services to settle after a restart."""
        return [row["id"] for row in self.store.query("SELECT id FROM operations WHERE status = 'InProgress'")]

    def get(self, op_id: str) -> Optional[dict]:
        row = self.store.query_one("SELECT * FROM operations WHERE id = ?", (op_id,))
        return dict(row) if row else None

    def settle(self, op_id: str, hold: float = POLL_HOLD) -> Optional[dict]:
        """The operation (None if unknown), once it has ended or ``hold`` seconds have passed (see POLL_HOLD)."""
        deadline = time.monotonic() + hold
        while True:
            op = self.get(op_id)
            left = deadline - time.monotonic()
            if op is None or op["status"] != "InProgress" or left <= 0:
                return op
            with self._changed:
                self._changed.wait(min(left, 0.1))

    def headers(self, op_id: str, provider_path: str, api_version: str) -> dict:
        """Headers for a 202: ``provider_path`` like ``providers/Microsoft.BatchAI/locations/eastus``."""
        base = "{}/subscriptions/{}/{}".format(public_urls.arm(self.arm_url), self.subscription_id, provider_path)
        return {
            "Azure-AsyncOperation": "{}/operationresults/{}?api-version={}".format(base, op_id, api_version),
            "Location": "{}/operationstatuses/{}?api-version={}".format(base, op_id, api_version),
            "Retry-After": RETRY_AFTER,
        }

    def status_body(self, op_id: str, request_url: str) -> dict:
        """The body of GET operationresults, as the service wrote it (held while unfinished: POLL_HOLD)."""
        op = self.settle(op_id)
        if op is None:
            raise ArmError(404, "OperationNotFound", "The operation {} is not found.".format(op_id))
        body = {"id": request_url.split("?")[0], "name": op_id, "status": op["status"], "startTime": op["start_time"]}
        if op["end_time"]:
            body["endTime"] = op["end_time"]
        if op["error"]:
            body["error"] = json.loads(op["error"])
        body["properties"] = {"resourceId": op["resource_id"]}
        return body


class BackgroundWork:
    """Threads that finish long-running operations (deletes, terminations); joined on close."""

    def __init__(self, operations) -> None:
        self._operations = operations
        self._threads: set[threading.Thread] = set()
        self._lock = threading.Lock()

    def run(self, op_id: str, name: str, work: Callable[[], None]) -> None:
        def body() -> None:
            try:
                work()
                self._operations.finish(op_id)
            except Exception:  # the operation must end either way; the client sees Failed
                log.exception("operation %s (%s) failed", op_id, name)
                self._operations.finish(op_id, "Failed", {"code": "InternalServerError",
                                                          "message": "The emulator failed to {}.".format(name)})
            finally:
                with self._lock:
                    self._threads.discard(threading.current_thread())

        thread = threading.Thread(target=body, name=name, daemon=True)
        with self._lock:
            self._threads.add(thread)
        thread.start()

    def close(self, timeout: float) -> None:
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout)
