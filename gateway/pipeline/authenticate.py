"""Who the caller is, by the route's `auth` kind.

Authenticators are registered by kind; routes.yaml only accepts kinds that have one, so a
route can never be served by a kind this build does not enforce.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping

from mypy_extensions import mypyc_attr

from auth_core.store import DatabaseUnavailable
from gateway.errors import AuthUnavailable
from gateway.http.response import Response
from gateway.pipeline.exchange import Exchange
from gateway.pipeline.stage import Stage, StageResult
from gateway.pipeline.withhold import without_access_token
from gateway.routing.table import AuthKind, Route


# An extension point, like Stage: plain Python subclasses work in the compiled build too.
@mypyc_attr(allow_interpreted_subclasses=True)
class Authenticator(ABC):
    """Checks one kind of credential."""

    @abstractmethod
    def authenticate(self, exchange: Exchange) -> StageResult:
        """Set `exchange.auth_method` (and the principal), or raise a 401/403 GatewayError;
        an awaitable when the check has to wait (see Stage)."""


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
        return _translated(result)


async def _translated(pending: Awaitable[Response | None]) -> Response | None:
    """Await a check that had to wait; a database that did not answer is a 503."""
    try:
        return await pending
    except DatabaseUnavailable:
        raise AuthUnavailable("the auth core's database is unavailable") from None
