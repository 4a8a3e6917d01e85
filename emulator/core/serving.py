"""HTTP(S) serving with werkzeug's threaded WSGI server, bound to loopback only.

werkzeug wraps the listening socket in TLS, so its accepting thread does every handshake: one
client that connects and never sends a ClientHello would stall every other client. Here the
listening socket stays plain; each connection's own thread does its handshake (with a time
limit), and every connection gets a read/write timeout, so a silent or slow client only ever
holds its own thread. ``stop()`` closes open connections too, so stopping never waits on a client.
"""
from __future__ import annotations

import logging
import re
import socket
import ssl
import threading
from pathlib import Path
from typing import Callable, Optional

from werkzeug.serving import ThreadedWSGIServer

from .keepalive import KeepAliveRequestHandler

LOOPBACK = "127.0.0.1"
#: The environ key holding the request's headers as sent: ``[(name, value), ...]``.
RAW_HEADERS = "emulator.raw_headers"
#: Seconds a client has to complete its TLS handshake.
HANDSHAKE_TIMEOUT = 10.0
#: Seconds a connection may stay silent (idle keep-alive, or a request or response stalled midway).
IDLE_TIMEOUT = 120.0
log = logging.getLogger("emulator.http")

# Query parameters that carry secrets (SAS signatures) never reach the log.
_SECRET_QUERY = re.compile(r"(?i)\b(sig|signature)=[^&\s\"]*")


def redact(text: str) -> str:
    return _SECRET_QUERY.sub(r"\1=REDACTED", text)


class _QuietHandler(KeepAliveRequestHandler):
    """Request log lines go to the ``emulator.http`` logger at DEBUG, with signatures removed;
    connections stay open between requests (``keepalive``)."""

    def log(self, type: str, message: str, *args) -> None:  # noqa: A002 (werkzeug's name)
        log.debug(redact(message % args))

    def make_environ(self):
        environ = super().make_environ()
        # werkzeug leaves out header names with '_', but storage clients sign and send them
        # (x-ms-meta-upload_status from azure-ai-ml): the storage endpoints read these.
        environ[RAW_HEADERS] = list(self.headers.items())
        return environ


#: The request handler, for other servers of the same WSGI apps (the proxy's tunnels).
QuietRequestHandler = _QuietHandler


class _LateBoundApp:
    """The WSGI app is set after binding, because services need the port to build their URLs."""

    def __init__(self) -> None:
        self.app: Optional[Callable] = None

    def __call__(self, environ, start_response):
        return self.app(environ, start_response)


class OpenConnections:
    """The connections a server has open, each as the socket now serving it (TLS-wrapped or not), so that
    stopping can shut them all down and never wait on a silent client."""

    def __init__(self) -> None:
        self._sockets: dict = {}  # accepted socket -> the socket now serving it
        self._lock = threading.Lock()

    def add(self, raw) -> None:
        with self._lock:
            self._sockets[raw] = raw

    def replace(self, raw, serving) -> None:
        """``raw`` is now served through ``serving`` (wrapping a socket in TLS detaches the accepted one)."""
        with self._lock:
            if raw in self._sockets:
                self._sockets[raw] = serving

    def remove(self, raw) -> None:
        with self._lock:
            self._sockets.pop(raw, None)

    def close_all(self) -> None:
        with self._lock:
            sockets = list(self._sockets.values())
        for connection in sockets:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _ConnectionThreadServer(ThreadedWSGIServer):
    """werkzeug's threaded server with the TLS handshake moved into each connection's thread."""

    def __init__(self, port: int, app: Callable, tls: Optional[ssl.SSLContext], handshake_timeout: float,
                 idle_timeout: float) -> None:
        handler = type("_Handler", (_QuietHandler,), {"timeout": idle_timeout})
        super().__init__(LOOPBACK, port, app, handler)  # a plain listening socket
        self.ssl_context = tls  # werkzeug reads it for wsgi.url_scheme and for its TLS error handling
        self.daemon_threads = True
        self._handshake_timeout = handshake_timeout
        self.connections = OpenConnections()

    def process_request_thread(self, request, client_address) -> None:
        raw = request
        self.connections.add(raw)
        try:
            if self.ssl_context is not None:
                request.settimeout(self._handshake_timeout)
                try:
                    request = self.ssl_context.wrap_socket(request, server_side=True)
                except (OSError, ValueError) as exc:  # timeouts, TLS alerts, resets, a stop meanwhile
                    log.debug("TLS handshake with %s failed: %s", client_address, exc)
                    self.shutdown_request(request)
                    return
                self.connections.replace(raw, request)
            super().process_request_thread(request, client_address)
        finally:
            self.connections.remove(raw)


class Server:
    """One listening socket served by a daemon thread, one thread per connection."""

    def __init__(self, port: int = 0, certificate: Optional[tuple[Path, Path]] = None,
                 handshake_timeout: float = HANDSHAKE_TIMEOUT, idle_timeout: float = IDLE_TIMEOUT) -> None:
        self._app = _LateBoundApp()
        context = None
        if certificate:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.load_cert_chain(str(certificate[0]), str(certificate[1]))
        self._server = _ConnectionThreadServer(port, self._app, context, handshake_timeout, idle_timeout)
        self.port = self._server.server_port
        self.scheme = "https" if certificate else "http"
        self.url = "{}://{}:{}".format(self.scheme, LOOPBACK, self.port)
        self._thread: Optional[threading.Thread] = None

    def serve(self, app: Callable) -> None:
        self._app.app = app
        self._thread = serve_in_thread(self._server, "emulator-" + self.url)

    def stop(self) -> None:
        shut_down(self._server, self._thread)


def serve_in_thread(server, name: str) -> threading.Thread:
    """Run ``server.serve_forever`` (a socketserver with ``connections``: OpenConnections) in a daemon thread."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, name=name, daemon=True)
    thread.start()
    return thread


def shut_down(server, thread: Optional[threading.Thread]) -> None:
    """Stop ``server`` (served by ``thread``, if started), its listening socket and every open connection,
    without waiting on a silent client."""
    if thread:
        server.shutdown()
        thread.join(timeout=5)
    server.server_close()
    server.connections.close_all()
