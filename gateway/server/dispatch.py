"""From a parsed request to its answer: the exchange made, the pipeline run, every failure
turned into a problem answer, and the outcome recorded (gateway/server/recording.py)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from typing import Final

from auth_core import headers as h
from gateway.errors import GatewayError, problem_response
from gateway.http.request import Request
from gateway.http.response import Response
from gateway.pipeline.chain import Chain
from gateway.pipeline.exchange import Exchange
from gateway.proxy.forward import ResponseAborted
from gateway.routing.table import RouteTable
from gateway.server.recording import Recorder
from gateway.tracing import request_id_from, traceparent_from

log = logging.getLogger("gateway")
# Final: compiled with mypyc, a C static; `time.monotonic_ns()` is an attribute look-up on the
# module first, every request.
_monotonic_ns: Final = time.monotonic_ns
# The response headers of preflight.py and authorize.py that a refusal keeps.
_CORS_MARKS = frozenset(
    {
        h.W_ACCESS_CONTROL_ALLOW_ORIGIN,
        h.W_ACCESS_CONTROL_ALLOW_CREDENTIALS,
        h.W_ACCESS_CONTROL_EXPOSE_HEADERS,
        h.W_VARY,
    }
)


class Dispatcher:
    """The HTTP server's handler: one call a request."""

    def __init__(self, chain: Chain, recorder: Recorder, table: RouteTable) -> None:
        self.chain = chain
        self.recorder = recorder
        self.table = table  # the table in force (replaced on reload)

    def _exchange(self, request: Request) -> Exchange:
        # `index.get(...)` called on the typed dict, not bound to a local first: compiled, that
        # is a direct dict look-up, where the bound method was an object made and called
        # through Python's call protocol (about 1,100 instructions a request, callgrind).
        index = request.index
        exchange = Exchange(request, request_id_from(index.get(h.B_X_REQUEST_ID)), self.table)
        exchange.traceparent = traceparent_from(index.get(h.B_TRACEPARENT))
        exchange.started = _monotonic_ns()
        return exchange

    def handle(self, request: Request) -> Awaitable[Response | None]:
        """The HTTP server's entry point for every request; None when the response streamed."""
        return self._settle(self._exchange(request))

    async def _settle(self, exchange: Exchange) -> Response | None:
        """Run the pipeline, turning every failure into an answer."""
        started = exchange.started
        code: str | None = None
        try:
            result = self.chain.run(exchange)
            response = result if isinstance(result, Response) else await result
        except GatewayError as error:
            response = self._problem(exchange, error)
            code = error.code
        except ResponseAborted as aborted:
            self.recorder.request(exchange, aborted.status, started)
            return None
        except (asyncio.CancelledError, ConnectionError):
            self.recorder.request(exchange, 499, started)  # the client went away (nginx's 499)
            raise
        except Exception:
            log.exception("unhandled error, request %s", exchange.request_id)
            internal = GatewayError()
            response = problem_response(internal, exchange.request_id)
            code = internal.code
        if response is None:  # streamed: the exchange counted its bytes
            self.recorder.request(exchange, exchange.status, started)
        else:
            self.recorder.request(exchange, response.status, started, len(response.body), code)
        return response

    def _problem(self, exchange: Exchange, error: GatewayError) -> Response:
        if error.status in (401, 403):
            self.recorder.denied(exchange, error)
        response = problem_response(error, exchange.request_id)
        # The CORS marks a stage gave the answer hold for a refusal as well: a page on an
        # allowed origin may read why it was refused (a 401 that says "refresh").
        marks = [pair for pair in exchange.response_headers if pair[0] in _CORS_MARKS]
        if marks:
            response.headers += marks
        return response
