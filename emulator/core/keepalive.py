"""werkzeug's WSGI request handler with HTTP/1.1 persistent connections.

werkzeug's own handler answers every request with ``Connection: close`` (its dev server cannot
tell where a request body ends), so each request paid a TCP connect and, on the https endpoints,
a TLS handshake: an SDK uploading 4 MiB blocks or downloading ranges opened a connection per
block. Here a connection stays open while every request on it is delimited:

* the body the application sees (``wsgi.input``) stops at ``Content-Length``, and what the
  application left unread is drained (up to ``DRAIN_LIMIT``) before the next request is read;
* a response is sent with its ``Content-Length`` (or chunked) and never with more bytes than it
  declares (none for HEAD, 204, 304); an application that yields fewer (a file truncated
  meanwhile) gets the connection closed, so the client sees a short body rather than a confused
  next response;
* a chunked request body, an unknown or bad ``Content-Length``, a larger leftover, an error
  midway, HTTP/1.0 or ``Connection: close`` from the client close the connection after the
  answer, as before.
"""
from __future__ import annotations

import io
import selectors
import socket
from typing import Optional

from werkzeug.serving import WSGIRequestHandler

#: The most request-body bytes left unread by an application that are read and dropped to keep
#: the connection (as much as a refused 4 MiB Put Range or block, many times over); past that the
#: connection is closed after the answer.
DRAIN_LIMIT = 64 * 1024 * 1024
_SCRATCH = 256 * 1024


class _ClientGone(Exception):
    """Writing the answer failed: the client closed or reset the connection."""


class RequestBody(io.RawIOBase):
    """``wsgi.input`` for a request with a ``Content-Length``: reads stop at its end."""

    def __init__(self, stream, length: int) -> None:
        super().__init__()
        self._stream = stream
        self.left = length

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.left <= 0:
            return 0
        view = memoryview(buffer).cast("B")
        if len(view) > self.left:
            view = view[:self.left]
        n = self._stream.readinto(view) or 0
        self.left -= n
        return n

    def drain(self, limit: int) -> bool:
        """Read and drop what is left, if at most ``limit`` bytes; whether the body is now all read."""
        if self.left > limit:
            return False
        scratch = memoryview(bytearray(min(self.left, _SCRATCH) or 1))
        while self.left > 0:
            if not self.readinto(scratch):
                return False  # the client stopped sending: the connection is done
        return True


def _content_length(value: Optional[str]) -> Optional[int]:
    if value is None:
        return 0
    try:
        length = int(value)
    except ValueError:
        return None
    return length if length >= 0 else None


class KeepAliveRequestHandler(WSGIRequestHandler):
    """A WSGIRequestHandler that keeps HTTP/1.1 connections open between requests."""

    protocol_version = "HTTP/1.1"
    # A response's head and body are separate writes: without TCP_NODELAY the body waits for
    # the client's delayed ACK of the head (up to 40 ms) on a reused connection.
    disable_nagle_algorithm = True

    def make_environ(self):
        environ = super().make_environ()
        self._request_body = None
        if not environ.get("wsgi.input_terminated"):  # chunked bodies keep werkzeug's stream
            length = _content_length(environ.get("CONTENT_LENGTH"))
            if length is None:
                self.close_connection = True  # where this body ends is unknown
                length = 0
            self._request_body = RequestBody(self.rfile, length)
            environ["wsgi.input"] = self._request_body
        else:
            self.close_connection = True
        return environ

    def run_wsgi(self) -> None:
        if self.headers.get("Expect", "").lower().strip(" \t") == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        self.environ = environ = self.make_environ()
        state = {"status": None, "headers": None, "sent": False, "chunked": False, "left": None}

        def start_response(status, headers, exc_info=None):
            if exc_info:
                try:
                    if state["sent"]:
                        raise exc_info[1].with_traceback(exc_info[2])
                finally:
                    exc_info = None
            elif state["headers"] is not None:
                raise AssertionError("Headers already set")
            state["status"], state["headers"] = status, headers
            return write

        def write(data: bytes) -> None:
            assert state["headers"] is not None, "write() before start_response"
            if not state["sent"]:
                self._send_head(environ, state)
            if state["left"] is not None:  # never more than the declared length (none for HEAD)
                if len(data) > state["left"]:
                    data = data[:state["left"]]
                state["left"] -= len(data)
            if data:
                self._send(b"%x\r\n" % len(data) + data + b"\r\n" if state["chunked"] else data)

        try:
            self._execute(write, start_response, state)
        except (_ClientGone, ConnectionError, socket.timeout) as exc:
            self.close_connection = True
            self.connection_dropped(exc, environ)
        except Exception as exc:  # the application failed: answer 500 if nothing was sent yet
            self.close_connection = True
            if self.server.passthrough_errors:
                raise
            if not state["sent"]:
                try:
                    self.send_response(500, "Internal Server Error")
                    self.send_header("Content-Type", "text/plain; charset=utf-8")
                    self.send_header("Content-Length", "21")
                    self.end_headers()
                    self.wfile.write(b"Internal Server Error")
                except OSError:
                    pass
            # Never the query: it may hold a SAS signature.
            self.log("error", "error on request %s %s: %r", self.command, self.path.partition("?")[0], exc)
        if self.close_connection:
            self._linger()

    def _execute(self, write, start_response, state) -> None:
        application_iter = self.server.app(self.environ, start_response)
        try:
            for data in application_iter:
                write(data)
            if not state["sent"]:
                write(b"")
            if state["chunked"]:
                self._send(b"0\r\n\r\n")
            if state["left"]:  # fewer bytes than declared: the client must not wait for the rest
                self.close_connection = True
        finally:
            if hasattr(application_iter, "close"):
                application_iter.close()
        body = self._request_body
        if body is not None and not self.close_connection and not body.drain(DRAIN_LIMIT):
            self.close_connection = True

    def _send(self, data) -> None:
        try:
            self.wfile.write(data)
        except OSError as exc:  # the client went away (a reset, TLS EOF): not the application's fault
            raise _ClientGone() from exc

    def _send_head(self, environ, state) -> None:
        code_text, _, message = state["status"].partition(" ")
        code = int(code_text)
        self.send_response(code, message)
        length = None
        for key, value in state["headers"]:
            self.send_header(key, value)
            if key.lower() == "content-length":
                length = _content_length(value)
        bodiless = environ["REQUEST_METHOD"] == "HEAD" or 100 <= code < 200 or code in (204, 304)
        if bodiless:
            state["left"] = 0
        elif length is not None:
            state["left"] = length
        else:
            state["chunked"] = True
            self.send_header("Transfer-Encoding", "chunked")
        body = self._request_body
        if body is not None and body.left > DRAIN_LIMIT:  # too much unread to drain: say so now
            self.close_connection = True
        if self.close_connection:
            self.send_header("Connection", "close")
        try:
            self.end_headers()
        except OSError as exc:
            raise _ClientGone() from exc
        state["sent"] = True

    def _linger(self) -> None:
        """Before closing, read what the client is still sending (a body not read, for a 413), so
        that the close does not reset the connection under the answer; as werkzeug does."""
        try:
            selector = selectors.DefaultSelector()
            selector.register(self.connection, selectors.EVENT_READ)
        except (OSError, ValueError):
            return
        total, reads = 0, 0
        try:
            while selector.select(timeout=0.01):
                data = self.rfile.read1(1 << 20) if hasattr(self.rfile, "read1") else self.rfile.read(1 << 20)
                total += len(data)
                reads += 1
                if not data or total >= 10_000_000_000 or reads > 10_000:
                    break
        except (OSError, ValueError):
            pass
        finally:
            selector.close()
