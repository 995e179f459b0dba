"""CORS answered by the gateway.

A route with its own `cors` gets its preflights answered from it and its answers to an allowed
origin marked (Access-Control-Allow-Origin, -Credentials, -Expose-Headers, Vary).

Without one, routes that browsers call with an access token (`auth: jwt` or `any`) get their
preflights answered from the same origin lists the requests themselves are held to: the
top-level `origins` of routes.yaml and every tenant's whitelist (a preflight carries no
credential, so no tenant is known yet; the request that follows is checked against its own
tenant's list). Other routes' preflights go to their upstream.

Routes to the built-in upstream `auth_core` (signup, login, refresh, `me`, logout, the SDK
endpoints...) are called by browsers before they hold any credential, so whatever their `auth`
they get the same: preflights answered, and answers marked, for an origin on the top-level
`origins` or on any tenant's list, and for no other (never a reflected origin: these answers
may set the session cookie). With cookie sessions the marks allow credentials, so that a
page's `fetch(..., {credentials: "include"})` sends and receives the cookie. Every answer of
those routes says `Vary: Origin`, since what it carries depends on it.
"""

from __future__ import annotations

from typing import Final

from auth_core import headers as h
from auth_core.service import AuthCore
from auth_core.store import DatabaseUnavailable
from gateway.errors import AuthUnavailable
from gateway.http.response import Response
from gateway.pipeline.authorize import origin_refused
from gateway.pipeline.exchange import Exchange
from gateway.pipeline.stage import Stage, StageResult
from gateway.problem import SERVER_NAME
from gateway.routing.table import AUTH_CORE, AuthKind, CorsPolicy, Route

_BROWSER_KINDS: Final = frozenset({AuthKind.JWT, AuthKind.ANY})
MAX_AGE = b"600"
_ALL_METHODS = b"GET, HEAD, POST, PUT, PATCH, DELETE"
# The answer depends on all three request headers, so a cache keys it by them.
_VARY_PREFLIGHT = b", ".join(
    (h.W_ORIGIN, h.W_ACCESS_CONTROL_REQUEST_METHOD, h.W_ACCESS_CONTROL_REQUEST_HEADERS)
)
_VARY_ORIGIN: Final = (h.W_VARY, h.W_ORIGIN)
_CREDENTIALS: Final = (h.W_ACCESS_CONTROL_ALLOW_CREDENTIALS, b"true")


class Preflight(Stage):
    def __init__(self, core: AuthCore, *, enabled: bool = True) -> None:
        self.core = core
        self.enabled = enabled
        self.credentials = core.settings.session_cookies

    def applies(self, route: Route) -> bool:
        return route.cors is not None or (
            self.enabled and (route.auth in _BROWSER_KINDS or route.upstream == AUTH_CORE)
        )

    def __call__(self, exchange: Exchange) -> StageResult:
        route = exchange.route
        if route is not None and route.cors is not None:
            return self._route_cors(exchange, route.cors)
        if not self.enabled or route is None:
            return None
        if route.upstream == AUTH_CORE:
            return self._auth_core(exchange)
        request = exchange.request
        if request.method != "OPTIONS" or route.auth not in _BROWSER_KINDS:
            return None
        origin = request.header(h.B_ORIGIN)
        if origin is None or request.header(h.B_ACCESS_CONTROL_REQUEST_METHOD) is None:
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

    def _auth_core(self, exchange: Exchange) -> StageResult:
        origin = exchange.request.header(h.B_ORIGIN)
        if origin is None:
            exchange.response_headers = [*exchange.response_headers, _VARY_ORIGIN]
            return None
        text = origin.decode("latin-1")
        platform = exchange.table.origins
        if platform and platform.allows(text):
            return self._auth_core_decided(exchange, origin, True)
        index = self.core.tenants.cached_origin_index()
        if index is None:
            return self._auth_core_loaded(exchange, origin)
        return self._auth_core_decided(exchange, origin, index.origins.allows(text))

    async def _auth_core_loaded(self, exchange: Exchange, origin: bytes) -> Response | None:
        try:
            index = await self.core.tenants.load_origin_index()
        except DatabaseUnavailable:
            raise AuthUnavailable("the auth core's database is unavailable") from None
        allowed = index.origins.allows(origin.decode("latin-1"))
        return self._auth_core_decided(exchange, origin, allowed)

    def _auth_core_decided(
        self, exchange: Exchange, origin: bytes, allowed: bool
    ) -> Response | None:
        request = exchange.request
        if request.method == "OPTIONS" and request.header(h.B_ACCESS_CONTROL_REQUEST_METHOD):
            if not allowed:
                raise origin_refused()
            return self._answer(exchange, origin, credentials=self.credentials)
        marks = [_VARY_ORIGIN]
        if allowed:  # an answer the page may read
            marks.append((h.W_ACCESS_CONTROL_ALLOW_ORIGIN, origin))
            if self.credentials:
                marks.append(_CREDENTIALS)
        exchange.response_headers = [*exchange.response_headers, *marks]
        return None

    @staticmethod
    def _route_cors(exchange: Exchange, policy: CorsPolicy) -> StageResult:
        request = exchange.request
        origin = request.header(h.B_ORIGIN)
        if origin is None:
            return None
        allowed = policy.origins.allows(origin.decode("latin-1"))
        preflight = (
            request.method == "OPTIONS"
            and request.header(h.B_ACCESS_CONTROL_REQUEST_METHOD) is not None
        )
        if not preflight:
            if allowed:  # an answer the browser may read
                exchange.response_headers = [*exchange.response_headers, *_marks(policy, origin)]
            return None
        if not allowed:
            raise origin_refused()
        route = exchange.route
        assert route is not None
        methods = policy.methods or route.methods
        headers = [
            (h.W_ACCESS_CONTROL_ALLOW_METHODS, _methods(methods)),
            (h.W_ACCESS_CONTROL_MAX_AGE, str(policy.max_age).encode()),
            *_marks(policy, origin),
            (h.W_X_REQUEST_ID, exchange.request_id.encode()),
            (h.W_SERVER, SERVER_NAME.encode()),
        ]
        if policy.headers is not None:
            if policy.headers:
                headers.append(
                    (h.W_ACCESS_CONTROL_ALLOW_HEADERS, ", ".join(policy.headers).encode())
                )
        else:
            requested = request.header(h.B_ACCESS_CONTROL_REQUEST_HEADERS)
            if requested is not None and len(requested) <= 1024:
                headers.append((h.W_ACCESS_CONTROL_ALLOW_HEADERS, requested))
        return Response(204, headers, b"")

    async def _answer_loaded(self, exchange: Exchange, origin: bytes) -> Response:
        try:
            index = await self.core.tenants.load_origin_index()
        except DatabaseUnavailable:
            raise AuthUnavailable("the auth core's database is unavailable") from None
        if not index.origins.allows(origin.decode("latin-1")):
            raise origin_refused()
        return self._answer(exchange, origin)

    @staticmethod
    def _answer(exchange: Exchange, origin: bytes, *, credentials: bool = False) -> Response:
        route = exchange.route
        assert route is not None
        headers = [
            (h.W_ACCESS_CONTROL_ALLOW_ORIGIN, origin),
            (h.W_ACCESS_CONTROL_ALLOW_METHODS, _methods(route.methods)),
            (h.W_ACCESS_CONTROL_MAX_AGE, MAX_AGE),
            (h.W_VARY, _VARY_PREFLIGHT),
            (h.W_X_REQUEST_ID, exchange.request_id.encode()),
            (h.W_SERVER, SERVER_NAME.encode()),
        ]
        if credentials:
            headers.append(_CREDENTIALS)
        requested = exchange.request.header(h.B_ACCESS_CONTROL_REQUEST_HEADERS)
        if requested is not None and len(requested) <= 1024:
            headers.append((h.W_ACCESS_CONTROL_ALLOW_HEADERS, requested))
        return Response(204, headers, b"")


def _methods(methods: frozenset[str] | None) -> bytes:
    return ", ".join(sorted(methods)).encode() if methods else _ALL_METHODS


def _marks(policy: CorsPolicy, origin: bytes) -> list[tuple[bytes, bytes]]:
    """The headers that let a browser from `origin` read an answer."""
    marks = [(h.W_ACCESS_CONTROL_ALLOW_ORIGIN, origin), _VARY_ORIGIN]
    if policy.credentials:
        marks.append(_CREDENTIALS)
    if policy.expose:
        marks.append((h.W_ACCESS_CONTROL_EXPOSE_HEADERS, ", ".join(policy.expose).encode()))
    return marks
