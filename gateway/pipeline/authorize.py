"""What the route allows, checked on every request against the principal (never cached):
roles (any of the route's), and for browser callers the `Origin` (SPEC sections 6 and 11)."""

from __future__ import annotations

from auth_core.models import Principal
from gateway.errors import GatewayError
from gateway.pipeline.exchange import Exchange
from gateway.pipeline.stage import Stage, StageResult


class Authorize(Stage):
    """403 insufficient_role or origin_not_allowed."""

    def __init__(self, *, check_origins: bool = True) -> None:
        self.check_origins = check_origins

    def __call__(self, exchange: Exchange) -> StageResult:
        principal = exchange.principal
        if principal is None:
            return None
        route = exchange.route
        assert route is not None
        if route.roles and route.roles.isdisjoint(principal.roles):
            raise GatewayError(
                "this route needs one of the roles " + ", ".join(sorted(route.roles)),
                status=403,
                code="insufficient_role",
            )
        self.check_origin(exchange, principal)
        return None

    def check_origin(self, exchange: Exchange, principal: Principal) -> None:
        """A browser's Origin must be on the whitelist of the principal's tenant (or, without a
        tenant, on the top-level `origins` of routes.yaml when that list is given)."""
        if not self.check_origins or principal.method != "jwt":
            return
        origin = exchange.request.header(b"origin")
        if origin is not None and principal.tenant_id is None:
            allowed = exchange.table.origins
            if allowed and not allowed.allows(origin.decode("latin-1")):
                raise GatewayError(
                    "requests from this origin are not accepted",
                    status=403,
                    code="origin_not_allowed",
                )
