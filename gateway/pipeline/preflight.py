"""CORS preflights on routes that browsers call with an access token (`auth: jwt` or `any`),
answered by the gateway from the same origin lists the requests themselves are held to: the
top-level `origins` of routes.yaml and every tenant's whitelist (a preflight carries no
credential, so no tenant is known yet; the request that follows is checked against its own
tenant's list). Other routes' preflights go to their upstream.
"""

from __future__ import annotations

from auth_core.service import AuthCore
from auth_core.store import DatabaseUnavailable
from gateway.errors import AuthUnavailable
from gateway.http.response import Response
from gateway.pipeline.authorize import origin_refused
from gateway.pipeline.exchange import Exchange
from gateway.pipeline.stage import Stage, StageResult
from gateway.problem import SERVER_NAME
from gateway.routing.table import AuthKind

_BROWSER_KINDS = frozenset({AuthKind.JWT, AuthKind.ANY})
MAX_AGE = b"600"
_ALL_METHODS = b"GET, HEAD, POST, PUT, PATCH, DELETE"


class Preflight(Stage):
    def __init__(self, core: AuthCore, *, enabled: bool = True) -> None:
        self.core = core
        self.enabled = enabled

    def __call__(self, exchange: Exchange) -> StageResult:
        request = exchange.request
        if request.method != "OPTIONS" or not self.enabled:
            return None
        route = exchange.route
        if route is None or route.auth not in _BROWSER_KINDS:
            return None
        origin = request.header(b"origin")
        if origin is None or request.header(b"access-control-request-method") is None:
            return None
        text = origin.decode("latin-1")
        platform = exchange.table.origins
        # No top-level list: platform users' browsers are not held to one, so neither is this.
        if not platform or platform.allows(text):
            return self._answer(exchange, origin)
        index = self.core.tenants.cached_origin_index()
        if index is None:
            return self._answer_loaded(exchange, origin)
        if not index.origins.allows(text):
            raise origin_refused()
        return self._answer(exchange, origin)

    async def _answer_loaded(self, exchange: Exchange, origin: bytes) -> Response:
        try:
            index = await self.core.tenants.load_origin_index()
        except DatabaseUnavailable:
            raise AuthUnavailable("the auth core's database is unavailable") from None
        if not index.origins.allows(origin.decode("latin-1")):
            raise origin_refused()
        return self._answer(exchange, origin)

    @staticmethod
    def _answer(exchange: Exchange, origin: bytes) -> Response:
        route = exchange.route
        assert route is not None
        methods = ", ".join(sorted(route.methods)).encode() if route.methods else _ALL_METHODS
        headers = [
            (b"Access-Control-Allow-Origin", origin),
            (b"Access-Control-Allow-Methods", methods),
            (b"Access-Control-Max-Age", MAX_AGE),
            (b"Vary", b"Origin, Access-Control-Request-Method, Access-Control-Request-Headers"),
            (b"X-Request-Id", exchange.request_id.encode()),
            (b"Server", SERVER_NAME.encode()),
        ]
        requested = exchange.request.header(b"access-control-request-headers")
        if requested is not None and len(requested) <= 1024:
            headers.append((b"Access-Control-Allow-Headers", requested))
        return Response(204, headers, b"")
