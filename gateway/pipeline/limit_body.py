"""Refuse a body larger than the route allows before anything reaches the upstream.

A declared Content-Length is checked here; a chunked body is counted as it streams (in the
forwarder), since its size is not known up front.
"""

from __future__ import annotations

from gateway.errors import PayloadTooLarge
from gateway.pipeline.exchange import Exchange
from gateway.pipeline.stage import Stage, StageResult


class LimitBody(Stage):
    """413 payload_too_large for a declared length over the route's `max_body`."""

    def __call__(self, exchange: Exchange) -> StageResult:
        route = exchange.route
        assert route is not None
        length = exchange.request.content_length
        if length is not None and length > route.max_body:
            raise PayloadTooLarge(route.max_body)
        return None
