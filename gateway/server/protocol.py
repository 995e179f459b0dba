"""aiohttp's low-level server, with the two things a public edge needs that it lacks:

- errors found while parsing a request (malformed, smuggling attempts, oversized headers)
  answered as problem+json like every other error, without echoing the offending bytes and
  without logging them (they may hold credentials);
- a limit on the time a client may take to send a request head (slowloris): a connection
  notes when the first byte of a head arrived, and a sweep closes those that took too long.

Both rely on aiohttp's RequestHandler internals (`_messages`, `_request_in_progress`); the
pinned major version (<4) keeps them stable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiohttp import http_exceptions, web
from aiohttp.web_protocol import RequestHandler

from gateway.errors import PROBLEM_JSON, SERVER_NAME, problem_body
from gateway.tracing import new_request_id
from metrics.registry import Gauge

log = logging.getLogger("gateway.server")

SWEEP_INTERVAL = 1.0


def _safe_reason(message: str | None) -> str:
    # aiohttp's messages quote the offending bytes (which may hold a credential) after the
    # reason: keep the reason only.
    lines = (message or "").strip().splitlines()
    reason = lines[0] if lines else ""
    reason = reason.split("'", 1)[0].split('"', 1)[0].rstrip(" :")
    return reason or "malformed request"


class GatewayRequestHandler(RequestHandler):
    """One client connection."""

    head_started = 0.0  # loop time the first byte of a pending request head arrived

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        manager: Any = self._manager
        if manager is not None:
            manager.active.inc()

    def connection_lost(self, exc: BaseException | None) -> None:
        manager: Any = self._manager
        if manager is not None:
            manager.active.dec()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self.head_started and not self._request_in_progress:
            self.head_started = self._loop.time()
        super().data_received(data)
        if self._messages or self._request_in_progress:
            self.head_started = 0.0

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:
            raise ConnectionError("response already started")
        request_id = new_request_id()
        if status >= 500:
            log.error("unhandled error, request %s", request_id, exc_info=exc)
            code, detail = "internal_error", "the gateway could not handle this request"
        else:
            code = "invalid_request"
            detail = _safe_reason(message)
            if isinstance(exc, http_exceptions.LineTooLong):
                status, detail = 431, "a request line or header is too large"
            log.debug("refused a malformed request (%s): %s", request_id, detail)
        response = web.Response(
            status=status,
            body=problem_body(status, code, detail, request_id),
            content_type=PROBLEM_JSON,
            headers={"X-Request-Id": request_id, "Server": SERVER_NAME},
        )
        response.force_close()
        return response

    def head_overdue(self, now: float, limit: float) -> bool:
        return bool(self.head_started) and now - self.head_started > limit

    def refuse_slow_head(self) -> None:
        """Answer 408 and close: the client took too long to send its request head."""
        transport = self.transport
        if transport is None:
            return
        body = problem_body(
            408, "invalid_request", "the request head took too long to arrive", new_request_id()
        )
        head = (
            "HTTP/1.1 408 Request Timeout\r\n"
            f"Content-Type: {PROBLEM_JSON}\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
        with contextlib.suppress(Exception):
            transport.write(head + body)
        self.force_close()


class GatewayServer(web.Server):
    """aiohttp's low-level Server making GatewayRequestHandlers."""

    def __init__(self, *args: Any, active: Gauge, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.active = active

    def __call__(self) -> GatewayRequestHandler:
        return GatewayRequestHandler(self, loop=self._loop, **self._kwargs)

    async def sweep_slow_heads(self, limit: float) -> None:
        """Close connections whose request head is overdue, forever (cancel to stop)."""
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            now = self._loop.time()
            for handler in list(self._connections):
                if isinstance(handler, GatewayRequestHandler) and handler.head_overdue(now, limit):
                    log.info("closed a connection whose request head took over %gs", limit)
                    handler.refuse_slow_head()
