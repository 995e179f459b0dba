"""Forwarding one request to its upstream and the response back, streaming both ways.

- Small bodies with a Content-Length (up to INLINE_BODY) are read first and sent with the head
  in one write; they can be replayed on another connection. Larger and chunked bodies stream,
  with flow control both ways, so memory stays flat whatever their size.
- A target that refuses the connection or times out connecting had nothing sent to it: the
  request goes to the next target, whatever its method. A kept-alive connection that turns out
  to be closed, before any response byte, is retried on a new connection when the method is
  idempotent (RFC 9110 section 9.2.2) and the body can be replayed.
- A response that is complete when its head arrives (most API answers) is sent as one
  aiohttp Response; the rest stream.
- If the client goes away, the handler is cancelled and the upstream connection is dropped,
  which cancels the upstream's work as far as HTTP can.
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.web import StreamResponse

from gateway import headers as h
from gateway.errors import (
    SERVER_NAME,
    GatewayError,
    PayloadTooLarge,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from gateway.pipeline.exchange import Exchange
from gateway.proxy.connection import (
    ConnectTimedOut,
    ResponseTimedOut,
    UpstreamConnection,
    UpstreamError,
)
from gateway.proxy.headers import RequestHeaders, request_head, response_headers
from gateway.proxy.pool import TargetPool, UpstreamPools
from metrics.catalog import Catalog

log = logging.getLogger("gateway.proxy")

INLINE_BODY = 64 * 1024
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
BODYLESS_OK = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "DELETE", "CONNECT"})
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class ResponseAborted(Exception):
    """The response had started when the upstream failed: the client connection was cut."""

    def __init__(self, response: StreamResponse, error: UpstreamError) -> None:
        super().__init__(str(error))
        self.response = response
        self.error = error


class Forwarder:
    """The pipeline's terminal step."""

    def __init__(self, pools: UpstreamPools, catalog: Catalog) -> None:
        self.pools = pools
        self.catalog = catalog

    async def __call__(self, exchange: Exchange) -> StreamResponse:
        route = exchange.route
        assert route is not None
        request = exchange.request
        group = self.pools.groups.get(route.upstream)
        if group is None:  # removed by a reload while this request was on its way
            raise UpstreamUnavailable("the upstream is unavailable")
        upstream = group.upstream
        timeout = route.timeout or upstream.timeout
        method = request.method
        incoming = RequestHeaders(request.raw_headers)

        # The body: none, small and read now (replayable), or streamed later.
        length = request.content_length
        streaming = False
        body = b""
        if length is not None and length > 0:
            if length <= INLINE_BODY:
                self._continue(request)
                body = await request.content.read()
            else:
                streaming = True
        elif request.body_exists:
            streaming = True  # chunked
        framing: tuple[bytes, bytes] | None
        if streaming and length is None:
            framing = (b"Transfer-Encoding", b"chunked")
        elif length is not None and (length > 0 or method not in BODYLESS_OK):
            framing = (b"Content-Length", str(length).encode())
        elif method not in BODYLESS_OK:
            framing = (b"Content-Length", b"0")
        else:
            framing = None

        target = exchange.upstream_path + exchange.query
        tried: set[TargetPool] = set()
        fresh_only = False
        last_error: UpstreamError | None = None
        loop = self.pools.loop
        while True:
            pool = group.choose(tried, loop.time())
            if pool is None:
                assert last_error is not None
                raise _client_error(last_error)
            conn = None if fresh_only else pool.take_idle()
            reused = conn is not None
            if conn is None:
                try:
                    conn = await pool.connect()
                except UpstreamError as exc:
                    self._count(upstream.name, exc)
                    pool.failed(loop.time())
                    tried.add(pool)
                    last_error = exc
                    continue
            head = request_head(
                method, target, incoming.forwarded, self._added(exchange, incoming, pool, framing)
            )
            conn.begin(head_only=method == "HEAD", timeout=timeout)
            try:
                if streaming:
                    conn.send(head)
                    await self._stream_body(exchange, conn, length is None)
                else:
                    conn.send(head + body if body else head)
                await conn.response_head()
            except UpstreamError as exc:
                conn.abort()
                replayable = not streaming and method in IDEMPOTENT
                if (
                    reused
                    and replayable
                    and not exc.received
                    and not isinstance(exc, ResponseTimedOut)
                ):
                    fresh_only = True  # a stale kept-alive connection: not the target's fault
                    continue
                self._count(upstream.name, exc)
                pool.failed(loop.time())
                raise _client_error(exc) from None
            except BaseException:
                conn.abort()
                raise
            pool.succeeded()
            return await self._respond(exchange, pool, conn)

    def _added(
        self,
        exchange: Exchange,
        incoming: RequestHeaders,
        pool: TargetPool,
        framing: tuple[bytes, bytes] | None,
    ) -> list[tuple[bytes, bytes]]:
        client = exchange.client_ip.encode()
        trusted = exchange.peer_trusted
        if trusted and incoming.forwarded_for:
            forwarded_for = b", ".join([*incoming.forwarded_for, exchange.peer.encode()])
        else:
            forwarded_for = client
        proto = incoming.forwarded_proto if trusted and incoming.forwarded_proto else None
        host = incoming.forwarded_host if trusted and incoming.forwarded_host else incoming.host
        added = [
            (b"Host", pool.target.authority.encode()),
            (b"X-Forwarded-For", forwarded_for),
            (b"X-Forwarded-Proto", proto or (b"https" if exchange.request.secure else b"http")),
            (b"X-Real-IP", client),
            (b"X-Request-Id", exchange.request_id.encode()),
            (b"traceparent", exchange.traceparent.encode()),
            *exchange.context_headers,
        ]
        if host:
            added.append((b"X-Forwarded-Host", host))
        if framing is not None:
            added.append(framing)
        return added

    @staticmethod
    def _continue(request: web.BaseRequest) -> None:
        # The client waits for this before sending the body (RFC 9110 section 10.1.1); it is
        # sent only once the route, auth and declared size have been accepted.
        expect = request.headers.get(h.EXPECT)
        if expect and expect.lower() == "100-continue" and request.version >= (1, 1):
            transport = request.transport
            if transport is not None:
                transport.write(_CONTINUE)

    async def _stream_body(
        self, exchange: Exchange, conn: UpstreamConnection, chunked: bool
    ) -> None:
        request = exchange.request
        route = exchange.route
        assert route is not None
        self._continue(request)
        content = request.content
        limit = route.max_body
        total = 0
        while True:
            if conn.head_received:
                # The upstream answered before reading everything (e.g. its own 413): stop
                # sending; the connection cannot be reused.
                conn.keep_alive = False
                return
            chunk = await content.readany()
            if not chunk:
                break
            total += len(chunk)
            if total > limit:
                raise PayloadTooLarge(limit)
            conn.send(b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk)
            await conn.drain()
        if chunked:
            conn.send(b"0\r\n\r\n")

    async def _respond(
        self, exchange: Exchange, pool: TargetPool, conn: UpstreamConnection
    ) -> StreamResponse:
        request = exchange.request
        headers = response_headers(conn.headers)
        headers[h.X_REQUEST_ID] = exchange.request_id
        if h.SERVER not in headers:
            headers[h.SERVER] = SERVER_NAME
        if conn.complete:
            body = conn.take_body()
            pool.release(conn, conn.finish())
            if request.method == "HEAD" and conn.content_length is not None:
                headers[h.CONTENT_LENGTH] = str(conn.content_length)
            return web.Response(status=conn.status, headers=headers, body=body or None)

        response = StreamResponse(status=conn.status, headers=headers)
        if conn.content_length is not None:
            response.content_length = conn.content_length
        try:
            await response.prepare(request)
            while True:
                chunk = await conn.read()
                if not chunk:
                    break
                await response.write(chunk)
        except UpstreamError as exc:
            conn.abort()
            self._count(pool.upstream.name, exc)
            if request.transport is not None:
                request.transport.abort()  # a cut connection is how HTTP says "truncated"
            raise ResponseAborted(response, exc) from None
        except BaseException:
            conn.abort()
            raise
        pool.release(conn, conn.finish())
        await response.write_eof()
        return response

    def _count(self, upstream: str, error: UpstreamError) -> None:
        self.catalog.upstream_errors.inc((upstream, error.kind))


def _client_error(error: UpstreamError) -> GatewayError:
    # The cause (addresses, errno) is logged; the client learns only what kind of failure.
    log.warning("upstream failure: %s", error)
    if isinstance(error, ResponseTimedOut | ConnectTimedOut):
        return UpstreamTimeout("the upstream did not answer in time")
    return UpstreamUnavailable("the upstream is unavailable")
