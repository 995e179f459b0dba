"""What became of each request, recorded: the request metrics and the access log line, and for
a denial its count by reason, the client's failure counted towards a ban and the audit entry
(docs/operations/observability.md). Also the auth core's counters copied into the metrics."""

from __future__ import annotations

import time

from auth_core import headers as h
from auth_core.service import AuthCore, CallInfo
from gateway.accesslog import AccessLog
from gateway.errors import GatewayError
from gateway.pipeline.exchange import Exchange
from metrics.catalog import CACHE_HIT_RATE, CACHE_LOOKUPS, Catalog
from metrics.shared import Merged

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_STATUS_TEXT = {code: str(code) for code in range(100, 600)}


def hit_rate(merged: Merged) -> None:
    """auth_cache_hit_rate from every worker's look-ups (a per-worker rate cannot be summed):
    answers from a worker's own cache or the shared one, over all look-ups of the own one."""
    rows = merged.get(CACHE_LOOKUPS, {})
    total = sum(count for labels, count in rows.items() if labels[1] in ("hit", "miss"))
    hits = sum(count for labels, count in rows.items() if labels[1] in ("hit", "shared_hit"))
    merged[CACHE_HIT_RATE] = {(): hits / total} if total else {}


class Recorder:
    """Writes each outcome to the metrics, the access log and, for denials, the auth core."""

    def __init__(self, core: AuthCore, catalog: Catalog, access_log: AccessLog) -> None:
        self.core = core
        self.catalog = catalog
        self.access_log = access_log

    def request(self, exchange: Exchange, status: int, started: float) -> None:
        """A request answered (or abandoned, 499): counted, timed and logged."""
        duration = time.monotonic() - started
        route = exchange.route
        route_name = route.name if route is not None else ""
        method = exchange.request.method
        catalog = self.catalog
        catalog.requests.inc(
            (route_name, method if method in _METHODS else "OTHER", _STATUS_TEXT.get(status, "0"))
        )
        catalog.request_duration.observe(duration, (route_name,))
        if exchange.auth_method == "api_key" and exchange.principal is not None:
            catalog.api_key_validations.inc(("ok",))
        if self.access_log.enabled:
            self.access_log.log(
                exchange.request_id,
                exchange.client_ip,
                method,
                exchange.path or "-",
                status,
                duration,
                route_name,
                route.upstream if route is not None else "",
                exchange.request.header_text(h.B_USER_AGENT),
            )

    def denied(self, exchange: Exchange, error: GatewayError) -> None:
        """Every denial is counted by reason and written to the audit log
        (docs/operations/observability.md)."""
        catalog = self.catalog
        catalog.auth_failures.inc((str(error.code),))
        code = error.code
        if code == "origin_not_allowed":
            catalog.origin_rejections.inc()
        elif code == "ip_not_allowed":
            catalog.ip_rejections.inc()
        if exchange.auth_method == "api_key":
            catalog.api_key_validations.inc((str(code),))
        if exchange.websocket is not None:
            catalog.socket_auth_failures.inc()
        call = CallInfo(
            ip=exchange.client_ip,
            user_agent=exchange.request.header_text(h.B_USER_AGENT),
            request_id=exchange.request_id,
        )
        self.core.bans.failed(exchange.client_ip, str(code), call)
        if error.audited:
            return
        principal = exchange.principal
        route = exchange.route
        written = self.core.audit_later(
            "access_denied",
            str(error.code),
            call,
            user_id=principal.user_id if principal is not None else None,
            route=route.name if route is not None else None,
            path=exchange.path,
        )
        if not written:
            catalog.audit_dropped.inc()

    def auth_metrics(self) -> None:
        """Copy the auth core's plain counters into the metrics (before each snapshot)."""
        stats = self.core.stats
        catalog = self.catalog
        catalog.cache_lookups.values = {key: float(n) for key, n in stats.lookups.items()}
        catalog.token_validations.values = {(k,): float(n) for k, n in stats.validations.items()}
        catalog.stale_served.values = {(): float(stats.stale_served)}
        catalog.session_creations.values = {(): float(stats.sessions_opened)}
        catalog.socket_context_hits.values = {(): float(stats.socket_context_hits)}
        for seconds in stats.take_durations():
            catalog.token_validation_duration.observe(seconds)
        redis = self.core.redis
        catalog.redis_degraded.set(0.0 if redis is None or redis.healthy else 1.0)

    def refused(self, status: int, request_id: str, peer: str) -> None:
        """A request the HTTP layer refused before it had a route (malformed, too slow)."""
        self.catalog.requests.inc(("", "OTHER", _STATUS_TEXT.get(status, "0")))
        if self.access_log.enabled:
            self.access_log.log(request_id, peer, "-", "-", status, 0.0, "", "", None)
