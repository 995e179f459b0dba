"""The callback path: a bodiless request forwarded on a kept-alive connection and answered
from the upstream connection's own callbacks.

Most API traffic is bodiless requests with small answers. On the coroutine path each one costs
the connection task's wake-up, three coroutines, two futures and a second task step when the
upstream answers. Here the request is sent from the client parser's callback
(HttpConnection.start) and the answer written from the upstream parser's
(UpstreamConnection.listener): no task, future or coroutine.

What does not fit goes on in the coroutine path, from where this one stopped:
- a response that has to stream (no length, or longer than BUFFERED_RESPONSE) once its head is in;
- a kept-alive connection found closed before any answer, retried on a new connection;
- the client going away cancels the exchange and drops the upstream connection, as there.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Protocol

from gateway.errors import GatewayError
from gateway.http.response import Response
from gateway.pipeline.exchange import Exchange
from gateway.proxy.connection import UpstreamConnection, stale
from gateway.proxy.pool import TargetPool

if TYPE_CHECKING:
    from gateway.proxy.forward import Forwarder

BUFFERED_RESPONSE = 64 * 1024  # longer answers stream, so memory stays flat
# An answer held until whole that fails before its end is a 502: nothing of it was sent.


class Outcomes(Protocol):
    """Where a request served by callbacks ends (the gateway records it and answers)."""

    def respond(self, exchange: Exchange, response: Response) -> None:
        """The answer is ready."""

    def refuse(self, exchange: Exchange, error: GatewayError) -> None:
        """The request failed: answer with the error's problem."""

    def abandon(self, exchange: Exchange) -> None:
        """The client went away (499); nothing is written."""

    def resume(self, exchange: Exchange, pending: Awaitable[Response | None]) -> None:
        """Go on in a task with `pending`, which gives the answer (None: it streamed)."""


class CallbackExchange:
    """One request on the callback path, from the request sent to the answer."""

    __slots__ = ("conn", "deadline", "exchange", "forwarder", "outcomes", "pool")

    def __init__(
        self,
        forwarder: Forwarder,
        outcomes: Outcomes,
        exchange: Exchange,
        pool: TargetPool,
        conn: UpstreamConnection,
        deadline: float,
    ) -> None:
        self.forwarder = forwarder
        self.outcomes = outcomes
        self.exchange = exchange
        self.pool = pool
        self.conn = conn
        conn.listener = self
        conn.deadline = deadline
        conn.watchdog.waiting.add(conn)

    def progress(self) -> None:
        conn = self.conn
        if conn.complete and conn.error is None:
            self._detach()
            self.pool.succeeded()
            response = self.forwarder.complete_response(self.exchange, self.pool, conn)
            self.outcomes.respond(self.exchange, response)
        elif conn.error is not None:
            self._failed()
        elif conn.head_received:
            length = conn.content_length
            if length is None or length > BUFFERED_RESPONSE:
                self._detach()
                self.pool.succeeded()
                pending = self.forwarder.respond(self.exchange, self.pool, conn)
                self.outcomes.resume(self.exchange, pending)
            # else: a short body still arriving; the head's deadline still stands

    def cancel(self) -> None:
        """The client went away: drop the upstream connection (as the coroutine path does)."""
        self._detach()
        self.conn.abort()
        self.outcomes.abandon(self.exchange)

    def _failed(self) -> None:
        conn = self.conn
        error = conn.error
        assert error is not None
        self._detach()
        conn.abort()
        exchange = self.exchange
        forwarder = self.forwarder
        if stale(exchange.request.method, error):
            # A kept-alive connection the upstream had closed: send again on a new one.
            self.outcomes.resume(exchange, forwarder(exchange, fresh_only=True))
            return
        self.outcomes.refuse(exchange, forwarder.upstream_failed(self.pool, error))

    def _detach(self) -> None:
        conn = self.conn
        conn.listener = None
        conn.watchdog.waiting.discard(conn)
