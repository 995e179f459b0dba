"""Who the caller is, by the route's `auth` kind.

Authenticators (gateway/pipeline/authn/) are registered by kind; routes.yaml only accepts kinds
that have one, so a route can never be served by a kind this build does not enforce.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from auth_core.errors import MissingCredentials
from auth_core.store import DatabaseUnavailable
from gateway.errors import AuthUnavailable
from gateway.http.response import Response
from gateway.pipeline.authn.base import Authenticator, NotResponsible
from gateway.pipeline.exchange import Exchange
from gateway.pipeline.stage import Stage, StageResult
from gateway.pipeline.withhold import without_access_token
from gateway.routing.table import AuthKind, Route


class Authenticate(Stage):
    """Runs the route's authenticator."""

    def __init__(
        self,
        authenticators: Mapping[AuthKind, Authenticator],
        browser: Callable[[Authenticator], Authenticator] | None = None,
    ) -> None:
        self.authenticators = dict(authenticators)
        # Routes with `browser: true`: each kind's authenticator wrapped by `browser` (the
        # login page's session cookie, gateway/login/browser_auth.py), made once.
        self.browser_authenticators = (
            {kind: browser(inner) for kind, inner in self.authenticators.items()}
            if browser is not None
            else {}
        )

    def applies(self, route: Route) -> bool:
        # `auth: none` needs nothing done: an exchange starts with auth_method "none", which
        # upstreams are told as X-Auth-Method.
        return route.auth is not AuthKind.NONE

    def __call__(self, exchange: Exchange) -> StageResult:
        route = exchange.route
        assert route is not None
        authenticator = (self.browser_authenticators if route.browser else self.authenticators).get(
            route.auth
        )
        if authenticator is None:  # refused at load; fail closed if it ever slips through
            raise AuthUnavailable("this route's authentication is not available")
        if exchange.query and not route.forward_credentials:
            # Before the context is signed over the path with query (websocket routes took
            # their token from it already, in PrepareWebSocket).
            exchange.query = without_access_token(exchange.query)
        result = authenticator.authenticate(exchange)
        if result is None or isinstance(result, Response):
            return result
        if isinstance(result, NotResponsible):
            # The route's kind is the one the request lacks; its refusal is counted under it
            # (gateway_api_key_validations_total counts a missing key on an api_key route).
            exchange.auth_method = route.auth.value
            raise MissingCredentials(result.needed)
        return _translated(result)


async def _translated(pending: Awaitable[Response | None]) -> Response | None:
    """Await a check that had to wait; a database that did not answer is a 503."""
    try:
        return await pending
    except DatabaseUnavailable:
        raise AuthUnavailable("the auth core's database is unavailable") from None
