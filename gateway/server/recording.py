"""What became of each request, recorded: the request metrics and the access log line, and for
a denial its count by reason, the client's failure counted towards a ban and the audit entry
(docs/operations/observability.md). Also the auth core's counters and this process's figures
copied into the metrics."""

from __future__ import annotations

import platform
import time
from typing import Final

import gateway
from auth_core import headers as h
from auth_core.service import AuthCore, CallInfo
from gateway.accesslog import AccessLog
from gateway.errors import GatewayError
from gateway.pipeline.exchange import Exchange
from metrics.catalog import Catalog
from metrics.process import ProcessStats

# Final: compiled with mypyc, a C static; `time.monotonic_ns()` is an attribute look-up on the
# module first, every request. Nanoseconds (the exchange's clock, gateway/pipeline/exchange.py):
# a duration's microseconds are then an integer division, where a float's needed an `int()`.
_monotonic_ns: Final = time.monotonic_ns
_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_STATUS_TEXT: Final = {code: str(code) for code in range(100, 600)}
# What answered a request that no route of routes.yaml did, as its `route` in metrics and logs
# (routes.yaml refuses route names that begin with @).
OPERATIONS = {"/live": "@live", "/health": "@health", "/ready": "@ready", "/metrics": "@metrics"}
BANNED = "@banned"  # refused for a ban of its address (the only 429 before a route is matched)
NO_ROUTE = "@no_route"  # matched no route, or refused before routing (a bad target)
REFUSED = "@refused"  # refused by the HTTP server while it was read (malformed, too slow)


def unrouted(path: str, status: int) -> str:
    """The `route` of a request answered without a route."""
    return OPERATIONS.get(path) or (BANNED if status == 429 else NO_ROUTE)


class Recorder:
    """Writes each outcome to the metrics, the access log and, for denials, the auth core."""

    def __init__(self, core: AuthCore, catalog: Catalog, access_log: AccessLog) -> None:
        self.core = core
        self.catalog = catalog
        self.access_log = access_log
        # The metrics every request records, as the recorder's own (compiled) attributes: the
        # Catalog is a plain class, so reading them from it is an attribute look-up each
        # (about 400 instructions each, every request; callgrind).
        self._requests = catalog.requests
        self._request_duration = catalog.request_duration
        self._upstream_duration = catalog.upstream_duration
        self._api_key_validations = catalog.api_key_validations
        compiled = "true" if gateway.compiled() else "false"
        catalog.build_info.set(1.0, (gateway.__version__, platform.python_version(), compiled))

    def request(
        self,
        exchange: Exchange,
        status: int,
        started: int,
        sent: int | None = None,
        code: str | None = None,
    ) -> None:
        """A request answered (or abandoned, 499): counted, timed and logged. `started`: its
        monotonic_ns; `sent`: the body bytes of the answer; `code`: the problem code of a
        refusal."""
        now = _monotonic_ns()
        duration = now - started
        route = exchange.route
        route_name = route.name if route is not None else unrouted(exchange.path, status)
        method = exchange.request.method
        self._requests.inc(
            (route_name, method if method in _METHODS else "OTHER", _STATUS_TEXT.get(status, "0"))
        )
        self._request_duration.observe(duration * 1e-9, (route_name,))
        target = exchange.target
        upstream_status = exchange.upstream_status
        upstream_duration = now - exchange.upstream_started
        if upstream_status and target is not None:
            self._upstream_duration.observe(
                upstream_duration * 1e-9, (route_name, target.upstream.name, target.address)
            )
        principal = exchange.principal
        if exchange.auth_method == "api_key" and principal is not None:
            self._api_key_validations.inc(("ok",))
        access_log = self.access_log
        if access_log.enabled:
            request = exchange.request
            body = request.body
            traceparent = exchange.traceparent
            access_log.log(
                exchange.request_id,
                traceparent[3:35].decode() if traceparent else None,
                exchange.client_ip,
                method,
                exchange.path or "-",
                status,
                duration // 1000,
                route_name,
                route.upstream if route is not None else None,
                target.address if target is not None else None,
                upstream_status,
                upstream_duration // 1000,
                body.received if body is not None else 0,
                exchange.sent if sent is None else sent,
                exchange.auth_method,
                principal,
                code,
                request.index.get(h.B_USER_AGENT),
            )

    def denied(self, exchange: Exchange, error: GatewayError) -> None:
        """Every denial is counted by reason and written to the audit log (docs/operations)."""
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
        """Copy the auth core's plain counters and this process's figures into the metrics
        (before each snapshot)."""
        stats = self.core.stats
        catalog = self.catalog
        catalog.cache_lookups.values = {key: float(n) for key, n in stats.lookups.items()}
        catalog.token_validations.values = {(k,): float(n) for k, n in stats.validations.items()}
        catalog.stale_served.values = {(): float(stats.stale_served)}
        catalog.session_creations.values = {(): float(stats.sessions_opened)}
        catalog.socket_context_hits.values = {(): float(stats.socket_context_hits)}
        for seconds in stats.take_durations():
            catalog.token_validation_duration.observe(seconds)
        for seconds in self.core.revoked.take_lags():
            catalog.revocation_lag.observe(seconds)
        redis = self.core.redis
        catalog.redis_degraded.set(0.0 if redis is None or redis.healthy else 1.0)
        process = ProcessStats()
        catalog.process_cpu.values = {(): process.cpu_seconds}
        catalog.process_resident_memory.set(process.resident_bytes)
        catalog.process_open_fds.set(process.open_fds)
        catalog.process_max_fds.set(process.max_fds)
        catalog.process_start_time.set(process.start_time)

    def refused(self, status: int, request_id: str, peer: str) -> None:
        """A request the HTTP layer refused before it had a route (malformed, too slow)."""
        self.catalog.requests.inc((REFUSED, "OTHER", _STATUS_TEXT.get(status, "0")))
        if self.access_log.enabled:
            self.access_log.log(
                request_id,
                None,
                peer,
                "-",
                "-",
                status,
                0,
                REFUSED,
                None,
                None,
                0,
                0,
                0,
                None,
                "none",
                None,
                "invalid_request",
                None,
            )
