"""The CONNECT proxy: one thread per client connection, TLS terminated here, HTTP/1.1 served by werkzeug.

A connection sends ``CONNECT host:port``; a host with a route gets ``200 Connection established``, then the
TLS handshake with a certificate for that name (in this connection's thread, with a time limit), then any
number of keep-alive requests handed to the route's WSGI application by werkzeug's request handler, exactly
as on loopback. A host without a route gets ``403`` and one log line. The proxy opens no connection at all:
everything it serves, it serves in this process.
"""
from __future__ import annotations

import datetime
import logging
import socket
import socketserver
import ssl
import threading
from pathlib import Path
from typing import Callable, Optional

from ..core import public_urls
from ..core.proxy_ca import RENEW_BEFORE, ProxyCA
from ..core.serving import (HANDSHAKE_TIMEOUT, IDLE_TIMEOUT, LOOPBACK, OpenConnections, QuietRequestHandler,
                             serve_in_thread, shut_down)
from .routes import Route, Routes

log = logging.getLogger("emulator.proxy")
#: The most bytes a CONNECT request's head may take.
MAX_HEAD = 16 * 1024


class _Refused(Exception):
    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class _TunnelEndpoint:
    """What werkzeug's request handler reads from its server, for one tunnel."""

    multithread, multiprocess, passthrough_errors = True, False, False

    def __init__(self, app: Callable, tls: Optional[ssl.SSLContext], host: str, port: int) -> None:
        self.app, self.ssl_context, self.server_address = app, tls, (host, port)
        self._server_version = "Werkzeug"

    def log(self, type: str, message: str, *args) -> None:  # noqa: A002 (werkzeug's name)
        log.log(logging.ERROR if type == "error" else logging.DEBUG, message, *args)


class _TunnelHandler(QuietRequestHandler):
    """The loopback endpoints' request handler (werkzeug's parsing, HTTP/1.1 keep-alive, which clients use on a
    tunnel: core/keepalive.py), with each request marked as having come in through the proxy for its host, so
    that the URLs it is answered with name that host (core/public_urls.py)."""

    timeout = IDLE_TIMEOUT

    def make_environ(self):
        environ = super().make_environ()
        environ[public_urls.ENVIRON_KEY] = self.server.server_address[0]
        return environ


class _ProxyTCPServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, proxy: "ProxyServer") -> None:
        super().__init__((LOOPBACK, port), socketserver.BaseRequestHandler)
        self.proxy = proxy
        self.connections = OpenConnections()

    def process_request_thread(self, request, client_address) -> None:
        self.connections.add(request)
        try:
            self.proxy.serve_connection(request, client_address,
                                        lambda serving: self.connections.replace(request, serving))
        except Exception:  # one connection's failure must not reach the server loop
            log.exception("proxy connection from %s failed", client_address)
        finally:
            self.connections.remove(request)
            self.shutdown_request(request)


class ProxyServer:
    """``http://127.0.0.1:PORT``, an HTTPS proxy for the hosts in ``routes``."""

    def __init__(self, routes: Routes, ca: ProxyCA, ca_bundle: Path, port: int = 0,
                 handshake_timeout: float = HANDSHAKE_TIMEOUT, idle_timeout: float = IDLE_TIMEOUT) -> None:
        self.routes, self.ca, self.ca_bundle = routes, ca, ca_bundle
        self._handshake_timeout, self._idle_timeout = handshake_timeout, idle_timeout
        self._handler = type("_Handler", (_TunnelHandler,), {"timeout": idle_timeout})
        self._contexts: dict = {}
        self._contexts_lock = threading.Lock()
        self._server = _ProxyTCPServer(port, self)
        self.port = self._server.server_address[1]
        self.url = "http://{}:{}".format(LOOPBACK, self.port)
        self._thread: Optional[threading.Thread] = None

    def serve(self) -> None:
        self._thread = serve_in_thread(self._server, "emulator-proxy")

    def stop(self) -> None:
        shut_down(self._server, self._thread)

    # ---- one connection ---------------------------------------------------------------------------

    def serve_connection(self, sock: socket.socket, client_address, replaced: Callable) -> None:
        sock.settimeout(self._handshake_timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # a head and a body are two writes
            host, port = self._read_connect(sock)
            route = self.routes.match(host, port)
            if route is None:
                raise _Refused("403 Forbidden", "this proxy serves only the emulated Azure hosts and the emulator's "
                                                "own endpoints, not {}:{}".format(host, port))
        except _Refused as refused:
            log.warning("proxy refused %s from %s: %s", refused.status.split()[0], client_address[0], refused.message)
            body = (refused.message + "\n").encode()
            _send(sock, "HTTP/1.1 {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n"
                  .format(refused.status, len(body)).encode() + body)
            return
        except (OSError, ValueError) as exc:
            log.debug("proxy connection from %s ended before its CONNECT: %s", client_address, exc)
            return
        if not _send(sock, b"HTTP/1.1 200 Connection established\r\n\r\n"):
            return
        log.debug("proxy tunnel to %s:%s from %s", host, port, client_address[0])
        tls = self._tls_context(route)
        if tls is not None:
            try:
                sock = tls.wrap_socket(sock, server_side=True)
            except (OSError, ValueError) as exc:  # timeouts, TLS alerts (a client that does not trust the CA)
                log.info("proxy: TLS handshake for %s with %s failed: %s", host, client_address, exc)
                return
            replaced(sock)
        endpoint = _TunnelEndpoint(route.app, tls, host, port)
        try:
            if route.azure:
                with public_urls.proxied(host):
                    self._handler(sock, client_address, endpoint)
            else:
                self._handler(sock, client_address, endpoint)
        except (OSError, ValueError) as exc:
            log.debug("proxy tunnel to %s from %s ended: %s", host, client_address, exc)
        finally:
            if tls is not None:
                try:
                    sock.close()
                except OSError:
                    pass

    def _read_connect(self, sock: socket.socket) -> tuple:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                raise ValueError("closed")
            head += chunk
            if len(head) > MAX_HEAD:
                raise _Refused("431 Request Header Fields Too Large", "the CONNECT request's head is too large")
        line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = line.split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            raise _Refused("400 Bad Request", "not an HTTP request line: {!r}".format(line[:100]))
        method, target = parts[0], parts[1]
        if method != "CONNECT":
            raise _Refused("405 Method Not Allowed", "this proxy only tunnels https (CONNECT), not {} {}".format(
                method[:16], target[:100]))
        host, sep, port = target.rpartition(":")
        if not sep or not port.isdigit():
            raise _Refused("400 Bad Request", "CONNECT needs host:port, not {!r}".format(target[:100]))
        return host.strip("[]"), int(port)

    def _tls_context(self, route: Route) -> Optional[ssl.SSLContext]:
        if route.certificate is None:
            return None
        """The server context for a route: its CA leaf (re-minted before it expires) or its loopback certificate."""
        key = route.certificate if isinstance(route.certificate, str) else tuple(map(str, route.certificate))
        now = datetime.datetime.now(datetime.timezone.utc)
        with self._contexts_lock:
            cached = self._contexts.get(key)
            if cached is not None and (cached[1] is None or cached[1] - now >= RENEW_BEFORE):
                return cached[0]
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.set_alpn_protocols(["http/1.1"])
            expiry = None
            if isinstance(key, str):
                path, expiry = self.ca.leaf(key)
                context.load_cert_chain(str(path))
            else:
                context.load_cert_chain(*key)
            self._contexts[key] = (context, expiry)
            return context


def _send(sock: socket.socket, data: bytes) -> bool:
    try:
        sock.sendall(data)
        return True
    except OSError:
        return False

