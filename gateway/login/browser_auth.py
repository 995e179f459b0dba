"""Authentication on routes with `browser: true` (docs/login-and-browsers.md).

A request that carries a credential of its own (`Authorization`, `X-API-Key`, a websocket's
token) is the route's `auth` kind's business, as on any route. Otherwise the login page's
session cookie stands for the user: checked from the auth core's cache with the revocation set
(auth_core/cookie_sessions.py), never a database read per request. A cookie with a bad
signature proves nothing and is ignored, as if absent.

A write authenticated by the cookie must pass the CSRF rule of auth_core/csrf.py (`Origin` or
`Referer` on the user's whitelist, and `X-Requested-With`), or it is refused 403 csrf_refused.

Without a usable credential, a browser (a request whose `Accept` names `text/html`) is sent to
the login page (303, with the URL it asked for as `return_to`) instead of getting a 401; any
other client still gets the 401 problem+json.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl, urlencode

from auth_core import headers as h
from auth_core.cookie_sessions import METHOD, CookieSessions
from auth_core.csrf import refuse_cross_site
from auth_core.errors import MissingCredentials, Unauthorized
from auth_core.models import Principal
from auth_core.origins import OriginWhitelist
from auth_core.tenancy import Tenants
from gateway.http.response import Response
from gateway.login.cookies import SESSION_COOKIE, clear_session_cookie, cookie_value
from gateway.login.settings import LoginSettings
from gateway.pipeline.authn.base import Authenticator, AuthnResult
from gateway.pipeline.exchange import Exchange
from gateway.pipeline.stage import StageResult
from gateway.problem import SERVER_NAME
from gateway.routing.table import RouteTable

RETURN_PARAMETER = "return_to"


def accepts_html(exchange: Exchange) -> bool:
    """Whether the client is a browser navigating: its `Accept` names text/html."""
    accept = exchange.request.header(h.B_ACCEPT)
    return accept is not None and b"text/html" in accept.lower()


def session_cookie_of(exchange: Exchange) -> str | None:
    return cookie_value(exchange.request.header_values(h.B_COOKIE), SESSION_COOKIE)


def carries_own_credential(exchange: Exchange) -> bool:
    request = exchange.request
    return (
        request.header(h.B_AUTHORIZATION) is not None
        or request.header(h.B_X_API_KEY) is not None
        or exchange.ws_token is not None
    )


def login_redirect(
    settings: LoginSettings, return_to: str, request_id: str, *, clear: bool
) -> Response:
    """303 to the login page, which sends the browser back to `return_to` afterwards."""
    separator = "&" if "?" in settings.login_url else "?"
    location = settings.login_url + separator + urlencode({RETURN_PARAMETER: return_to})
    headers = [
        (h.W_LOCATION, location.encode()),
        (h.W_CACHE_CONTROL, b"no-store"),
        (h.W_X_REQUEST_ID, request_id.encode()),
        (h.W_SERVER, SERVER_NAME.encode()),
    ]
    if clear:
        headers.append((h.W_SET_COOKIE, clear_session_cookie(settings.cookie_domain)))
    return Response(303, headers, b"")


def whitelist(
    principal: Principal, table: RouteTable, tenants: Tenants
) -> OriginWhitelist | Awaitable[OriginWhitelist]:
    """The origins the user's pages may be on: the tenant's list, or the top-level `origins`
    for a user without a tenant (an empty list allows no write by cookie)."""
    if principal.tenant_id is None:
        return table.origins
    policy = tenants.cached_policy(principal.tenant_id)
    if policy is not None:
        return policy.origins
    return _loaded_whitelist(tenants, principal.tenant_id)


async def _loaded_whitelist(tenants: Tenants, tenant_id: str) -> OriginWhitelist:
    policy = await tenants.load_policy(tenant_id)
    return policy.origins if policy is not None else OriginWhitelist(())


def refuse_cross_site_write(
    exchange: Exchange, principal: Principal, tenants: Tenants, method: str
) -> Awaitable[None] | None:
    """auth_core/csrf.py's rule for a request the cookie authenticated (CsrfRefused)."""
    if method.upper() in ("GET", "HEAD", "OPTIONS", "TRACE"):
        return None
    allowed = whitelist(principal, exchange.table, tenants)
    if isinstance(allowed, OriginWhitelist):
        _refuse(exchange, method, allowed)
        return None
    return _refuse_loaded(exchange, method, allowed)


async def _refuse_loaded(
    exchange: Exchange, method: str, pending: Awaitable[OriginWhitelist]
) -> None:
    _refuse(exchange, method, await pending)


def _refuse(exchange: Exchange, method: str, allowed: OriginWhitelist) -> None:
    request = exchange.request
    refuse_cross_site(
        method,
        request.header_text(h.B_ORIGIN),
        request.header_text(h.B_REFERER),
        request.header_text(h.B_X_REQUESTED_WITH),
        allowed.allows,
    )


class BrowserAuth(Authenticator):
    """A `browser: true` route's authenticator: the route's own kind, or the session cookie."""

    def __init__(
        self,
        inner: Authenticator,
        cookies: CookieSessions,
        tenants: Tenants,
        settings: LoginSettings,
    ) -> None:
        self.inner = inner
        self.cookies = cookies
        self.tenants = tenants
        self.settings = settings

    # What forwardAuth answers differently (it speaks for a request another proxy holds).
    def method(self, exchange: Exchange) -> str:
        return exchange.request.method

    def return_to(self, exchange: Exchange) -> str | None:
        """The URL to come back to after logging in; None: answer 401, never redirect."""
        login = self.settings.login_url
        local = exchange.path + exchange.query
        if login.startswith("/"):
            return local  # the login page is on this host: a path is enough
        request = exchange.request
        host = request.header_text(h.B_HOST)
        if not host:
            return None
        proto = request.header_text(h.B_X_FORWARDED_PROTO) if exchange.peer_trusted else None
        scheme = proto if proto in ("http", "https") else login.split(":", 1)[0]
        return f"{scheme}://{host}{local}"

    def authenticate(self, exchange: Exchange) -> AuthnResult:
        if carries_own_credential(exchange):
            return self.inner.authenticate(exchange)
        value = session_cookie_of(exchange)
        if value is None:
            return self._unauthenticated(exchange, MissingCredentials(_MISSING), clear=False)
        try:
            found = self.cookies.authenticate(value)
        except Unauthorized as ended:
            return self._unauthenticated(exchange, ended, clear=True)
        if found is None:  # not signed by us: as if absent
            return self._unauthenticated(exchange, MissingCredentials(_MISSING), clear=True)
        if isinstance(found, Principal):
            return self._admit(exchange, found)
        return self._wait(exchange, found)

    async def _wait(self, exchange: Exchange, pending: Awaitable[Principal]) -> Response | None:
        try:
            principal = await pending
        except Unauthorized as ended:
            return self._unauthenticated(exchange, ended, clear=True)
        checked = self._admit(exchange, principal)
        if checked is not None and not isinstance(checked, Response):
            return await checked
        return checked

    def _admit(self, exchange: Exchange, principal: Principal) -> StageResult:
        exchange.principal = principal
        exchange.auth_method = METHOD
        return refuse_cross_site_write(exchange, principal, self.tenants, self.method(exchange))

    def _unauthenticated(self, exchange: Exchange, error: Unauthorized, *, clear: bool) -> Response:
        if accepts_html(exchange):
            return_to = self.return_to(exchange)
            if return_to is not None:
                return login_redirect(self.settings, return_to, exchange.request_id, clear=clear)
        raise error


_MISSING = "a credential is needed (Authorization: Bearer ..., or the login page's session cookie)"

BrowserWrap = Callable[[Authenticator], Authenticator]


class ForwardedBrowserAuth(BrowserAuth):
    """forwardAuth's authenticator: the session cookie is accepted as on a browser route, for
    the request the proxy in front holds (`X-Forwarded-Method`, `-Proto`, `-Host`, `-Uri`).
    A browser without a session gets the 303 to the login page only when the proxy asks for
    it with `?login=redirect` (Traefik passes the answer on; nginx `auth_request` takes only
    2xx, 401 and 403, so it gets the 401)."""

    def method(self, exchange: Exchange) -> str:
        return exchange.request.header_text(h.B_X_FORWARDED_METHOD) or "GET"

    def return_to(self, exchange: Exchange) -> str | None:
        query = exchange.query[1:]
        if not query or ("login", "redirect") not in parse_qsl(query, keep_blank_values=True):
            return None
        request = exchange.request
        proto = request.header_text(h.B_X_FORWARDED_PROTO)
        host = request.header_text(h.B_X_FORWARDED_HOST)
        uri = request.header_text(h.B_X_FORWARDED_URI) or "/"
        if proto not in ("http", "https") or not host or not uri.startswith("/"):
            return None
        return f"{proto}://{host}{uri}"
