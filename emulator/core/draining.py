"""Read what a refused request left of its body before answering the next one.

A request refused before its body is read (413 for a body over the limit, 401, 404) leaves the rest of the
body unread on the connection. werkzeug would then parse those bytes as the next request and close the socket
with data still unread, and the kernel answers that with a reset: a client still sending its body never
reads the refusal (it sees "connection reset" or an SSL EOF instead). So, as HTTP servers do (a lingering
close), what is left of a Content-Length body is read and dropped once the response is written, up to a bound
beyond which the connection is simply closed.
"""
from __future__ import annotations

from typing import Callable

#: Bytes of an unread body read and dropped after the response; a longer rest is left (the connection closes).
DRAIN_LIMIT = 64 * 1024 * 1024
_CHUNK = 1 << 20


class _CountingInput:
    """The request's input stream, counting what the application reads."""

    def __init__(self, stream) -> None:
        self._stream = stream
        self.consumed = 0

    def read(self, *args):
        data = self._stream.read(*args)
        self.consumed += len(data)
        return data

    def read1(self, *args):
        data = self._stream.read1(*args)
        self.consumed += len(data)
        return data

    def readinto(self, buffer) -> int:
        count = self._stream.readinto(buffer) or 0
        self.consumed += count
        return count

    def readline(self, *args):
        data = self._stream.readline(*args)
        self.consumed += len(data)
        return data

    def __iter__(self):
        return iter(self.readline, b"")

    def __getattr__(self, name):
        return getattr(self._stream, name)


class _Drained:
    """The response iterable; when the server closes it, the unread rest of the body is read and dropped."""

    def __init__(self, response, environ: dict, counted: _CountingInput, length: int) -> None:
        self._response, self._environ, self._counted, self._length = response, environ, counted, length

    def __iter__(self):
        return iter(self._response)

    def close(self) -> None:
        try:
            if hasattr(self._response, "close"):
                self._response.close()
        finally:
            left = self._length - self._counted.consumed
            if 0 < left <= DRAIN_LIMIT:
                try:
                    while left > 0:
                        data = self._counted.read(min(_CHUNK, left))
                        if not data:
                            break
                        left -= len(data)
                except OSError:
                    pass  # the client went away: nothing left to protect


def draining(app: Callable) -> Callable:
    """WSGI middleware: ``app`` whose requests' unread Content-Length bodies are drained after the response."""
    def wrapped(environ, start_response):
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length <= 0 or environ.get("wsgi.input_terminated"):
            return app(environ, start_response)
        counted = _CountingInput(environ["wsgi.input"])
        environ["wsgi.input"] = counted
        return _Drained(app(environ, start_response), environ, counted, length)
    return wrapped
