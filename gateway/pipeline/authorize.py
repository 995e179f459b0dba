"""What the route allows, checked on every request against the principal (never cached):
roles (any of the route's), and for browser callers the `Origin` (docs/authentication.md).

A JWT bound to a tenant is held to that tenant's origin whitelist; a tenant-less user's JWT
to the top-level `origins` of routes.yaml when that list is given. The tenant's whitelist comes
from the auth core's policy cache: at once when cached, else the check waits for one read.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Final

from auth_core import headers as h
from auth_core.models import Principal
from auth_core.origins import OriginWhitelist
from auth_core.service import AuthCore
from auth_core.store import DatabaseUnavailable
from gateway.errors import AuthUnavailable, InsufficientRole, OriginNotAllowed
from gateway.pipeline.exchange import Exchange
from gateway.pipeline.stage import Stage, StageResult
from gateway.routing.table import AUTH_CORE, AuthKind, Route

_VARY_ORIGIN: Final = (h.W_VARY, h.W_ORIGIN)
# Principals of browsers: an access token, or the login page's session cookie (browser routes).
_BROWSER_METHODS: Final = frozenset({"jwt", "cookie"})


def origin_refused() -> OriginNotAllowed:
    return OriginNotAllowed("requests from this origin are not accepted")


class Authorize(Stage):
    """403 insufficient_role or origin_not_allowed."""

    def __init__(self, core: AuthCore, *, check_origins: bool = True) -> None:
        self.core = core
        self.check_origins = check_origins

    def applies(self, route: Route) -> bool:
        return route.auth is not AuthKind.NONE

    def __call__(self, exchange: Exchange) -> StageResult:
        principal = exchange.principal
        if principal is None:
            return None
        route = exchange.route
        assert route is not None
        if route.roles and route.roles.isdisjoint(principal.roles):
            raise InsufficientRole(
                "this route needs one of the roles " + ", ".join(sorted(route.roles))
            )
        return self.check_origin(exchange, principal)

    def check_origin(self, exchange: Exchange, principal: Principal) -> Awaitable[None] | None:
        """Refuse a browser's Origin that the principal's whitelist does not hold; allowed, the
        response tells the browser so (CORS). An awaitable when the tenant's policy must be
        read first."""
        if not self.check_origins or principal.method not in _BROWSER_METHODS:
            return None
        raw = exchange.request.header(h.B_ORIGIN)
        if raw is None:
            return None
        origin = raw.decode("latin-1")
        tenant_id = principal.tenant_id
        if tenant_id is None:
            allowed = exchange.table.origins
            if allowed and not allowed.allows(origin):
                raise origin_refused()
            if allowed:
                self._allow(exchange, origin)
            return None
        policy = self.core.tenants.cached_policy(tenant_id)
        if policy is None:
            return self._check_loaded(exchange, tenant_id, origin)
        self._check(exchange, policy.origins, origin)
        return None

    async def _check_loaded(self, exchange: Exchange, tenant_id: str, origin: str) -> None:
        try:
            policy = await self.core.tenants.load_policy(tenant_id)
        except DatabaseUnavailable:
            raise AuthUnavailable("the auth core's database is unavailable") from None
        # A tenant that no longer exists accepts no origin.
        self._check(exchange, policy.origins if policy else OriginWhitelist(()), origin)

    def _check(self, exchange: Exchange, allowed: OriginWhitelist, origin: str) -> None:
        if not allowed.allows(origin):
            raise origin_refused()
        self._allow(exchange, origin)

    @staticmethod
    def _allow(exchange: Exchange, origin: str) -> None:
        route = exchange.route
        if route is not None and (route.cors is not None or route.upstream == AUTH_CORE):
            return  # the route's own cors, or the auth core's, marks the answer (preflight.py)
        exchange.response_headers = [
            *exchange.response_headers,
            (h.W_ACCESS_CONTROL_ALLOW_ORIGIN, origin.encode("latin-1")),
            _VARY_ORIGIN,
        ]
