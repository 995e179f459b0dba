"""The gateway's own endpoints: `/live` (and `/health`, the same), `/ready` and `/metrics`
(docs/operations/running.md).

They are answered before the route table is consulted, on their canonical paths only.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

import netaddr

from auth_core import headers as h
from gateway.errors import IpNotAllowed, MethodNotAllowed
from gateway.http.response import Response
from gateway.pipeline.exchange import Exchange
from gateway.pipeline.stage import Stage, StageResult
from gateway.problem import SERVER_NAME
from metrics.exposition import CONTENT_TYPE_LATEST, render
from metrics.shared import SharedSnapshots

Check = Callable[[], Awaitable[dict[str, str]]]


def _headers(content_type: str, request_id: str) -> list[tuple[bytes, bytes]]:
    return [
        (h.W_CONTENT_TYPE, content_type.encode()),
        (h.W_CACHE_CONTROL, b"no-store"),
        (h.W_X_REQUEST_ID, request_id.encode()),
        (h.W_SERVER, SERVER_NAME.encode()),
    ]


def _json(status: int, data: dict[str, object], request_id: str) -> Response:
    body = json.dumps(data, separators=(",", ":")).encode()
    return Response(status, _headers("application/json", request_id), body)


class Operations(Stage):
    """Answers the operational endpoints; every other path goes on down the pipeline."""

    def __init__(self, metrics: SharedSnapshots, readiness: Check) -> None:
        self.metrics = metrics
        self.readiness = readiness
        self.draining = False
        self._handlers: dict[str, Callable[[Exchange], Awaitable[Response]]] = {
            "/live": self.health,
            "/health": self.health,  # the older name of /live, kept for existing probes
            "/ready": self.ready,
            "/metrics": self.prometheus,
        }

    def __call__(self, exchange: Exchange) -> StageResult:
        handler = self._handlers.get(exchange.path)
        if handler is None:
            return None
        if exchange.request.method not in ("GET", "HEAD"):
            raise MethodNotAllowed(exchange.request.method, ("GET", "HEAD"))
        return handler(exchange)

    async def health(self, exchange: Exchange) -> Response:
        """Alive: the worker answers (a liveness probe: restart the process when it does not)."""
        return _json(200, {"status": "ok"}, exchange.request_id)

    async def ready(self, exchange: Exchange) -> Response:
        """Ready to take traffic: the database reachable (or served around within the stale
        window), the route table loaded, not draining. Redis alone down is `degraded` with 200:
        the gateway serves on from local state, and a readiness probe must not pull every
        replica out of its load balancer on a Redis blip."""
        checks = await self.readiness()
        down = sorted(name for name, state in checks.items() if state != "ok")
        if self.draining:
            status_text = "draining"
        elif not down:
            status_text = "ready"
        elif all(name == "redis" or checks[name] == "stale" for name in down):
            # Serving on: without Redis from local caches, limits and polling; without the
            # database from cached credentials, for the stale window.
            status_text = "degraded"
        else:
            status_text = "unavailable"
        body: dict[str, object] = {
            "status": status_text,
            "routes_sha256": exchange.table.sha256,
            "checks": checks,
        }
        if down:
            body["down"] = down
        code = 200 if status_text in ("ready", "degraded") else 503
        return _json(code, body, exchange.request_id)

    async def prometheus(self, exchange: Exchange) -> Response:
        """Prometheus text format, all workers of this host merged."""
        allowed = exchange.table.metrics_allow
        try:
            permitted = netaddr.IPAddress(exchange.client_ip) in allowed
        except (netaddr.AddrFormatError, ValueError):
            permitted = False
        if not permitted:
            raise IpNotAllowed("metrics are not served to this address")
        body = render(self.metrics.registry, self.metrics.merged())
        return Response(200, _headers(CONTENT_TYPE_LATEST, exchange.request_id), body)
