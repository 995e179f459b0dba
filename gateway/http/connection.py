"""One client connection: HTTP/1.1 parsed by httptools (llhttp), requests served in order.

Why not aiohttp's server: on the bench machine its low-level server, with the same lean
upstream pool behind it, answered 25.6k requests/s on one core; this protocol, with the same
pool, 66k (bench/README.md). A request here costs one Request object and no task of its own:
the connection's single task serves its requests one after another.

llhttp is strict: it refuses Content-Length with Transfer-Encoding, duplicate or malformed
lengths, unknown transfer codings, obsolete line folding, bare LF, NUL and other control
characters, which closes the request-smuggling doors (RFC 9112 section 11.2). On top of it
this module bounds the size and count of headers, the time to send a head, the idle time
between requests and the pause inside a body, and answers every refusal as problem+json.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Final, Protocol, cast

import httptools

from auth_core import headers as h
from gateway.http.limits import Limits
from gateway.http.request import Body, BodyError, Header, Request, Upgraded
from gateway.http.response import (
    CHUNKED,
    CONNECTION_CLOSE,
    CONTENT_LENGTH,
    LENGTH_LINES,
    Response,
    ResponseHeaders,
    ResponseStream,
    bodyless,
    content_length_line,
    encode_head,
)
from gateway.problem import PROBLEM_JSON, SERVER_NAME, problem_body
from gateway.tracing import new_request_id

log = logging.getLogger("gateway.http")

MAX_QUEUED: Final = 16  # pipelined requests parsed ahead of the one being served
# Reading and dropping the rest of a body after answering without it (see `_linger`): until the
# client closes, nothing came for LINGER_QUIET seconds, or LINGER_TIME in all (nginx's
# lingering_timeout and lingering_time).
LINGER_QUIET: Final = 5.0
LINGER_TIME: Final = 30.0
_LINE_CONTEXT: Final = 16 * 1024  # bytes kept from the previous read to find a split request line
# What ends a request line after its target: concatenated, not formatted (bytes % is slower).
_HTTP_11_END: Final = b" HTTP/1.1\r\n"
_HTTP_10_END: Final = b" HTTP/1.0\r\n"
_SINGLETONS: Final = frozenset({h.B_HOST, h.B_AUTHORIZATION, h.B_X_API_KEY, h.B_CONTENT_TYPE})
# The head of a refusal, filled with its status, phrase, body length and request id.
_REFUSAL_HEAD: Final[bytes] = (
    b"HTTP/1.1 %d %s\r\n"
    + h.W_CONTENT_TYPE
    + b": "
    + PROBLEM_JSON.encode()
    + b"\r\n"
    + h.W_CONTENT_LENGTH
    + b": %d\r\n"
    + h.W_X_REQUEST_ID
    + b": %s\r\n"
    + h.W_SERVER
    + b": "
    + SERVER_NAME.encode()
    + b"\r\n"
    + CONNECTION_CLOSE
    + b"\r\n"
)


Handler = Callable[[Request], Awaitable[Response | None]]


class Server(Protocol):
    """What a connection needs of its server (gateway/http/server.py), which makes it."""

    loop: asyncio.AbstractEventLoop
    limits: Limits
    handler: Handler
    draining: bool
    date_header: bytes
    extra_headers: bytes

    def connection_made(self, connection: HttpConnection) -> bool:
        """Admit it; False when its peer address is at its limit already."""

    def connection_lost(self, connection: HttpConnection) -> None: ...

    def refused(self, status: int, request_id: str, peer: str) -> None: ...


class Refusal(Exception):
    """A request refused while parsing; answered, then the connection closes."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def _parser_reason(exc: Exception) -> str:
    # llhttp's reasons name the rule broken, never echo the bytes: safe to show and log.
    text = str(exc).strip() or "malformed request"
    return text.split("\n", 1)[0]


class HttpConnection(asyncio.Protocol):
    """Parses requests off the socket and serves them one at a time."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.loop = server.loop
        self._max_head_size = server.limits.max_head_size
        self._max_headers = server.limits.max_headers
        self.transport: asyncio.Transport | None = None
        self.peer = ""
        self.parser = httptools.HttpRequestParser(self)
        self.queue: deque[Request | Refusal] = deque()
        self.task: asyncio.Task[None] | None = None
        self.closing = False  # serve what is queued, then close
        self.busy = False
        self.idle_since = 0.0
        self.counted = False  # counted in HttpServer.per_address (given back when lost)
        self._linger_until = 0.0  # lingering: drop what comes until then (0: not lingering)
        self._linger_last = 0.0
        self.head_started = 0.0  # loop time a request head began arriving (0: not in a head)
        self.current: Request | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._head_bytes = 0  # bytes fed while a head was incomplete (what httptools buffers)
        # Between a chunk's size line and its data: after the last chunk (size 0), its trailer
        # fields, which are counted as a head's bytes and dropped (on_chunk_header).
        self._chunk_meta = False
        self._head_size = 0  # request line and headers of the head being parsed, exactly
        self._chunk = b""  # the data being fed, and the end of the data before it
        self._previous = b""
        self._url: list[bytes] = []
        self._headers: list[Header] = []
        self._index: dict[bytes, bytes] = {}
        self._duplicate: bytes | None = None
        self._body: Body | None = None  # the body being parsed
        self._paused_for_body: Body | None = None
        self._paused_for_queue = False
        self._reading_paused = False
        self._writing_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self._started = False  # the current response's head was written
        self._keep = False  # the current response keeps the connection
        self._stream: ResponseStream | None = None
        self.upgraded: Upgraded | None = None  # what took the connection over after a 101
        self.upgrade_rest = b""  # bytes after an upgrade request's head (the first frames)
        self._upgraded = False

    # -- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and peer:
            host = str(peer[0])
            # A dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d.
            self.peer = host[7:] if host.startswith("::ffff:") and "." in host else host
        self.idle_since = self.loop.time()
        if not self.server.connection_made(self):
            # Over the address's connection limit: refused at once, nothing read or written.
            self.closing = True
            self.transport.close()
            return
        self.task = self.loop.create_task(self._serve())

    def data_received(self, data: bytes) -> None:
        upgraded = self.upgraded
        if upgraded is not None:
            upgraded.from_client(data)
            return
        if self._upgraded:
            # After an upgrade request, until a 101 hands them over (or the answer closes).
            # Still read (so that a client going away is noticed), but hold at most 64 KiB.
            self.upgrade_rest += data
            if len(self.upgrade_rest) >= 65536 and self.transport is not None:
                self._reading_paused = True
                self.transport.pause_reading()
            return
        if self.closing and not self.busy and not self.queue:
            self._linger_last = self.loop.time()  # dropped; when lingering, the client is there
            return
        self._chunk = data
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self.upgrade_rest = data[upgrade.args[0] :]
            self._upgrade_received()
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if isinstance(cause, Refusal):
                self._refuse(cause)
            else:
                self._refuse(Refusal(400, "malformed request"))
        except httptools.HttpParserError as exc:
            self._refuse(Refusal(400, _parser_reason(exc)))
        else:
            if self.head_started:
                # httptools holds a partial header until it is complete; bound that too.
                self._head_bytes += len(data)
                if self._head_bytes > self.server.limits.max_head_size:
                    self._refuse(Refusal(431, "the request head is too large"))
            elif self._chunk_meta:
                # The same for a trailer field: what httptools holds is the line not yet ended,
                # the data after its last CRLF (a complete field is counted by on_header).
                end = data.rfind(b"\r\n")
                self._head_bytes = self._head_bytes + len(data) if end < 0 else len(data) - end - 2
                if self._head_bytes > self.server.limits.max_head_size:
                    self._refuse(Refusal(431, "the request's trailer fields are too large"))
        self._previous = data[-_LINE_CONTEXT:]
        self._chunk = b""

    def eof_received(self) -> bool:
        # The client closed its side: nothing more will come. A request still being served
        # is abandoned (as nginx does), which cancels its upstream exchange.
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.server.connection_lost(self)
        if self.upgraded is not None:
            self.upgraded.client_lost()
        if self._body is not None:
            self._body.fail(BodyError(499, "the client went away"))
        drain = self._drain_waiter
        if drain is not None and not drain.done():
            drain.set_exception(ConnectionResetError("the client went away"))
        if self.task is not None and not self.task.done():
            self.task.cancel()

    def pause_writing(self) -> None:
        self._writing_paused = True
        if self.upgraded is not None:
            self.upgraded.client_paused(True)

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self.upgraded is not None:
            self.upgraded.client_paused(False)
        drain = self._drain_waiter
        if drain is not None and not drain.done():
            drain.set_result(None)

    # -- httptools callbacks ----------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.head_started = self.loop.time()
        self._head_bytes = 0
        self._head_size = 0
        self._url = []
        self._headers = []
        self._index = {}
        self._duplicate = None

    def on_url(self, url: bytes) -> None:
        self._url.append(url)
        self._head_size += len(url)
        if self._head_size > self._max_head_size:
            raise Refusal(431, "the request head is too large")

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._chunk_meta:
            # A trailer field, after a chunked body: dropped (RFC 9112 section 7.1.2 lets a
            # recipient that removes the chunked coding discard them; the body goes upstream
            # re-chunked without them). Never added to the request's headers, which the
            # request may already be on its way with. They count towards the head's size.
            self._head_size += len(name) + len(value) + 4
            if self._head_size > self._max_head_size:
                raise Refusal(431, "the request's trailer fields are too large")
            return
        headers = self._headers
        if len(headers) >= self._max_headers:
            raise Refusal(431, "too many request headers")
        self._head_size += len(name) + len(value) + 4
        if self._head_size > self._max_head_size:
            raise Refusal(431, "the request head is too large")
        lowered = name.lower()
        headers.append((lowered, name, value))
        index = self._index
        if lowered in index:
            if lowered in _SINGLETONS:
                self._duplicate = lowered
        else:
            index[lowered] = value

    def on_headers_complete(self) -> None:
        self.head_started = 0.0
        parser = self.parser
        version = parser.get_http_version()
        if version != "1.1" and version != "1.0":
            raise Refusal(400, f"HTTP/{version} is not supported")
        if self._duplicate is not None:
            raise Refusal(400, f"more than one {self._duplicate.decode()} header")
        url = self._url[0] if len(self._url) == 1 else b"".join(self._url)
        method = parser.get_method().decode()
        # llhttp also reads RTSP/1.0 and ICE/1.0 request lines, and reports them as version
        # 1.0: check the line says HTTP. It is in the data being fed, or began just before.
        # Usually the request line opens the data: comparing there first is a memcmp, where
        # searching the data cost about 2,500 instructions a request (callgrind).
        marker = url + (_HTTP_11_END if version == "1.1" else _HTTP_10_END)
        chunk = self._chunk
        if (
            not chunk.startswith(marker, len(method) + 1)
            and marker not in chunk
            and marker not in self._previous + chunk
        ):
            raise Refusal(400, "not an HTTP request line")
        index = self._index
        if version == "1.1" and h.B_HOST not in index:
            raise Refusal(400, "HTTP/1.1 requests must carry a Host header")
        # `index.get(...)` each time, not bound to a local: compiled, a direct dict look-up,
        # where the bound method was an object made and called through Python's call protocol.
        coding = index.get(h.B_TRANSFER_ENCODING)
        if coding is not None and coding.strip().lower() != b"chunked":
            # llhttp finds other codings wrong only after this callback, when the request
            # would already be queued; refuse here so nothing of it goes upstream.
            raise Refusal(400, "the only transfer coding accepted is chunked")
        request = Request(
            self,
            method,
            url.decode("latin-1"),
            version,
            self._headers,
            index,
            parser.should_keep_alive(),
        )
        if coding is not None:
            request.chunked = True
            request.body = self._body = Body(self)
        else:
            length = index.get(h.B_CONTENT_LENGTH)
            if length is not None:
                request.content_length = int(length)  # llhttp checked it is digits
                if request.content_length > 0:
                    request.body = self._body = Body(self)
        if request.body is not None:
            request.body.last_data = self.loop.time()
            expect = index.get(h.B_EXPECT)
            if expect is not None and version == "1.1" and expect.lower() == b"100-continue":
                request.expect_continue = True
        queue = self.queue
        queue.append(request)
        if len(queue) > MAX_QUEUED:
            self._paused_for_queue = True
            self._apply_reading()
        if not self.busy:
            self._wake()

    def on_chunk_header(self) -> None:
        if not self._chunk_meta:
            self._chunk_meta = True
            self._head_bytes = 0

    def on_chunk_complete(self) -> None:
        self._chunk_meta = False

    def on_body(self, data: bytes) -> None:
        self._chunk_meta = False
        body = self._body
        if body is not None:
            body.last_data = self.loop.time()
            body.feed(data)

    def on_message_complete(self) -> None:
        self._chunk_meta = False
        body = self._body
        if body is not None:
            body.feed_eof()
            self._body = None

    # -- reading control ----------------------------------------------------------------------

    def pause_reading(self, body: Body) -> None:
        self._paused_for_body = body
        self._apply_reading()

    def resume_reading(self, body: Body) -> None:
        if self._paused_for_body is body:
            self._paused_for_body = None
            self._apply_reading()

    def _apply_reading(self) -> None:
        transport = self.transport
        if transport is None or self.upgraded is not None:
            return
        paused = (
            self._paused_for_body is not None
            or self._paused_for_queue
            or (self.closing and not self._upgraded and not self._linger_until)
        )
        if paused and not self._reading_paused:
            self._reading_paused = True
            transport.pause_reading()
        elif not paused and self._reading_paused:
            self._reading_paused = False
            transport.resume_reading()

    def _upgrade_received(self) -> None:
        self._upgraded = True
        # Protocol upgrades (h2c, websocket on a route that does not allow it) are not
        # forwarded: the request is answered as an ordinary one and the connection closed,
        # since what follows on it is not HTTP/1.1.
        if self.queue:
            last = self.queue[-1]
            if isinstance(last, Request):
                last.upgrade = True
                last.keep_alive = False
        self.closing = True
        self._apply_reading()

    def _refuse(self, refusal: Refusal) -> None:
        if self.closing and self.queue and isinstance(self.queue[-1], Refusal):
            return
        log.debug("refused a request from %s: %s", self.peer, refusal.detail)
        self.head_started = 0.0
        self.closing = True
        if self._body is not None:
            # The request is already queued or in hand: its handler answers the refusal
            # when it reads the body; the connection closes after that answer.
            self._body.fail(BodyError(refusal.status, refusal.detail))
            self._body = None
            self._apply_reading()
            return
        self.queue.append(refusal)
        self._apply_reading()
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- serving ------------------------------------------------------------------------------

    async def _serve(self) -> None:
        handler = self.server.handler
        queue = self.queue
        try:
            while True:
                if not queue:
                    if self.closing or self.transport is None:
                        return
                    self.idle_since = self.loop.time()
                    self._waiter = self.loop.create_future()
                    try:
                        await self._waiter
                    finally:
                        self._waiter = None
                    continue
                item = queue.popleft()
                if self._paused_for_queue and len(queue) <= MAX_QUEUED // 2:
                    self._paused_for_queue = False
                    self._apply_reading()
                if isinstance(item, Refusal):
                    self._write_refusal(item)
                    return
                self.current = item
                self.busy = True
                self._started = False
                self._stream = None
                try:
                    response = await handler(item)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("unhandled error serving a request from %s", self.peer)
                    if self._started:
                        self.abort()
                        return
                    response = _internal_error()
                if self.upgraded is not None:
                    await self.upgraded.wait()  # the connection is the upgraded protocol's now
                    return
                if response is not None:
                    self.write_response(item, response)
                elif not self._stream_ended():
                    self.abort()  # a stream not ended is a truncated body: say so by cutting
                    return
                self.busy = False
                self.current = None
                if not self._keep:
                    return
        except asyncio.CancelledError:
            pass
        finally:
            self.busy = False
            self.current = None
            self.close()

    def _stream_ended(self) -> bool:
        stream = self._stream
        return stream is not None and stream._ended

    def _keep_alive(self, request: Request) -> bool:
        body = request.body
        return (
            request.keep_alive
            and not self.closing
            and not self.server.draining
            and (body is None or body.complete)
        )

    @property
    def response_started(self) -> bool:
        """The current response's head is on the wire: an error can no longer be sent."""
        return self._started

    def write_response(self, request: Request, response: Response) -> None:
        """Write a complete response in one go."""
        keep = self._keep = self._keep_alive(request)
        status = response.status
        body = response.body
        method = request.method
        # bodyless(), spelt out: a call less on every answer (pure Python).
        if method == "HEAD" or status < 200 or status == 204 or status == 304:
            if method == "HEAD" and response.content_length is not None:
                framing = content_length_line(response.content_length)
            elif method == "HEAD" and response.headers_only:
                framing = b""  # an upstream's HEAD answer without a length: say none
            elif status < 200 or status in (204, 304):
                framing = b""
            else:
                framing = content_length_line(len(body))
            body = b""
        else:
            length = len(body)
            framing = LENGTH_LINES[length] if length < 4096 else CONTENT_LENGTH % length
        date = None if response.dated else self.server.date_header
        head = encode_head(
            request, status, response.headers, framing, keep, date, self.server.extra_headers
        )
        self._started = True
        transport = self.transport
        if transport is None:
            return
        if len(body) > 16384:
            transport.writelines((head, body))
        else:
            transport.write(head + body if body else head)

    def start_stream(
        self,
        request: Request,
        status: int,
        headers: ResponseHeaders,
        content_length: int | None,
        *,
        dated: bool = False,
    ) -> ResponseStream:
        """Write a response head; the body follows through the returned stream."""
        keep = self._keep_alive(request)
        chunked = False
        if bodyless(request.method, status):
            framing = (
                content_length_line(content_length)
                if content_length is not None and request.method == "HEAD"
                else b""
            )
        elif content_length is not None:
            framing = content_length_line(content_length)
        elif request.version == "1.1":
            framing = CHUNKED
            chunked = True
        else:
            framing = b""  # HTTP/1.0: the body ends when the connection does
            keep = False
        self._keep = keep
        date = None if dated else self.server.date_header
        extra = self.server.extra_headers
        self.write_raw(encode_head(request, status, headers, framing, keep, date, extra))
        self._started = True
        self._stream = ResponseStream(self, request, status, chunked)
        return self._stream

    def write_raw(self, data: bytes) -> None:
        transport = self.transport
        if transport is not None:
            transport.write(data)

    async def drain(self) -> None:
        """Wait while the client is slow to take what was written (flow control)."""
        if self.transport is None:
            raise ConnectionResetError("the client went away")
        if not self._writing_paused:
            return
        self._drain_waiter = self.loop.create_future()
        try:
            await self._drain_waiter
        finally:
            self._drain_waiter = None

    def _write_refusal(self, refusal: Refusal) -> None:
        request_id = new_request_id()
        body = problem_body(refusal.status, "invalid_request", refusal.detail, request_id)
        self.server.refused(refusal.status, request_id, self.peer)
        phrase = _REFUSAL_PHRASES.get(refusal.status, "Bad Request")
        head = _REFUSAL_HEAD % (refusal.status, phrase.encode(), len(body), request_id.encode())
        self._keep = False
        self.write_raw(head + body)

    # -- timeouts (called by the server's sweep) ----------------------------------------------

    def check_timeouts(self, now: float) -> None:
        limits = self.server.limits
        if self._linger_until:
            if now > self._linger_until or now - self._linger_last > LINGER_QUIET:
                self._end_linger()
            return
        if self.head_started and now - self.head_started > limits.header_timeout:
            self._refuse(Refusal(408, "the request head took too long to arrive"))
            if not self.busy:
                self._wake()
            return
        if not self.busy and not self.queue and not self.head_started:
            # A new connection has the header timeout to begin its first request (a socket that
            # sends nothing, or only blank lines, is closed as soon as a slow head would be);
            # between requests on a kept-alive one, the keep-alive timeout applies. `_url` stays
            # empty until a first request line is parsed: telling the two apart costs the
            # request path nothing.
            limit = limits.keepalive_timeout if self._url else limits.header_timeout
            if now - self.idle_since > limit:
                self.close()
            return
        current = self.current
        body = current.body if current is not None else None
        if body is not None and body.waiting and now - body.last_data > limits.body_timeout:
            body.fail(BodyError(408, "the request body stopped arriving"))

    def close(self) -> None:
        """Close after what was written has been sent (lingering if the client may still be
        sending a body)."""
        self.closing = True
        transport = self.transport
        if transport is None or transport.is_closing() or self._linger_until:
            return
        body = self._body
        if (
            body is not None
            and self.upgraded is None
            and not self._upgraded
            # The client's bytes wait unread, or it was sending lately (not a stalled body).
            and (self._reading_paused or self.loop.time() - body.last_data < LINGER_QUIET)
        ):
            self._linger(transport)
            return
        transport.close()

    def _linger(self, transport: asyncio.Transport) -> None:
        """A request was answered before its body was read (an upstream timeout, 413, ...): the
        client may still be sending. Closing with its bytes unread makes the kernel reset the
        connection, and a reset can destroy the answer before the client reads it (RFC 9112
        section 9.6). So: end our side after the answer, read and drop what still comes, and
        close when the client does (eof_received) or the linger limits pass (check_timeouts)."""
        if not transport.can_write_eof():
            transport.close()
            return
        now = self.loop.time()
        self._linger_until = now + LINGER_TIME
        self._linger_last = now
        self._body = None
        self._paused_for_body = None
        transport.write_eof()
        if self._reading_paused:
            self._reading_paused = False
            transport.resume_reading()

    def _end_linger(self) -> None:
        transport = self.transport
        if transport is not None:
            transport.abort()  # what is unread no longer matters; do not wait for more

    def take_over(self, upgraded: Upgraded, head: bytes) -> None:
        """Answer the upgrade with `head` (the 101) and hand the connection to `upgraded`."""
        transport = self.transport
        if transport is None:
            upgraded.client_lost()
            return
        self._started = True
        transport.write(head)
        self.upgraded = upgraded
        rest, self.upgrade_rest = self.upgrade_rest, b""
        upgraded.start(rest)
        if self._reading_paused:
            self._reading_paused = False
            transport.resume_reading()

    def abort(self) -> None:
        """Drop the connection now (an upgraded protocol is told first: a websocket says it is
        going away)."""
        self.closing = True
        if self.upgraded is not None:
            self.upgraded.shut_down()
        transport = self.transport
        if transport is not None:
            transport.abort()

    def close_if_idle(self) -> bool:
        """For draining: close now if no request is in progress or waiting."""
        if self._linger_until:
            self._end_linger()  # shutting down: no waiting for a client to finish its body
            return True
        if not self.busy and not self.queue:
            self.close()
            if self.task is not None and not self.task.done():
                self.task.cancel()
            return True
        self.closing = True
        return False


_REFUSAL_PHRASES = {
    400: "Bad Request",
    408: "Request Timeout",
    413: "Content Too Large",
    431: "Request Header Fields Too Large",
}


def _internal_error() -> Response:
    request_id = new_request_id()
    return Response(
        500,
        [
            (h.W_CONTENT_TYPE, PROBLEM_JSON.encode()),
            (h.W_X_REQUEST_ID, request_id.encode()),
            (h.W_SERVER, SERVER_NAME.encode()),
        ],
        problem_body(
            500, "internal_error", "the gateway could not handle this request", request_id
        ),
    )
