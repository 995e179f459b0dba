"""One worker's gateway: the pipeline built once, the table in force, and the handler
the HTTP server calls for every request."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from pathlib import Path

from auth_core.api import build_api
from auth_core.errors import SettingsError
from auth_core.service import AuthCore, CallInfo
from gateway.accesslog import AccessLog
from gateway.auth_upstream import AuthCoreUpstream
from gateway.config import Settings
from gateway.errors import GatewayError, problem_response
from gateway.forward_auth import ForwardAuth
from gateway.http.connection import Detached
from gateway.http.request import Request
from gateway.http.response import Response
from gateway.operations import Operations
from gateway.pipeline.authenticate import Authenticate
from gateway.pipeline.authorize import Authorize
from gateway.pipeline.bans import RefuseBanned
from gateway.pipeline.bearer import JwtBearer
from gateway.pipeline.chain import Chain
from gateway.pipeline.client_address import ClientAddressResolver, ResolveClientAddress
from gateway.pipeline.context import SetContext
from gateway.pipeline.credentials import AnyCredential, ApiKeyAuth, PatAuth, ServiceAuth
from gateway.pipeline.exchange import Exchange
from gateway.pipeline.limit_body import LimitBody
from gateway.pipeline.match_route import MatchRoute
from gateway.pipeline.parse_target import ParseTarget
from gateway.pipeline.preflight import Preflight
from gateway.pipeline.rate_limit import RateLimit
from gateway.proxy.callback import CallbackExchange
from gateway.proxy.forward import Forwarder, Pending, ResponseAborted
from gateway.proxy.pool import UpstreamPools
from gateway.routing.loader import load_route_table
from gateway.routing.table import AUTH_CORE, AuthKind, RouteTable
from gateway.tracing import request_id_from, traceparent_from
from gateway.websocket.proxy import PrepareWebSocket, WebSocketProxy
from gateway.websocket.registry import SocketRegistry
from metrics.catalog import CACHE_HIT_RATE, CACHE_LOOKUPS, Catalog
from metrics.shared import Merged, SharedSnapshots

log = logging.getLogger("gateway")


def _hit_rate(merged: Merged) -> None:
    """auth_cache_hit_rate from every worker's look-ups (a per-worker rate cannot be summed):
    answers from a worker's own cache or the shared one, over all look-ups of the own one."""
    rows = merged.get(CACHE_LOOKUPS, {})
    total = sum(count for labels, count in rows.items() if labels[1] in ("hit", "miss"))
    hits = sum(count for labels, count in rows.items() if labels[1] in ("hit", "shared_hit"))
    merged[CACHE_HIT_RATE] = {(): hits / total} if total else {}


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_STATUS_TEXT = {code: str(code) for code in range(100, 600)}


class Gateway:
    """The request path of one worker process."""

    def __init__(
        self,
        settings: Settings,
        table: RouteTable,
        *,
        core: AuthCore,
        config_path: str | Path | None = None,
        metrics_dir: str | Path | None = None,
    ) -> None:
        self.settings = settings
        self.core = core
        self.table = table
        self.config_path = Path(config_path) if config_path else None
        self.catalog = Catalog()
        self.metrics = SharedSnapshots(self.catalog.registry, metrics_dir)
        self.metrics.refreshers.append(self._auth_metrics)
        self.metrics.derivers.append(_hit_rate)
        self.access_log = AccessLog(settings.access_log)
        self.loop = asyncio.get_running_loop()
        self.pools = UpstreamPools(self.loop)
        self.pools.update(table.upstreams)
        self.pools.start()
        self.resolver = ClientAddressResolver(settings.trusted_proxies)
        self.authenticate = Authenticate(
            {
                AuthKind.JWT: JwtBearer(core),
                AuthKind.API_KEY: ApiKeyAuth(core),
                AuthKind.PAT: PatAuth(core),
                AuthKind.SERVICE: ServiceAuth(core),
                AuthKind.ANY: AnyCredential(core),
            }
        )
        check_origins = settings.auth.origin_validation_enabled
        authorize = Authorize(core, check_origins=check_origins)
        self.operations = Operations(self.metrics, self.readiness)
        self.forwarder = Forwarder(self.pools, self.catalog)
        self.sockets = SocketRegistry(core, self.catalog, settings)
        self.sockets.start()
        self.websockets = WebSocketProxy(self.pools, self.forwarder, self.sockets, settings)
        self.builtin = AuthCoreUpstream(
            core,
            build_api(core),
            ForwardAuth(core, authorize, settings.forward_auth_clients),
            authorize,
        )
        self.chain = Chain(
            [
                ResolveClientAddress(self.resolver),
                ParseTarget(),
                self.operations,
                RefuseBanned(core.revoked),
                MatchRoute(),
            ],
            [
                Preflight(core, enabled=check_origins),
                PrepareWebSocket(self.sockets),
                LimitBody(),
                self.authenticate,
                authorize,
                RateLimit(core.limiter, self.catalog),
                SetContext(core),
            ],
            self.terminal,
        )

    def terminal(self, exchange: Exchange) -> Awaitable[Response | None]:
        """The upstream step: the auth core in-process, or the forwarder."""
        route = exchange.route
        assert route is not None
        if route.upstream == AUTH_CORE:
            return self.builtin(exchange)
        if exchange.websocket is not None:
            return self.websockets(exchange)
        return self.forwarder(exchange)

    def _start_terminal(self, exchange: Exchange) -> Pending | CallbackExchange:
        """`terminal` on the callback path: the forwarder sends at once when it can."""
        route = exchange.route
        assert route is not None
        if route.upstream == AUTH_CORE or exchange.websocket is not None:
            return self.terminal(exchange)
        return self.forwarder.start(exchange, self)

    async def readiness(self) -> dict[str, str]:
        """Dependencies and their state ("ok" or why not)."""
        database = "ok" if await self.core.ready() else "unreachable"
        checks = {"routes": "ok", "database": database}
        redis = self.core.redis
        if redis is not None:
            checks["redis"] = "ok" if await redis.ping() else "unreachable"
        return checks

    def _exchange(self, request: Request) -> Exchange:
        get = request.index.get
        exchange = Exchange(request, request_id_from(get(b"x-request-id")), self.table)
        exchange.traceparent = traceparent_from(get(b"traceparent"))
        exchange.started = time.monotonic()
        return exchange

    def handle(self, request: Request) -> Awaitable[Response | None]:
        """The HTTP server's entry point for requests served by the connection's task (those
        with a body, pipelined ones); None when the response streamed."""
        return self._settle(self._exchange(request), None)

    def start(self, request: Request) -> Response | Detached:
        """The HTTP server's entry point for a bodiless request on an idle connection, called
        from the parser: a response when the pipeline answered at once, else what serves the
        request (by callbacks, or a task when something has to wait)."""
        exchange = self._exchange(request)
        try:
            result = self.chain.start(exchange, self._start_terminal)
        except GatewayError as error:
            response = self._problem(exchange, error)
        except Exception:
            log.exception("unhandled error, request %s", exchange.request_id)
            response = problem_response(GatewayError(), exchange.request_id)
        else:
            if isinstance(result, CallbackExchange):
                return result
            if not isinstance(result, Response):
                return self.loop.create_task(self._detached(exchange, result))
            response = result
        self._record(exchange, response.status, exchange.started)
        return response

    async def _settle(
        self, exchange: Exchange, pending: Awaitable[Response | None] | None
    ) -> Response | None:
        """Run the pipeline (or await where it stopped), turning every failure into an answer."""
        started = exchange.started
        try:
            if pending is None:
                result = self.chain.run(exchange)
                response = result if isinstance(result, Response) else await result
            else:
                response = await pending
        except GatewayError as error:
            response = self._problem(exchange, error)
        except ResponseAborted as aborted:
            self._record(exchange, aborted.status, started)
            return None
        except (asyncio.CancelledError, ConnectionError):
            self._record(exchange, 499, started)  # the client went away (nginx's 499)
            raise
        except Exception:
            log.exception("unhandled error, request %s", exchange.request_id)
            response = problem_response(GatewayError(), exchange.request_id)
        self._record(exchange, exchange.status if response is None else response.status, started)
        return response

    async def _detached(self, exchange: Exchange, pending: Awaitable[Response | None]) -> None:
        """A request begun on the callback path that has to wait: the rest, as a task."""
        request = exchange.request
        try:
            response = await self._settle(exchange, pending)
        except asyncio.CancelledError:
            return  # the client went away; recorded
        except Exception:
            log.exception("unhandled error serving a request from %s", request.peer)
            request.connection.abort()
            return
        request.connection.finish_detached(request, response)

    def _problem(self, exchange: Exchange, error: GatewayError) -> Response:
        if error.status in (401, 403):
            self._denied(exchange, error)
        return problem_response(error, exchange.request_id)

    # -- Outcomes: where requests on the callback path end --------------------------------------

    def respond(self, exchange: Exchange, response: Response) -> None:
        self._record(exchange, response.status, exchange.started)
        exchange.request.connection.finish_detached(exchange.request, response)

    def refuse(self, exchange: Exchange, error: GatewayError) -> None:
        self.respond(exchange, self._problem(exchange, error))

    def abandon(self, exchange: Exchange) -> None:
        self._record(exchange, 499, exchange.started)

    def resume(self, exchange: Exchange, pending: Awaitable[Response | None]) -> None:
        request = exchange.request
        request.connection.detach(request, self.loop.create_task(self._detached(exchange, pending)))

    def _record(self, exchange: Exchange, status: int, started: float) -> None:
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
                exchange.request.header_text(b"user-agent"),
            )

    def _denied(self, exchange: Exchange, error: GatewayError) -> None:
        """Every denial is counted by reason and written to the audit log (README: Operations)."""
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
            user_agent=exchange.request.header_text(b"user-agent"),
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

    def _auth_metrics(self) -> None:
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

    def reload(self) -> bool:
        """Load routes.yaml again; a bad file is refused and the old table keeps serving."""
        if self.config_path is None:
            return False
        try:
            table = load_route_table(self.config_path)
        except SettingsError as exc:
            self.catalog.config_reloads.inc(("refused",))
            log.error("routes.yaml refused, the previous table stays in force: %s", exc)
            return False
        if table.sha256 == self.table.sha256:
            return True
        self.table = table
        self.pools.update(table.upstreams)
        self.catalog.config_reloads.inc(("applied",))
        log.info("routes.yaml reloaded: %d routes, sha256 %s", len(table.routes), table.sha256)
        return True

    async def close(self) -> None:
        await self.sockets.close()
        await self.pools.close()
        self.access_log.close()
        self.metrics.publish()
