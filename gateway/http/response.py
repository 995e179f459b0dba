"""Responses: complete ones written in one go, and streams (Content-Length or chunked).

Headers are (name, value) byte pairs; the gateway adds framing (`Content-Length`,
`Transfer-Encoding`) and `Connection` itself, so a handler never sets them.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import TYPE_CHECKING, Final

from auth_core import headers as h

if TYPE_CHECKING:
    from gateway.http.request import Connection, Request

ResponseHeaders = list[tuple[bytes, bytes]]

# The header lines the gateway writes itself, built once (this is the hottest write path).
_DATE: Final[bytes] = h.W_DATE + b": "
CONNECTION_CLOSE: Final[bytes] = h.W_CONNECTION + b": close\r\n"
_CONNECTION_KEEP_ALIVE: Final[bytes] = h.W_CONNECTION + b": keep-alive\r\n"
CONTENT_LENGTH: Final[bytes] = h.W_CONTENT_LENGTH + b": %d\r\n"
# The Content-Length lines of the lengths answers usually have, made once: `CONTENT_LENGTH % n`
# is a bytes format (about 1,000 instructions in pure Python, a look-up here about 100).
LENGTH_LINES: Final = tuple(CONTENT_LENGTH % n for n in range(4096))  # n < 4096


def content_length_line(length: int) -> bytes:
    """The `Content-Length: n` header line."""
    return LENGTH_LINES[length] if 0 <= length < 4096 else CONTENT_LENGTH % length


CHUNKED: Final[bytes] = h.W_TRANSFER_ENCODING + b": chunked\r\n"

_STATUS_LINES_11: Final = {
    status.value: f"HTTP/1.1 {status.value} {status.phrase}\r\n".encode() for status in HTTPStatus
}
_STATUS_LINES_10: Final = {
    status.value: f"HTTP/1.0 {status.value} {status.phrase}\r\n".encode() for status in HTTPStatus
}


def status_line(version: str, status: int) -> bytes:
    lines = _STATUS_LINES_10 if version == "1.0" else _STATUS_LINES_11
    line = lines.get(status)
    if line is None:
        line = f"HTTP/{'1.0' if version == '1.0' else '1.1'} {status} Status\r\n".encode()
    return line


def bodyless(method: str, status: int) -> bool:
    """RFC 9110 section 6.4.1: HEAD answers, 1xx, 204 and 304 carry no body."""
    return method == "HEAD" or status < 200 or status in (204, 304)


class Response:
    """A complete response. For HEAD, `content_length` keeps the length a GET would have."""

    __slots__ = ("body", "content_length", "dated", "headers", "headers_only", "status")

    def __init__(
        self,
        status: int,
        headers: ResponseHeaders | None = None,
        body: bytes = b"",
        content_length: int | None = None,
        dated: bool = False,
        headers_only: bool = False,
    ) -> None:
        self.status = status
        self.headers: ResponseHeaders = headers if headers is not None else []
        self.body = body
        self.content_length = content_length
        # `dated`: the headers carry a Date already (an upstream's); otherwise one is added,
        # as RFC 9110 section 6.6.1 asks of a recipient with a clock.
        self.dated = dated
        # `headers_only`: relayed from an upstream's answer to HEAD; without `content_length`
        # no length is known, and none is claimed (RFC 9110 section 8.6).
        self.headers_only = headers_only


def encode_head(
    request: Request,
    status: int,
    headers: ResponseHeaders,
    framing: bytes,
    keep_alive: bool,
    date: bytes | None,
    extra: bytes = b"",
) -> bytes:
    """Status line, headers, framing header(s) and the blank line; `date` when the headers
    have none; `extra`, the server's own header lines, pre-encoded."""
    # The usual status line looked up here: status_line() is a call more (pure Python).
    line = _STATUS_LINES_11.get(status) if request.version == "1.1" else None
    parts = [line if line is not None else status_line(request.version, status)]
    for name, value in headers:
        # Appended one by one (compiled, each a PyList_Append): `parts += (...)` made a tuple
        # and extended the list from it, about twice the instructions (callgrind).
        parts.append(name)
        parts.append(b": ")
        parts.append(value)
        parts.append(b"\r\n")
    if date is not None:
        parts += (_DATE, date, b"\r\n")
    if extra:
        parts.append(extra)
    parts.append(framing)
    if not keep_alive:
        parts.append(CONNECTION_CLOSE)
    elif request.version == "1.0":
        parts.append(_CONNECTION_KEEP_ALIVE)
    parts.append(b"\r\n")
    return b"".join(parts)


class ResponseStream:
    """A response whose body is written piece by piece, with flow control."""

    __slots__ = ("_chunked", "_connection", "_ended", "_no_body", "request", "status")

    def __init__(
        self, connection: Connection, request: Request, status: int, chunked: bool
    ) -> None:
        self._connection = connection
        self.request = request
        self.status = status
        self._chunked = chunked
        self._no_body = bodyless(request.method, status)
        self._ended = False

    async def write(self, data: bytes) -> None:
        if not data or self._no_body:
            return
        if self._chunked:
            self._connection.write_raw(b"%x\r\n%b\r\n" % (len(data), data))
        else:
            self._connection.write_raw(data)
        await self._connection.drain()

    async def end(self) -> None:
        if self._ended:
            return
        self._ended = True
        if self._chunked and not self._no_body:
            self._connection.write_raw(b"0\r\n\r\n")
