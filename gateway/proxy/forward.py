"""Forwarding one request to its upstream and the response back, streaming both ways.

- Small bodies with a Content-Length (up to INLINE_BODY) are read first and sent with the head
  in one write; they can be replayed on another connection. Larger and chunked bodies stream,
  with flow control both ways, so memory stays flat whatever their size.
- A target that refuses the connection or times out connecting had nothing sent to it: the
  request goes to the next target, whatever its method. A kept-alive connection that turns out
  to be closed, before any response byte, is retried on a new connection when the method is
  idempotent (RFC 9110 section 9.2.2) and the body can be replayed.
- A short response (a Content-Length up to BUFFERED_RESPONSE: most API answers) is held until
  whole and written in one go: cut before its end, the client gets a 502, not a truncated body.
  Longer and unsized ones stream, so memory stays flat.
- If the client goes away, the connection's task is cancelled and the upstream connection is
  dropped, which cancels the upstream's work as far as HTTP can.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable
from typing import Final

from auth_core import headers as h
from gateway.errors import (
    GatewayError,
    InvalidRequest,
    PayloadTooLarge,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from gateway.http.request import BodyError, Request
from gateway.http.response import CHUNKED, CONTENT_LENGTH, Response
from gateway.pipeline.exchange import Exchange
from gateway.proxy.connection import (
    ConnectTimedOut,
    ResponseTimedOut,
    UpstreamConnection,
    UpstreamError,
    stale,
)
from gateway.proxy.headers import RequestHeaders
from gateway.proxy.pool import TargetPool, UpstreamPools
from metrics.catalog import Catalog

log = logging.getLogger("gateway.proxy")

Pending = Awaitable[Response | None]

INLINE_BODY: Final = 64 * 1024
BUFFERED_RESPONSE: Final = 64 * 1024
BODYLESS_OK: Final = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "DELETE"})
_HTTP: Final = b"http"
# The header lines the gateway adds towards the upstream, built once; each after the first
# ends the line before it.
_X_FORWARDED_FOR: Final[bytes] = h.W_X_FORWARDED_FOR + b": "
_X_FORWARDED_PROTO: Final[bytes] = b"\r\n" + h.W_X_FORWARDED_PROTO + b": "
_X_REQUEST_ID: Final[bytes] = b"\r\n" + h.W_X_REQUEST_ID + b": "
# traceparent (W3C Trace Context) is written in lower case, as its spec spells it.
_TRACEPARENT: Final[bytes] = b"\r\n" + h.B_TRACEPARENT + b": "
_X_FORWARDED_HOST: Final[bytes] = h.W_X_FORWARDED_HOST + b": "
_EMPTY_BODY: Final[bytes] = h.W_CONTENT_LENGTH + b": 0\r\n"
# A C static once compiled; `time.monotonic_ns()` is an attribute look-up on the module first.
_monotonic_ns: Final = time.monotonic_ns


class ResponseAborted(Exception):
    """The response had started when the upstream failed: the client connection was cut."""

    def __init__(self, status: int, error: UpstreamError) -> None:
        super().__init__(str(error))
        self.status = status


class Forwarder:
    """The pipeline's terminal step."""

    def __init__(self, pools: UpstreamPools, catalog: Catalog, *, scheme: bytes = _HTTP) -> None:
        self.pools = pools
        self.catalog = catalog
        # X-Forwarded-Proto when no trusted proxy said otherwise: how the client reached us.
        self.scheme = scheme

    async def __call__(self, exchange: Exchange) -> Response | None:
        """Forward the request and give the answer (None: it streamed to the client)."""
        route = exchange.route
        assert route is not None
        request = exchange.request
        group = self.pools.groups.get(route.upstream)
        if group is None:  # removed by a reload while this request was on its way
            raise UpstreamUnavailable("the upstream is unavailable")
        upstream = group.upstream
        timeout = route.timeout or upstream.timeout
        method = request.method
        incoming = RequestHeaders(request.headers, route)

        # The body: none, small and read now (replayable), or streamed later.
        length = request.content_length
        body = b""
        streaming = False
        if request.body is not None:
            if length is not None and length <= INLINE_BODY:
                request.send_continue()
                body = await _read_body(request)
            else:
                streaming = True
        framing = _framing(request, method)

        start = f"{method} {exchange.upstream_path}{exchange.query} HTTP/1.1\r\n".encode()
        tried: set[TargetPool] = set()
        last_error: UpstreamError | None = None
        loop = self.pools.loop
        fresh_only = False
        while True:
            pool = group.choose(tried, loop.time())
            if pool is None:
                assert last_error is not None
                raise client_error(last_error)
            exchange.target = pool
            exchange.upstream_started = _monotonic_ns()
            conn = None if fresh_only else pool.take_idle()
            reused = conn is not None
            if conn is None:
                try:
                    conn = await pool.connect()
                except UpstreamError as exc:
                    self.count(upstream.name, exc)
                    pool.failed(loop.time())
                    tried.add(pool)
                    last_error = exc
                    continue
            head = self._head(exchange, incoming, start, pool, framing)
            conn.begin(head_only=method == "HEAD", timeout=timeout)
            try:
                if streaming:
                    conn.send(head)
                    await self._stream_body(exchange, conn)
                else:
                    conn.send(head + body if body else head)
                waiter = conn.head_pending()
                while waiter is not None:
                    await waiter
                    waiter = conn.head_pending()
                length = conn.content_length
                # Awaited only when it has to wait: an answer that came in one read is
                # complete already, and a coroutine a request is not free.
                if not conn.complete and length is not None and length <= BUFFERED_RESPONSE:
                    await conn.whole_body()
            except UpstreamError as exc:
                conn.abort()
                if reused and not streaming and stale(method, exc):
                    fresh_only = True  # a stale kept-alive connection: not the target's fault
                    continue
                raise self.upstream_failed(pool, exc) from None
            except BaseException:
                conn.abort()
                raise
            pool.succeeded()
            if conn.complete:
                return self.complete_response(exchange, pool, conn)
            return await self.respond(exchange, pool, conn)

    def _head(
        self,
        exchange: Exchange,
        incoming: RequestHeaders,
        start: bytes,
        pool: TargetPool,
        framing: bytes,
    ) -> bytes:
        """The request line and every header for the upstream, in one buffer."""
        client = exchange.client_ip.encode()
        if exchange.peer_trusted:
            forwarded_for = (
                b", ".join([*incoming.forwarded_for, exchange.peer.encode()])
                if incoming.forwarded_for
                else client
            )
            proto = incoming.forwarded_proto or self.scheme
            host = incoming.forwarded_host or incoming.host
        else:
            forwarded_for, proto, host = client, self.scheme, incoming.host
        parts = [
            start,
            *incoming.lines,
            pool.host_line,
            _X_FORWARDED_FOR,
            forwarded_for,
            _X_FORWARDED_PROTO,
            proto,
            _X_REQUEST_ID,
            exchange.request_id.encode(),
            _TRACEPARENT,
            exchange.traceparent,
            b"\r\n",
            *exchange.context_headers,
        ]
        # Appended one by one: compiled, `parts += (...)` makes a tuple and extends the list from
        # it, about twice the instructions.
        if host:
            parts.append(_X_FORWARDED_HOST)
            parts.append(host)
            parts.append(b"\r\n")
        parts.append(framing)
        parts.append(b"\r\n")
        return b"".join(parts)

    async def _stream_body(self, exchange: Exchange, conn: UpstreamConnection) -> None:
        request = exchange.request
        route = exchange.route
        assert route is not None
        assert request.body is not None
        request.send_continue()
        body = request.body
        chunked = request.chunked
        limit = route.max_body
        total = 0
        try:
            while not conn.head_received:
                try:
                    chunk = await body.read()
                except BodyError as exc:
                    raise _body_error(exc) from None
                if not chunk:
                    if chunked:
                        conn.send(b"0\r\n\r\n")
                    return
                total += len(chunk)
                if total > limit:
                    raise PayloadTooLarge(limit)
                if conn.head_received:
                    break
                conn.send(b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk)
                await conn.drain()
        except UpstreamError:
            if not conn.head_received:
                raise
        # The upstream answered before taking the whole body (its own 413, say): that answer
        # goes to the client; the rest of the body is not sent, so the connection is not reused.
        conn.keep_alive = False

    async def respond(
        self, exchange: Exchange, pool: TargetPool, conn: UpstreamConnection
    ) -> Response | None:
        """The answer whose head has arrived: whole when complete, else streamed (None)."""
        if conn.complete:
            return self.complete_response(exchange, pool, conn)
        request = exchange.request
        headers = self._response_headers(exchange, conn)
        dated = conn.dated
        status = exchange.status = exchange.upstream_status = conn.status
        stream = request.connection.start_stream(
            request, status, headers, conn.content_length, dated=dated
        )
        try:
            while True:
                chunk = await conn.read()
                if not chunk:
                    break
                exchange.sent += len(chunk)
                await stream.write(chunk)
        except UpstreamError as exc:
            conn.abort()
            self.count(pool.upstream.name, exc)
            request.connection.abort()  # a cut connection is how HTTP says "truncated"
            raise ResponseAborted(status, exc) from None
        except BaseException:
            conn.abort()
            raise
        pool.release(conn, conn.finish())
        await stream.end()
        return None

    def complete_response(
        self, exchange: Exchange, pool: TargetPool, conn: UpstreamConnection
    ) -> Response:
        """The client's answer from a complete upstream response; the connection goes back."""
        headers = self._response_headers(exchange, conn)
        body = conn.take_body()
        exchange.upstream_status = conn.status
        pool.release(conn, conn.finish())
        # Positional: a call with keywords costs pure Python about 1,500 instructions more.
        return Response(
            conn.status,
            headers,
            body,
            conn.content_length,
            conn.dated,
            exchange.request.method == "HEAD",  # headers_only
        )

    @staticmethod
    def _response_headers(
        exchange: Exchange, conn: UpstreamConnection
    ) -> list[tuple[bytes, bytes]]:
        headers = conn.headers
        headers.append((h.W_X_REQUEST_ID, exchange.request_id.encode()))
        if exchange.response_headers:
            headers += exchange.response_headers
        return headers

    def upstream_failed(self, pool: TargetPool, error: UpstreamError) -> GatewayError:
        """Count the failure against the target; what the client is told."""
        self.count(pool.upstream.name, error)
        pool.failed(self.pools.loop.time())
        return client_error(error)

    def count(self, upstream: str, error: UpstreamError) -> None:
        """One upstream failure in the metrics, by kind."""
        self.catalog.upstream_errors.inc((upstream, error.kind))


def _framing(request: Request, method: str) -> bytes:
    """The framing header for the upstream: the body's, or an empty one where the method's
    requests usually carry a body (POST, PUT, PATCH)."""
    length = request.content_length
    if request.chunked:
        return CHUNKED
    if length is not None and (length > 0 or method not in BODYLESS_OK):
        return CONTENT_LENGTH % length
    if method not in BODYLESS_OK:
        return _EMPTY_BODY
    return b""


async def _read_body(request: Request) -> bytes:
    assert request.body is not None
    try:
        return await request.body.read_all()
    except BodyError as exc:
        raise _body_error(exc) from None


def _body_error(error: BodyError) -> GatewayError:
    return InvalidRequest(error.detail, status=error.status)


def client_error(error: UpstreamError) -> GatewayError:
    # The cause (addresses, errno) is logged; the client learns only what kind of failure.
    log.warning("upstream failure: %s", error)
    if isinstance(error, ResponseTimedOut | ConnectTimedOut):
        return UpstreamTimeout("the upstream did not answer in time")
    return UpstreamUnavailable("the upstream is unavailable")
