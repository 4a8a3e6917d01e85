"""HTTP(S) serving with werkzeug's threaded WSGI server, bound to loopback only."""
from __future__ import annotations

import logging
import re
import ssl
import threading
from pathlib import Path
from typing import Callable, Optional

from werkzeug.serving import WSGIRequestHandler, make_server

LOOPBACK = "127.0.0.1"
#: The environ key holding the request's headers as sent: ``[(name, value), ...]``.
RAW_HEADERS = "emulator.raw_headers"
log = logging.getLogger("emulator.http")

# Query parameters that carry secrets (SAS signatures) never reach the log.
_SECRET_QUERY = re.compile(r"(?i)\b(sig|signature)=[^&\s\"]*")


def redact(text: str) -> str:
    return _SECRET_QUERY.sub(r"\1=REDACTED", text)


class _QuietHandler(WSGIRequestHandler):
    """Request log lines go to the ``emulator.http`` logger at DEBUG, with signatures removed."""

    def log(self, type: str, message: str, *args) -> None:  # noqa: A002 (werkzeug's name)
        log.debug(redact(message % args))

    def make_environ(self):
        environ = super().make_environ()
        # werkzeug leaves out header names with '_', but storage clients sign and send them
        # (x-ms-meta-upload_status from azure-ai-ml): the storage endpoints read these.
        environ[RAW_HEADERS] = list(self.headers.items())
        return environ


class _LateBoundApp:
    """The WSGI app is set after binding, because services need the port to build their URLs."""

    def __init__(self) -> None:
        self.app: Optional[Callable] = None

    def __call__(self, environ, start_response):
        return self.app(environ, start_response)


class Server:
    """One listening socket served by a daemon thread."""

    def __init__(self, port: int = 0, certificate: Optional[tuple[Path, Path]] = None) -> None:
        self._app = _LateBoundApp()
        context = None
        if certificate:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(certificate[0]), str(certificate[1]))
        self._server = make_server(LOOPBACK, port, self._app, threaded=True, ssl_context=context,
                                   request_handler=_QuietHandler)
        self._server.daemon_threads = True
        self.port = self._server.server_port
        self.scheme = "https" if certificate else "http"
        self.url = "{}://{}:{}".format(self.scheme, LOOPBACK, self.port)
        self._thread: Optional[threading.Thread] = None

    def serve(self, app: Callable) -> None:
        self._app.app = app
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="emulator-" + self.url, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread:
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()
