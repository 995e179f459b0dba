"""The request target, split into the canonical path and the untouched query string."""

from __future__ import annotations

from gateway.errors import InvalidRequest
from gateway.pipeline.exchange import Exchange
from gateway.pipeline.stage import Stage, StageResult
from gateway.routing.paths import PathError, canonical_path, split_target


class ParseTarget(Stage):
    """Sets `exchange.path` (canonical) and `exchange.query`; 400 for paths with no safe form."""

    def __call__(self, exchange: Exchange) -> StageResult:
        try:
            path, query = split_target(exchange.request.target)
            exchange.path = canonical_path(path)
        except PathError as exc:
            raise InvalidRequest(str(exc)) from None
        exchange.query = query
        return None
