"""Which route a request takes: the canonical path against the table in force."""

from __future__ import annotations

from auth_core import headers as h
from gateway.pipeline.exchange import Exchange
from gateway.pipeline.stage import Stage, StageResult


def request_host(host_header: bytes | None) -> str:
    """The Host header's name part, lower-case, without port or IPv6 brackets."""
    if not host_header:
        return ""
    host = host_header.decode("latin-1").strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if ":" in host else host


class MatchRoute(Stage):
    """Sets `exchange.route` and `exchange.upstream_path` (404 and 405 otherwise)."""

    def __call__(self, exchange: Exchange) -> StageResult:
        table = exchange.table
        request = exchange.request
        host = request_host(request.header(h.B_HOST)) if table.uses_hosts else ""
        route = table.match(exchange.path, request.method, host)
        exchange.route = route
        exchange.upstream_path = route.upstream_path(exchange.path)
        return None
