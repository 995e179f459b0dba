"""One worker's gateway, wired: the pipeline built once, the upstream step at its end, the table
in force and its reloads. What a request runs through is gateway/server/dispatch.py; what is
recorded of it, gateway/server/recording.py."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from auth_core.api import build_api
from auth_core.errors import SettingsError
from auth_core.service import AuthCore
from gateway.accesslog import AccessLog
from gateway.auth_upstream import AuthCoreUpstream
from gateway.config import Settings
from gateway.forward_auth import ForwardAuth
from gateway.http.response import Response
from gateway.http.server import Handler
from gateway.login.browser_auth import BrowserAuth
from gateway.login.endpoints import LoginEndpoints
from gateway.operations import Operations
from gateway.pipeline.authenticate import Authenticate
from gateway.pipeline.authn.api_key import ApiKeyAuth
from gateway.pipeline.authn.first_match import any_credential
from gateway.pipeline.authn.jwt import JwtAuth
from gateway.pipeline.authn.pat import PatAuth
from gateway.pipeline.authn.service import ServiceAuth
from gateway.pipeline.authorize import Authorize
from gateway.pipeline.bans import RefuseBanned
from gateway.pipeline.chain import Chain
from gateway.pipeline.client_address import ClientAddressResolver, ResolveClientAddress
from gateway.pipeline.context import SetContext
from gateway.pipeline.exchange import Exchange
from gateway.pipeline.limit_body import LimitBody
from gateway.pipeline.match_route import MatchRoute
from gateway.pipeline.parse_target import ParseTarget
from gateway.pipeline.preflight import Preflight
from gateway.pipeline.rate_limit import RateLimit
from gateway.proxy.forward import Forwarder
from gateway.proxy.pool import UpstreamPools
from gateway.routing.loader import load_route_table
from gateway.routing.table import AUTH_CORE, AuthKind, RouteTable
from gateway.server.dispatch import Dispatcher
from gateway.server.recording import Recorder
from gateway.websocket.proxy import PrepareWebSocket, WebSocketProxy
from gateway.websocket.registry import SocketRegistry
from metrics.catalog import Catalog
from metrics.shared import SharedSnapshots

log = logging.getLogger("gateway")

# A request the HTTP layer refused before it had a route: status, request id, peer address.
Refused = Callable[[int, str, str], None]


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
        tls: bool = False,
    ) -> None:
        self.settings = settings
        self.core = core
        self.table = table
        self.config_path = Path(config_path) if config_path else None
        self.catalog = Catalog()
        self.metrics = SharedSnapshots(self.catalog.registry, metrics_dir)
        self.access_log = AccessLog(settings.access_log)
        self.recorder = Recorder(core, self.catalog, self.access_log)
        self.metrics.refreshers.append(self.recorder.auth_metrics)
        self.loop = asyncio.get_running_loop()
        self.pools = UpstreamPools(self.loop)
        self.pools.update(table.upstreams)
        self.pools.start()
        self.resolver = ClientAddressResolver(settings.trusted_proxies)
        self.authenticate = Authenticate(
            {
                AuthKind.JWT: JwtAuth(core),
                AuthKind.API_KEY: ApiKeyAuth(core),
                AuthKind.PAT: PatAuth(core),
                AuthKind.SERVICE: ServiceAuth(core),
                AuthKind.ANY: any_credential(core),
            },
            # `browser: true` routes: the login page's session cookie as well
            lambda inner: BrowserAuth(inner, core.cookie_sessions, core.tenants, settings.login),
        )
        check_origins = settings.auth.origin_validation_enabled
        authorize = Authorize(core, check_origins=check_origins)
        self.operations = Operations(self.metrics, self.readiness)
        self._database_down_since: float | None = None  # monotonic; None while reachable
        # `tls`: clients reach this worker over TLS (the upstream is told so).
        self.forwarder = Forwarder(self.pools, self.catalog, scheme=b"https" if tls else b"http")
        self.sockets = SocketRegistry(core, self.catalog, settings)
        self.sockets.start()
        self.websockets = WebSocketProxy(self.pools, self.forwarder, self.sockets, settings)
        self.builtin = AuthCoreUpstream(
            core,
            build_api(core),
            ForwardAuth(core, authorize, settings.forward_auth_clients, settings.login),
            authorize,
            LoginEndpoints(core, settings.login),
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
        self.dispatcher = Dispatcher(self.chain, self.recorder, table)
        # The HTTP server's entry points, bound once (no hop through this class a request).
        self.handle: Handler = self.dispatcher.handle
        self.refused: Refused = self.recorder.refused

    def terminal(self, exchange: Exchange) -> Awaitable[Response | None]:
        """The upstream step: the auth core in-process, or the forwarder."""
        route = exchange.route
        assert route is not None
        if route.upstream == AUTH_CORE:
            return self.builtin(exchange)
        if exchange.websocket is not None:
            return self.websockets(exchange)
        return self.forwarder(exchange)

    async def readiness(self) -> dict[str, str]:
        """Dependencies and their state ("ok" or why not)."""
        checks = {"routes": "ok", "database": self._database_state(await self.core.ready())}
        redis = self.core.redis
        if redis is not None:
            checks["redis"] = "ok" if await redis.ping() else "unreachable"
        return checks

    def _database_state(self, reachable: bool) -> str:
        """ "ok"; "stale" while unreachable for less than the stale window (cached credentials
        keep serving: docs/authentication.md); "unreachable" after it."""
        if reachable:
            self._database_down_since = None
            return "ok"
        now = time.monotonic()
        if self._database_down_since is None:
            self._database_down_since = now
        within = now - self._database_down_since < self.settings.auth.stale_window
        return "stale" if within else "unreachable"

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
        if (
            table.sha256 == self.table.sha256
            and table.tls_fingerprints == self.table.tls_fingerprints
        ):
            return True  # nothing changed: not even a file routes.yaml names for TLS
        self.table = self.dispatcher.table = table
        self.pools.update(table.upstreams)
        self.catalog.config_reloads.inc(("applied",))
        log.info("routes.yaml reloaded: %d routes, sha256 %s", len(table.routes), table.sha256)
        return True

    async def close(self) -> None:
        await self.sockets.close()
        await self.pools.close()
        self.access_log.close()
        self.metrics.publish()
